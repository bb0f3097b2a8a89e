/**
 * Next.js App Router helpers over `cookies()` and `headers()` from `next/headers`: read the
 * session in server components, sign in and out in server actions and route handlers, guard
 * route handlers, and check a request in `proxy.ts` (Next 16; `middleware.ts` with
 * `runtime: 'nodejs'` before).
 *
 * Two ways a Next app keeps sessions, both the library's own:
 * - {@link createSealedSession}: stateless, the data sealed (AES-256-GCM) in the cookie itself,
 *   chunked past 4 KB (the iron-session use case), over `createCookieSessions`;
 * - {@link createStoreSession}: server-side, over tessera's session manager and any store.
 *
 * Runtime: tessera uses `node:crypto`, so everything here runs on the Node.js runtime (server
 * components, server actions, route handlers, `proxy.ts`), not on the Edge runtime.
 */
// 'next/headers.js': next has no exports map, and NodeNext resolution needs the file name.
import { cookies, headers } from 'next/headers.js'
import { createCookiePolicy, positiveSeconds } from '../core/cookie-policy.js'
import { createCookieSessions } from '../core/cookie-session.js'
import type { Keyring } from '../core/keyring.js'
import {
  assuranceRefusal,
  checkAALLevel,
  checkMaxAge,
  freshnessRefusal,
  refusalBody,
  unauthenticatedRefusal,
} from '../core/refusals.js'
import type { AuthRefusal } from '../core/refusals.js'
import type {
  Session,
  SessionAuth,
  SessionDataChanges,
  SessionManager,
} from '../core/session-manager.js'
import type { JSONValue, SessionMeta } from '../core/session-store.js'

/** The part of Next's cookie store the helpers use (`await cookies()`). */
export interface CookieJar {
  get(name: string): { value: string } | undefined
  getAll(): { name: string; value: string }[]
  set(name: string, value: string, options?: NextCookieOptions): unknown
}

/** Cookie options as Next's `cookies().set` takes them. */
export interface NextCookieOptions {
  path?: string
  domain?: string
  secure?: boolean
  httpOnly?: boolean
  sameSite?: 'lax' | 'strict' | 'none'
  maxAge?: number
  expires?: Date
  priority?: 'low' | 'medium' | 'high'
}

/** Where the helpers get the cookie jar. @default `cookies()` from `next/headers` */
export type CookieSource = () => Promise<CookieJar>

/**
 * Where the helpers read the request's raw `Cookie` header. Next's cookie jar keeps one value
 * per name, so a cookie sent twice (cookie tossing) is seen only in the raw header.
 * @default `headers()` from `next/headers`
 */
export type HeaderSource = () => Promise<{ get(name: string): string | null }>

const nextCookies: CookieSource = async () => (await cookies()) as unknown as CookieJar
const nextHeaders: HeaderSource = async () => headers()

/** The request's `Cookie` header: the raw one, or one rebuilt from a given jar. */
function cookieHeaderSource(
  options: { cookies?: CookieSource; headers?: HeaderSource },
  jarSource: CookieSource,
): () => Promise<string | null> {
  if (options.headers !== undefined) {
    const source = options.headers
    return async () => (await source()).get('cookie')
  }
  if (options.cookies !== undefined) {
    return async () => {
      const jar = await jarSource()
      return jar
        .getAll()
        .map(({ name, value }) => `${name}=${value}`)
        .join('; ')
    }
  }
  return async () => (await nextHeaders()).get('cookie')
}

/** Options of {@link createSealedSession}. */
export interface SealedSessionOptions {
  /**
   * Cookie name. The default is `tessera_seal`, or `__Host-tessera_seal` with `secure`
   * (`__Secure-tessera_seal` with a `domain` or a path other than `/`), by the cookie policy
   * every tessera session shares.
   */
  cookieName?: string
  /** Seconds the sealed session lasts from its last write (cookie `Max-Age` and sealed expiry). @default 604800 (7 days) */
  ttl?: number
  /** `Secure` cookie; turn on for https. @default process.env.NODE_ENV === 'production' */
  secure?: boolean
  /** @default 'Lax' */
  sameSite?: 'Strict' | 'Lax' | 'None'
  /** @default '/' */
  path?: string
  domain?: string
  /** Keyring purpose the value is sealed for. @default 'next-session' */
  purpose?: string
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number
  /** @default `cookies()` from `next/headers` */
  cookies?: CookieSource
  /** @default `headers()` from `next/headers` */
  headers?: HeaderSource
}

/** A stateless session kept sealed in a cookie. */
export interface SealedSession<T extends Record<string, JSONValue>> {
  /** The session data in a server component, action or route handler; `null` when none. */
  get(): Promise<T | null>
  /** Writes `data` (server actions and route handlers only: Next forbids cookie writes while rendering). */
  set(data: T): Promise<void>
  /** Deletes the cookie and its chunks. */
  clear(): Promise<void>
  /** The session data of a `Request` (a `proxy.ts` or a route handler's argument). */
  fromRequest(request: Request): Promise<T | null>
}

/**
 * A stateless session: `data` sealed with the keyring (purpose `next-session`) in a cookie,
 * chunked when it is over 4 KB: a `createCookieSessions` session whose idle and absolute
 * lifetime are both `ttl` from the last `set`. Revocation is not possible before `ttl` ends;
 * use {@link createStoreSession} when sessions must be revocable.
 *
 * @throws TesseraError `config_invalid` for a bad `ttl` or cookie option
 * @example
 * ```ts
 * const session = createSealedSession<{ userId: string }>(keyring, { secure: true })
 * const current = await session.get() // in a server component
 * ```
 */
export function createSealedSession<T extends Record<string, JSONValue>>(
  keyring: Keyring,
  options: SealedSessionOptions = {},
): SealedSession<T> {
  const ttl = positiveSeconds(options.ttl ?? 7 * 86_400, 'ttl', 'next sealed session')
  const cookie = {
    secure: options.secure ?? process.env.NODE_ENV === 'production',
    ...(options.domain === undefined ? {} : { domain: options.domain }),
    ...(options.path === undefined ? {} : { path: options.path }),
    ...(options.sameSite === undefined ? {} : { sameSite: options.sameSite }),
  }
  // The name by the cookie policy every tessera session shares, from this kind's base name.
  const { name } = createCookiePolicy(
    'tessera_seal',
    { ...cookie, cookieName: options.cookieName },
    'next sealed session',
  )
  const sealed = createCookieSessions(keyring, {
    ...cookie,
    cookieName: name,
    idleTimeout: ttl,
    absoluteTimeout: ttl,
    // Each set() starts a new lifetime; reads move nothing (idle and absolute are the same).
    sliding: false,
    purpose: options.purpose ?? 'next-session',
    ...(options.now === undefined ? {} : { now: options.now }),
  })
  const source = options.cookies ?? nextCookies
  const cookieHeader = cookieHeaderSource(options, source)

  async function open(header: string | null): Promise<T | null> {
    // SECURITY: cookie sessions authenticate the seal before anything is parsed, never throw on
    // untrusted input, keep the expiry inside the ciphertext, and read a duplicated cookie as none.
    const validated = await sealed.validate(header)
    if (validated === null) return null
    if (validated.setCookie !== undefined) {
      // Re-sealed under the current secret; a server component cannot write cookies, so the
      // next action or route handler sends it instead.
      try {
        applySetCookies(await source(), validated.setCookie)
      } catch {
        // rendering: the old cookie still opens with the fallback secret
      }
    }
    return validated.session.data as T
  }

  return {
    async get() {
      return open(await cookieHeader())
    },
    async set(data) {
      const result = await sealed.create(null, { data, cookieHeader: await cookieHeader() })
      applySetCookies(await source(), result.setCookie)
    },
    async clear() {
      applySetCookies(await source(), sealed.clearCookie(await cookieHeader()))
    },
    fromRequest(request) {
      return open(request.headers.get('cookie'))
    },
  }
}

/** Options of {@link createStoreSession}. */
export interface StoreSessionOptions {
  /** @default `cookies()` from `next/headers` */
  cookies?: CookieSource
  /** @default `headers()` from `next/headers` */
  headers?: HeaderSource
}

/** Server-side sessions in a Next app. */
export interface StoreSession {
  /** The current session (server components, actions, route handlers); `null` when none. */
  get(): Promise<Session | null>
  /**
   * Starts a session for `userId` and sets its cookie (actions and route handlers). A session
   * the request already had is revoked first: a new token on every sign-in (no fixation).
   * `auth` records how the user proved who they are (for {@link requireFresh}, {@link requireAAL}).
   */
  signIn(
    userId: string,
    options?: { data?: Record<string, JSONValue>; meta?: SessionMeta; auth?: SessionAuth },
  ): Promise<Session>
  /** Revokes the current session and clears the cookie. */
  signOut(): Promise<void>
  /** Merges `changes` into the current session's data; `null` when there is none. */
  update(changes: SessionDataChanges): Promise<Session | null>
  /** The session of a `Request` (a route handler's argument). */
  fromRequest(request: Request): Promise<Session | null>
  /**
   * For `proxy.ts`: true when the request carries a session cookie whose signature verifies.
   * No store lookup, so it is an optimistic check (a revoked session still passes); pages and
   * route handlers must still call {@link StoreSession.get}.
   */
  hasSignedCookie(request: Request): boolean
}

/**
 * Server-side sessions over tessera's session manager: the cookie carries a signed opaque
 * token, the store keeps SHA-256 of it, expiry and revocation are decided on the server.
 *
 * @example
 * ```ts
 * const sessions = createStoreSession(createSessionManager(store, keyring, { secure: true }))
 * export async function signInAction(form: FormData) { 'use server'; await sessions.signIn(userId) }
 * ```
 */
export function createStoreSession(
  manager: SessionManager,
  options: StoreSessionOptions = {},
): StoreSession {
  const source = options.cookies ?? nextCookies
  const cookieHeader = cookieHeaderSource(options, source)

  /** The request's session, read from the raw header (a duplicated cookie reads as none). */
  async function current(): Promise<Session | null> {
    const validated = await manager.validate(await cookieHeader())
    if (validated === null) return null
    if (validated.setCookie !== undefined) {
      // Re-signed with the current secret; Next refuses cookie writes while a server component
      // renders, so the new cookie is sent by the next action or route handler instead.
      try {
        applySetCookies(await source(), [validated.setCookie])
      } catch {
        // rendering: keep the old cookie for now, it still verifies
      }
    }
    return validated.session
  }

  return {
    get: current,
    async signIn(userId, signInOptions = {}) {
      const previous = await manager.validate(await cookieHeader())
      // SECURITY: always a fresh token at sign-in, and the old session gone (OWASP ASVS 3.2.1).
      if (previous !== null) await manager.revoke(previous.session)
      const issued = await manager.create(userId, signInOptions)
      applySetCookies(await source(), [issued.setCookie])
      return issued.session
    },
    async signOut() {
      const found = await manager.validate(await cookieHeader())
      if (found !== null) await manager.revoke(found.session)
      applySetCookies(await source(), [manager.clearCookie()])
    },
    async update(changes) {
      const session = await current()
      return session === null ? null : manager.update(session, changes)
    },
    async fromRequest(request) {
      const validated = await manager.validate(request.headers.get('cookie'))
      return validated?.session ?? null
    },
    hasSignedCookie(request) {
      return manager.hasSignedCookie(request.headers.get('cookie'))
    },
  }
}

/** What a guarded route handler receives besides the request. */
export interface GuardContext<S> {
  session: S
}

/**
 * A check of a route handler's session, run by {@link withSession} before the handler: `null`
 * lets the request through, a `Response` answers it. Built by {@link requireFresh} and
 * {@link requireAAL}.
 */
export type SessionGuard<S> = (session: S) => Response | null

/** Options of {@link withSession}. */
export interface WithSessionOptions<S> {
  /** Checks run in order after the session is found; the first refusal answers. */
  guards?: readonly SessionGuard<S>[]
}

/** The API.md JSON answer of a refusal, never cached. */
function refusalResponse(refusal: AuthRefusal): Response {
  return Response.json(refusalBody(refusal), {
    status: refusal.status,
    headers: { ...refusal.headers, 'Cache-Control': 'no-store' },
  })
}

/**
 * A route handler guard: the handler runs with the session of the request, and a request
 * without one gets `401 {"error":{"code":"unauthenticated",...}}` (API.md's shape, from the
 * error table); `options.guards` ({@link requireFresh}, {@link requireAAL}) refuse with `403
 * reauthentication_required`.
 *
 * @example
 * ```ts
 * export const GET = withSession(sessions, async (request, { session }) => Response.json(session))
 * export const POST = withSession(sessions, changeEmail, { guards: [requireFresh(600)] })
 * ```
 */
export function withSession<S, C = unknown>(
  source: { fromRequest(request: Request): Promise<S | null> | S | null },
  handler: (
    request: Request,
    context: GuardContext<S> & { route: C },
  ) => Response | Promise<Response>,
  options: WithSessionOptions<S> = {},
): (request: Request, route: C) => Promise<Response> {
  const guards = options.guards ?? []
  return async (request, route) => {
    const session = await source.fromRequest(request)
    if (session === null) return refusalResponse(unauthenticatedRefusal())
    for (const guard of guards) {
      const refused = guard(session)
      if (refused !== null) return refused
    }
    return handler(request, { session, route })
  }
}

/**
 * A {@link withSession} guard for sensitive changes: `403 reauthentication_required` unless the
 * user proved a credential within the last `maxAgeSeconds` (the session's `authTime`). Also
 * usable on its own in a server action: `requireFresh(600)(session)` is `null` or the refusal.
 *
 * @throws TesseraError `config_invalid` unless `maxAgeSeconds` is positive
 */
export function requireFresh(
  maxAgeSeconds: number,
  options: { now?: () => number } = {},
): SessionGuard<Session> {
  const maxAge = checkMaxAge(maxAgeSeconds)
  const now = options.now ?? Date.now
  return (session) => {
    const refused = freshnessRefusal(session.authTime, maxAge, now())
    return refused === null ? null : refusalResponse(refused)
  }
}

/**
 * A {@link withSession} guard: `403 reauthentication_required` unless the session's `aal`
 * reaches `level` (2: a second factor, or a passkey with user verification).
 *
 * @throws TesseraError `config_invalid` unless `level` is 1 or 2
 */
export function requireAAL(level: 1 | 2): SessionGuard<Session> {
  const checked = checkAALLevel(level)
  return (session) => {
    const refused = assuranceRefusal(session.aal, checked)
    return refused === null ? null : refusalResponse(refused)
  }
}

/** Applies `Set-Cookie` lines made by tessera's cookie codec to Next's cookie jar. */
function applySetCookies(jar: CookieJar, lines: readonly string[]): void {
  for (const line of lines) {
    const [pair = '', ...parts] = line.split('; ')
    const eq = pair.indexOf('=')
    const name = pair.slice(0, eq)
    const value = pair.slice(eq + 1)
    const options: NextCookieOptions = { httpOnly: false }
    for (const part of parts) {
      const split = part.indexOf('=')
      const key = (split === -1 ? part : part.slice(0, split)).toLowerCase()
      const attribute = split === -1 ? '' : part.slice(split + 1)
      if (key === 'max-age') options.maxAge = Number(attribute)
      else if (key === 'expires') options.expires = new Date(attribute)
      else if (key === 'path') options.path = attribute
      else if (key === 'domain') options.domain = attribute
      else if (key === 'secure') options.secure = true
      else if (key === 'httponly') options.httpOnly = true
      else if (key === 'samesite') options.sameSite = attribute.toLowerCase() as 'lax'
      else if (key === 'priority') options.priority = attribute.toLowerCase() as 'low'
    }
    jar.set(name, value, options)
  }
}
