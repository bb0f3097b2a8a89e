import {
  DEFAULT_COOKIE_BUDGET,
  DEFAULT_MAX_CHUNKS,
  MAX_COOKIE_SIZE,
  joinCookieChunks,
  parseCookieHeader,
  readCookie,
  serializeChunkedCookie,
  serializeDeletedChunkedCookie,
} from './cookie.js'
import {
  DEFAULT_LIFETIMES,
  createCookiePolicy,
  mergeData,
  sessionLifetimes,
} from './cookie-policy.js'
import type { CookiePolicyOptions, LifetimeOptions } from './cookie-policy.js'
import { TesseraError } from './errors.js'
import type { KeyPurpose, Keyring } from './keyring.js'
import { sealValue, unsealValue } from './sealing.js'
import type { SessionGenerationStore } from './session-generations.js'
import type { JSONValue } from './session-store.js'
import type { SessionDataChanges } from './session-manager.js'

/** Options of {@link createCookieSessions}. Durations are seconds. */
export interface CookieSessionOptions extends CookiePolicyOptions, LifetimeOptions {
  /**
   * Cookie name; chunks are `name.0`, `name.1`, … The default is `tessera_state`, or
   * `__Host-tessera_state` with `secure` (`__Secure-tessera_state` with a `domain` or a path
   * other than `/`).
   * @default 'tessera_state'
   */
  cookieName?: string
  /**
   * Whether a read pushes the idle expiry forward (re-sealing the cookie at most once per
   * `touchInterval`). `false`: only writes (`create`, `update`) seal it again, and a read
   * re-seals only to retire a fallback secret; right when `idleTimeout` equals
   * `absoluteTimeout`, where sliding could move nothing.
   * @default true
   */
  sliding?: boolean
  /**
   * Most bytes all chunks of the cookie may add to the `Cookie` request header; writing more
   * throws `cookie_too_large`. @default 8192
   */
  maxTotalSize?: number
  /** Most bytes of one `Set-Cookie` line, attributes included. @default 4096 */
  maxCookieSize?: number
  /** Most chunks. @default 10 */
  maxChunks?: number
  /**
   * Per-user session generations, checked on every validate (one read) and bumped by
   * {@link CookieSessions.revokeAll}. Without it, a cookie session cannot be revoked before it
   * expires.
   */
  generations?: SessionGenerationStore
  /** Purpose the seal is bound to. @default 'cookie-session' */
  purpose?: KeyPurpose
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number
}

/** A stateless session, as sealed in its cookie. Times are epoch milliseconds. */
export interface CookieSession {
  readonly userId: string | null
  readonly createdAt: number
  readonly lastSeenAt: number
  /** min(idle expiry, absolute expiry). */
  readonly expiresAt: number
  readonly absoluteExpiresAt: number
  /** The user's session generation when the session was created (0 without generations). */
  readonly generation: number
  readonly data: Readonly<Record<string, JSONValue>>
}

/** A session and the `Set-Cookie` lines that store it (chunks, then deletions of stale ones). */
export interface CookieSessionResult {
  session: CookieSession
  setCookie: string[]
}

/** The stateless cookie session API. Built by {@link createCookieSessions}. */
export interface CookieSessions {
  /** The cookie name in use (prefix included). */
  readonly cookieName: string
  /**
   * Starts a session. Pass the request's `cookieHeader` so chunks of an older, longer session
   * are deleted.
   * @throws TesseraError `cookie_too_large` when the sealed session passes the budget;
   *   `store_unavailable` from the generation store
   */
  create(
    userId: string | null,
    options?: { data?: Record<string, JSONValue>; cookieHeader?: string | null },
  ): Promise<CookieSessionResult>
  /**
   * The session sealed in a request's cookies, or `null` when absent, tampered with, expired,
   * or of an old generation. A `setCookie` comes back when the cookie was re-sealed (idle expiry
   * pushed forward, or sealed under a fallback secret).
   * @throws TesseraError `store_unavailable` from the generation store (never `null`)
   */
  validate(
    cookieHeader: string | null | undefined,
  ): Promise<{ session: CookieSession; setCookie?: string[] } | null>
  /**
   * The session with `changes` merged (a key set to `undefined` is removed), re-sealed.
   * @throws TesseraError `cookie_too_large` when the result passes the budget
   */
  update(
    session: CookieSession,
    changes: SessionDataChanges,
    options?: { cookieHeader?: string | null },
  ): CookieSessionResult
  /** `Set-Cookie` lines deleting the cookie and every chunk present in `cookieHeader`. */
  clearCookie(cookieHeader?: string | null): string[]
  /**
   * "Log out everywhere": bumps the user's generation, so every cookie session of the user
   * created before stops validating. Returns the new generation.
   * @throws TesseraError `config_invalid` without a `generations` store; `store_unavailable`
   */
  revokeAll(userId: string): Promise<number>
}

/** What is sealed: short keys, since every byte travels on every request. */
interface Payload {
  v: 1
  /** user id */
  u: string | null
  /** issued at (created) */
  i: number
  /** last seen */
  l: number
  /** idle expiry */
  e: number
  /** absolute expiry */
  a: number
  /** generation */
  g: number
  /** data */
  d: Record<string, JSONValue>
}

/**
 * Stateless sessions: the session data sealed (AES-256-GCM, keyring purpose-bound) into the
 * cookie, with issued-at, idle and absolute expiry inside the seal, split into chunks past one
 * cookie's size, and refused with `cookie_too_large` before the cookies pass `maxTotalSize`.
 *
 * No store is needed, which also means one session cannot be revoked before it expires (a copy
 * of the cookie stays valid). The optional `generations` store adds "log out everywhere" for
 * the price of one read per validate. See docs/sessions.md.
 *
 * @throws TesseraError `config_invalid` for a bad option
 * @example
 * ```ts
 * const sessions = createCookieSessions(keyring, { secure: true })
 * const { setCookie } = await sessions.create(user.id, { data: { theme: 'dark' } })
 * for (const line of setCookie) response.headers.append('Set-Cookie', line)
 * const current = await sessions.validate(request.headers.get('cookie'))
 * ```
 */
export function createCookieSessions(
  keyring: Keyring,
  options: CookieSessionOptions = {},
): CookieSessions {
  const { idleMs, absoluteMs, touchMs } = sessionLifetimes(
    options,
    DEFAULT_LIFETIMES,
    'cookie sessions',
  )
  const purpose = options.purpose ?? 'cookie-session'
  if (typeof purpose !== 'string' || purpose.length === 0) {
    throw new TesseraError('config_invalid', 'cookie sessions: purpose must be a non-empty string')
  }
  const now = options.now ?? Date.now
  const sliding = options.sliding ?? true
  const generations = options.generations
  const { name: cookieName, attributes } = createCookiePolicy(
    'tessera_state',
    options,
    'cookie sessions',
  )
  const chunkOptions = {
    maxTotalSize: options.maxTotalSize ?? DEFAULT_COOKIE_BUDGET,
    maxCookieSize: options.maxCookieSize ?? MAX_COOKIE_SIZE,
    maxChunks: options.maxChunks ?? DEFAULT_MAX_CHUNKS,
  }
  try {
    // Validates the size options once, here, rather than on the first request.
    serializeChunkedCookie(cookieName, 'x', attributes, chunkOptions)
  } catch (error) {
    throw new TesseraError(
      'config_invalid',
      `cookie sessions: cookie options are unusable: ${(error as Error).message}`,
      { cause: error },
    )
  }

  const chunkMarker = `${cookieName}.`

  function toSession(payload: Payload): CookieSession {
    return {
      userId: payload.u,
      createdAt: payload.i,
      lastSeenAt: payload.l,
      expiresAt: Math.min(payload.e, payload.a),
      absoluteExpiresAt: payload.a,
      generation: payload.g,
      data: payload.d,
    }
  }

  function write(payload: Payload, cookieHeader: string | null | undefined, at: number): string[] {
    const sealed = sealValue(keyring, purpose, JSON.stringify(payload), {
      // The seal itself stops opening at the absolute expiry, whatever the payload says.
      ttl: (payload.a - at) / 1000,
      now: () => at,
    })
    const existing = cookieHeader ? parseCookieHeader(cookieHeader) : undefined
    const lines = serializeChunkedCookie(
      cookieName,
      sealed,
      { ...attributes, maxAge: Math.ceil((payload.a - at) / 1000) },
      existing === undefined ? chunkOptions : { ...chunkOptions, existing },
    )
    return lines
  }

  function payloadOf(session: CookieSession): Payload {
    return {
      v: 1,
      u: session.userId,
      i: session.createdAt,
      l: session.lastSeenAt,
      e: session.expiresAt,
      a: session.absoluteExpiresAt,
      g: session.generation,
      d: { ...session.data },
    }
  }

  return {
    cookieName,

    async create(userId, createOptions = {}): Promise<CookieSessionResult> {
      if (userId !== null && (typeof userId !== 'string' || userId.length === 0)) {
        throw new TesseraError(
          'invalid_argument',
          'cookie session create: userId must be a non-empty string or null',
        )
      }
      const generation =
        generations !== undefined && userId !== null ? await generations.get(userId) : 0
      const at = now()
      const payload: Payload = {
        v: 1,
        u: userId,
        i: at,
        l: at,
        e: at + idleMs,
        a: at + absoluteMs,
        g: generation,
        d: { ...(createOptions.data ?? {}) },
      }
      const setCookie = write(payload, createOptions.cookieHeader, at)
      return { session: toSession(payload), setCookie }
    },

    async validate(cookieHeader) {
      if (typeof cookieHeader !== 'string' || cookieHeader.length === 0) return null
      // Fast path for the common unchunked cookie: read just it. Whenever a chunk could be
      // present, parse everything and let joinCookieChunks decide (it refuses mixed forms).
      const sealed = cookieHeader.includes(chunkMarker)
        ? joinCookieChunks(parseCookieHeader(cookieHeader, { duplicates: 'none' }), cookieName, {
            maxChunks: chunkOptions.maxChunks,
          })
        : (readCookie(cookieHeader, cookieName) ?? null)
      if (sealed === null) return null
      const at = now()
      // SECURITY: AES-GCM authenticates the whole payload before anything in it is read; a
      // tampered, truncated or re-purposed cookie opens as null (OWASP ASVS 3.2 / 6.2).
      const opened = unsealValue(keyring, purpose, sealed, { now: () => at })
      if (opened === null) return null
      const payload = parsePayload(opened.value)
      // SECURITY: idle and absolute expiry are read from inside the seal, never from cookie
      // attributes the client controls.
      if (payload === null || at >= payload.e || at >= payload.a) return null
      if (generations !== undefined && payload.u !== null) {
        // SECURITY: a cookie of an older generation was revoked by "log out everywhere".
        // Equality, not "at least": a generation store that lost its record signs users out
        // rather than reviving revoked cookies.
        if ((await generations.get(payload.u)) !== payload.g) return null
      }
      if ((!sliding || at - payload.l < touchMs) && !opened.needsReseal) {
        return { session: toSession(payload) }
      }
      const next: Payload = sliding
        ? { ...payload, l: at, e: Math.min(at + idleMs, payload.a) }
        : payload
      return { session: toSession(next), setCookie: write(next, cookieHeader, at) }
    },

    update(session, changes, updateOptions = {}): CookieSessionResult {
      if (changes === null || typeof changes !== 'object' || Array.isArray(changes)) {
        throw new TesseraError(
          'invalid_argument',
          'cookie session update: changes must be an object',
        )
      }
      const at = now()
      const payload = payloadOf(session)
      payload.d = mergeData(payload.d, changes)
      payload.l = at
      payload.e = Math.min(at + idleMs, payload.a)
      const setCookie = write(payload, updateOptions.cookieHeader, at)
      return { session: toSession(payload), setCookie }
    },

    clearCookie(cookieHeader): string[] {
      return serializeDeletedChunkedCookie(
        cookieName,
        cookieHeader ? parseCookieHeader(cookieHeader) : {},
        attributes,
      )
    },

    async revokeAll(userId): Promise<number> {
      if (generations === undefined) {
        throw new TesseraError(
          'config_invalid',
          'cookie sessions: revokeAll needs the generations option (a SessionGenerationStore)',
        )
      }
      return generations.bump(userId)
    },
  }
}

function parsePayload(text: string): Payload | null {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return null
  }
  if (value === null || typeof value !== 'object') return null
  const p = value as Partial<Payload>
  if (
    p.v !== 1 ||
    (p.u !== null && typeof p.u !== 'string') ||
    !isTime(p.i) ||
    !isTime(p.l) ||
    !isTime(p.e) ||
    !isTime(p.a) ||
    typeof p.g !== 'number' ||
    !Number.isSafeInteger(p.g) ||
    p.d === null ||
    typeof p.d !== 'object' ||
    Array.isArray(p.d)
  ) {
    return null
  }
  return p as Payload
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value)
}
