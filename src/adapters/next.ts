/**
 * Next.js App Router helpers over `cookies()` from `next/headers`: read the session in server
 * components, sign in and out in server actions and route handlers, guard route handlers, and
 * check a request in `proxy.ts` (Next 16; `middleware.ts` with `runtime: 'nodejs'` before).
 *
 * Two ways a Next app keeps sessions:
 * - {@link createSealedSession}: stateless, the data sealed (AES-256-GCM) in the cookie itself,
 *   chunked past 4 KB (the iron-session use case);
 * - {@link createStoreSession}: server-side, over tessera's session manager and any store.
 *
 * Runtime: tessera uses `node:crypto`, so everything here runs on the Node.js runtime (server
 * components, server actions, route handlers, `proxy.ts`), not on the Edge runtime.
 */
// 'next/headers.js': next has no exports map, and NodeNext resolution needs the file name.
import { cookies } from 'next/headers.js'
import {
  DEFAULT_MAX_CHUNKS,
  joinCookieChunks,
  parseCookieHeader,
  serializeChunkedCookie,
  serializeDeletedChunkedCookie,
} from '../core/cookie.js'
import type { CookieAttributes } from '../core/cookie.js'
import { TesseraError } from '../core/errors.js'
import type { Keyring } from '../core/keyring.js'
import { sealValue, unsealValue } from '../core/sealing.js'
import type { Session, SessionDataChanges, SessionManager } from '../core/session-manager.js'
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

const nextCookies: CookieSource = async () => (await cookies()) as unknown as CookieJar

/** Options of {@link createSealedSession}. */
export interface SealedSessionOptions {
  /** Cookie name. @default 'tessera_seal' */
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
  fromRequest(request: Request): T | null
}

/**
 * A stateless session: `data` sealed with the keyring (purpose `next-session`) in a cookie,
 * chunked when it is over 4 KB. Revocation is not possible before `ttl` ends; use
 * {@link createStoreSession} when sessions must be revocable.
 *
 * @throws TesseraError `config_invalid` for a bad `ttl`
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
  const name = options.cookieName ?? 'tessera_seal'
  const ttl = options.ttl ?? 7 * 86_400
  if (!Number.isFinite(ttl) || ttl <= 0) {
    throw new TesseraError('config_invalid', 'next sealed session: ttl must be positive seconds')
  }
  const purpose = options.purpose ?? 'next-session'
  const now = options.now ?? Date.now
  const source = options.cookies ?? nextCookies
  const attributes: CookieAttributes = {
    path: options.path ?? '/',
    secure: options.secure ?? process.env.NODE_ENV === 'production',
    httpOnly: true,
    sameSite: options.sameSite ?? 'Lax',
  }
  if (options.domain !== undefined) attributes.domain = options.domain
  keyring.key('seal') // fail fast on a keyring without keys

  function open(all: Record<string, string>): T | null {
    const sealed = joinCookieChunks(all, name, { maxChunks: DEFAULT_MAX_CHUNKS })
    if (sealed === null) return null
    // SECURITY: unsealValue authenticates before anything is parsed and never throws on
    // untrusted input; the expiry travels inside the ciphertext.
    const opened = unsealValue(keyring, purpose, sealed, { now })
    if (opened === null) return null
    try {
      const value = JSON.parse(opened.value) as unknown
      return value !== null && typeof value === 'object' && !Array.isArray(value)
        ? (value as T)
        : null
    } catch {
      return null
    }
  }

  return {
    async get() {
      return open(jarRecord(await source()))
    },
    async set(data) {
      const jar = await source()
      const sealed = sealValue(keyring, purpose, JSON.stringify(data), { ttl, now })
      const lines = serializeChunkedCookie(
        name,
        sealed,
        { ...attributes, maxAge: ttl },
        { existing: jarRecord(jar) },
      )
      applySetCookies(jar, lines)
    },
    async clear() {
      const jar = await source()
      applySetCookies(jar, serializeDeletedChunkedCookie(name, jarRecord(jar), attributes))
    },
    fromRequest(request) {
      return open(parseCookieHeader(request.headers.get('cookie')))
    },
  }
}

/** Options of {@link createStoreSession}. */
export interface StoreSessionOptions {
  /** @default `cookies()` from `next/headers` */
  cookies?: CookieSource
}

/** Server-side sessions in a Next app. */
export interface StoreSession {
  /** The current session (server components, actions, route handlers); `null` when none. */
  get(): Promise<Session | null>
  /**
   * Starts a session for `userId` and sets its cookie (actions and route handlers). A session
   * the request already had is revoked first: a new token on every sign-in (no fixation).
   */
  signIn(
    userId: string,
    options?: { data?: Record<string, JSONValue>; meta?: SessionMeta },
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

  async function current(jar: CookieJar): Promise<Session | null> {
    const validated = await manager.validateCookie(jar.get(manager.cookieName)?.value)
    if (validated === null) return null
    if (validated.setCookie !== undefined) {
      // Re-signed with the current secret; Next refuses cookie writes while a server component
      // renders, so the new cookie is sent by the next action or route handler instead.
      try {
        applySetCookies(jar, [validated.setCookie])
      } catch {
        // rendering: keep the old cookie for now, it still verifies
      }
    }
    return validated.session
  }

  return {
    async get() {
      return current(await source())
    },
    async signIn(userId, signInOptions = {}) {
      const jar = await source()
      const previous = await manager.validateCookie(jar.get(manager.cookieName)?.value)
      // SECURITY: always a fresh token at sign-in, and the old session gone (OWASP ASVS 3.2.1).
      if (previous !== null) await manager.revoke(previous.session)
      const issued = await manager.create(userId, signInOptions)
      applySetCookies(jar, [issued.setCookie])
      return issued.session
    },
    async signOut() {
      const jar = await source()
      const found = await manager.validateCookie(jar.get(manager.cookieName)?.value)
      if (found !== null) await manager.revoke(found.session)
      applySetCookies(jar, [manager.clearCookie()])
    },
    async update(changes) {
      const session = await current(await source())
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
 * A route handler guard: the handler runs with the session of the request, and a request
 * without one gets `401 {"error":{"code":"unauthenticated",...}}` (API.md's shape).
 *
 * @example
 * ```ts
 * export const GET = withSession(sessions, async (request, { session }) => Response.json(session))
 * ```
 */
export function withSession<S, C = unknown>(
  source: { fromRequest(request: Request): Promise<S | null> | S | null },
  handler: (
    request: Request,
    context: GuardContext<S> & { route: C },
  ) => Response | Promise<Response>,
): (request: Request, route: C) => Promise<Response> {
  return async (request, route) => {
    const session = await source.fromRequest(request)
    if (session === null) {
      return Response.json(
        { error: { code: 'unauthenticated', message: 'sign in to use this resource' } },
        { status: 401, headers: { 'Cache-Control': 'no-store' } },
      )
    }
    return handler(request, { session, route })
  }
}

function jarRecord(jar: CookieJar): Record<string, string> {
  const record = Object.create(null) as Record<string, string>
  for (const { name, value } of jar.getAll()) if (!(name in record)) record[name] = value
  return record
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
