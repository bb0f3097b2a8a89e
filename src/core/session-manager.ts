import { hash, randomBytes } from 'node:crypto'
import { readCookie, serializeCookie, serializeDeletedCookie } from './cookie.js'
import {
  DEFAULT_LIFETIMES,
  createCookiePolicy,
  mergeData,
  sessionLifetimes,
} from './cookie-policy.js'
import type { CookiePolicyOptions, DataChanges, LifetimeOptions } from './cookie-policy.js'
import { TesseraError } from './errors.js'
import type { KeyPurpose, Keyring } from './keyring.js'
import { PUBLIC_ID_LENGTH } from './session-store.js'
import type { JSONValue, SessionMeta, SessionRecord, SessionStore } from './session-store.js'
import { signValue, verifyValue } from './signing.js'

/** Options of {@link createSessionManager}. Durations are seconds. */
export interface SessionManagerOptions extends CookiePolicyOptions, LifetimeOptions {
  /**
   * Cookie name. The default is `tessera_session`, or `__Host-tessera_session` with `secure`
   * (`__Secure-tessera_session` when a `domain` or a path other than `/` rules out `__Host-`).
   * @default 'tessera_session'
   */
  cookieName?: string
  /** Keyring purpose of the cookie signature; admin sessions use `'admin-session'`. @default 'session' */
  purpose?: KeyPurpose
  /**
   * How many times {@link SessionManager.update} tries its compare-and-set before giving up
   * with `store_conflict`. Retries after the first wait a short random time.
   * @default 32
   */
  maxUpdateAttempts?: number
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number
  /**
   * Which tokens {@link SessionManager.validateToken}, the cookie check and
   * `create({ token })` accept. Only for adapters whose ids come from elsewhere (the
   * express-session drop-in's `genid`); the store keeps SHA-256 of whatever token is used.
   * @default 43 base64url characters (tessera's own 256-bit tokens)
   */
  acceptToken?: (token: string) => boolean
  /**
   * The idle timeout of one session, in seconds, when it is not `idleTimeout` (the drop-in reads
   * the session's own cookie `maxAge`); `undefined` means `idleTimeout`. The touch interval is
   * never more than a tenth of it.
   */
  idleTimeoutOf?: (record: SessionRecord) => number | undefined
}

/**
 * An authentication method of RFC 8176 as API.md lists them: `pwd` password, `otp` one-time
 * code, `hwk` / `swk` hardware- or software-bound key (a passkey), `user` user presence or
 * verification, `mfa` several factors, `mca` a recovery code, plus `fed` for a sign-in through
 * an identity provider.
 */
export type AuthMethod = 'pwd' | 'otp' | 'hwk' | 'swk' | 'user' | 'mfa' | 'mca' | 'fed'

/** The methods {@link AuthMethod} lists, for checking input. */
export const AUTH_METHODS: readonly AuthMethod[] = [
  'pwd',
  'otp',
  'hwk',
  'swk',
  'user',
  'mfa',
  'mca',
  'fed',
]

/**
 * How a session's user proved who they are, given to {@link SessionManager.create} and
 * {@link SessionManager.regenerate}. Every field is optional: `time` defaults to now, `aal` to 1,
 * `amr` to none.
 */
export interface SessionAuth {
  /** When the credential was proved, epoch ms. @default now */
  time?: number
  /** Authenticator assurance level: 2 for two factors (or a passkey with user verification). @default 1 */
  aal?: 1 | 2
  /** The methods used. @default [] */
  amr?: readonly AuthMethod[]
}

/**
 * A live session as the application sees it. It never contains the token; `id` is a public
 * handle (the first 22 characters, 128 bits, of the stored SHA-256 of the token) that is safe
 * to show and log, and that cannot be used to look a record up in the store.
 * Times are epoch milliseconds.
 */
export interface Session {
  readonly id: string
  readonly userId: string | null
  readonly createdAt: number
  readonly lastSeenAt: number
  /** When the session ends unless there is activity before: min(idle expiry, absolute expiry). */
  readonly expiresAt: number
  /** When the session ends whatever the activity. */
  readonly absoluteExpiresAt: number
  readonly data: Readonly<Record<string, JSONValue>>
  readonly meta: Readonly<SessionMeta>
  /** When the user last proved a credential in this session (epoch ms); `createdAt` when not recorded. */
  readonly authTime: number
  /** Authenticator assurance level of that proof (API.md `aal`). */
  readonly aal: 1 | 2
  /** The methods of that proof (API.md `amr`, RFC 8176). */
  readonly amr: readonly AuthMethod[]
}

/** The public JSON shape of a session (API.md): ISO 8601 times, no token, no stored id. */
export interface PublicSession {
  id: string
  createdAt: string
  lastSeenAt: string
  expiresAt: string
  absoluteExpiresAt: string
  authTime: string
  aal: 1 | 2
  amr: AuthMethod[]
}

/** A new session: send `setCookie` as a `Set-Cookie` header, or hand `token` to a non-browser client. */
export interface IssuedSession {
  session: Session
  /** The bearer secret. Never log or store it; the store keeps only its SHA-256. */
  token: string
  setCookie: string
}

/** A session that validated, and a `Set-Cookie` to send when the cookie must be re-issued. */
export interface ValidatedSession {
  session: Session
  /** Present when the cookie was signed with a fallback key and is re-signed with the current one. */
  setCookie?: string
}

/** Changes to a session's data: a key set to `undefined` is removed. */
export type SessionDataChanges = DataChanges

/** @deprecated import `readCookie` from the cookie module (`tessera-auth`); kept for old imports. */
export { readCookie } from './cookie.js'

/** The server-side session API. Built by {@link createSessionManager}. */
export interface SessionManager {
  /** The cookie name in use (prefix included). */
  readonly cookieName: string
  /**
   * Starts a session for `userId` (`null` for an anonymous session).
   * @throws TesseraError `store_unavailable` when the store cannot be reached
   */
  create(
    userId: string | null,
    options?: {
      data?: Record<string, JSONValue>
      meta?: SessionMeta
      /** How the user proved who they are; recorded as the session's `authTime`, `aal`, `amr`. */
      auth?: SessionAuth
      /** A token chosen by the caller (see `acceptToken`); a new random one by default. */
      token?: string
    },
  ): Promise<IssuedSession>
  /**
   * The session of a request's `Cookie` header, or `null` when there is none, it is forged, or
   * it has expired. Never throws on untrusted input.
   * @throws TesseraError `store_unavailable` when the store cannot be reached (never `null`)
   */
  validate(cookieHeader: string | null | undefined): Promise<ValidatedSession | null>
  /** {@link SessionManager.validate} for an already parsed cookie value. */
  validateCookie(cookieValue: string | null | undefined): Promise<ValidatedSession | null>
  /**
   * The session of a raw token (an `Authorization: Bearer` header, a non-cookie transport),
   * without the cookie signature.
   * @throws TesseraError `store_unavailable` when the store cannot be reached
   */
  validateToken(token: string | null | undefined): Promise<{ session: Session } | null>
  /**
   * Merges `changes` into the stored data key by key with compare-and-set, retrying on conflict,
   * so concurrent updates of different keys all survive. Returns the updated session, or `null`
   * when the session was revoked or expired meanwhile (it is never recreated).
   * @throws TesseraError `store_conflict` when the retry budget runs out, `store_unavailable`
   */
  update(session: Session, changes: SessionDataChanges): Promise<Session | null>
  /**
   * A new token for the same session data, and the old one deleted. Call it on login and on
   * any privilege change. With `options.auth` (a step-up, a password change) the session's
   * `authTime`, `aal` and `amr` are replaced by it. Returns `null` when the session is gone.
   * @throws TesseraError `store_unavailable`, `invalid_argument` for an unusable `auth`
   */
  regenerate(session: Session, options?: { auth?: SessionAuth }): Promise<IssuedSession | null>
  /** Deletes the session. @throws TesseraError `store_unavailable` */
  revoke(session: Session): Promise<void>
  /**
   * One of `userId`'s live sessions by its public id (an access token's `sid`), or `null` when
   * the user has no such session (another user's id included) or it has expired. One keyed
   * store read when the store has `getByPublicId` (every tessera store), whatever the number of
   * sessions; it does not extend the idle time. @throws TesseraError `store_unavailable`
   */
  getById(userId: string, sessionId: string): Promise<Session | null>
  /**
   * Deletes one of `userId`'s sessions by its public id; false when the user has no such
   * session (another user's id included). @throws TesseraError `store_unavailable`
   */
  revokeById(userId: string, sessionId: string): Promise<boolean>
  /**
   * Deletes every session of the user, except `options.except`; returns how many.
   * @throws TesseraError `store_unavailable`
   */
  revokeAll(userId: string, options?: { except?: Session }): Promise<number>
  /** The user's live sessions, most recently seen first. @throws TesseraError `store_unavailable` */
  list(userId: string): Promise<Session[]>
  /** A `Set-Cookie` value that deletes the session cookie (same name, path, domain and prefix). */
  clearCookie(): string
  /**
   * True when the `Cookie` header carries a session cookie whose signature verifies, without a
   * store lookup: an optimistic check for places that must not wait on the store (a Next.js
   * `proxy.ts`). A revoked or expired session still passes; the real check is `validate`.
   */
  hasSignedCookie(cookieHeader: string | null | undefined): boolean
}

const TOKEN_BYTES = 32
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/

/**
 * Builds the server-side session manager over a store and a keyring.
 *
 * A token is 32 random bytes (base64url). The cookie carries the token and its HMAC signature
 * (keyring purpose `session`); the store holds only SHA-256(token). Expiry (idle and absolute)
 * is decided here from the record and the injected clock, never from cookie attributes or store
 * TTLs. The cookie's `Max-Age` is the time left until the absolute expiry, so a browser drops it
 * no earlier than the server would.
 *
 * @throws TesseraError `config_invalid` for a bad option (checked here, not on the first request)
 * @example
 * ```ts
 * const sessions = createSessionManager(createMemoryStore(), keyring, { secure: true })
 * const { setCookie } = await sessions.create(user.id, { meta: { ip, userAgent } })
 * const current = await sessions.validate(request.headers.get('cookie'))
 * ```
 */
export function createSessionManager(
  store: SessionStore,
  keyring: Keyring,
  options: SessionManagerOptions = {},
): SessionManager {
  const { idleMs, absoluteMs, touchMs } = sessionLifetimes(
    options,
    DEFAULT_LIFETIMES,
    'session manager',
  )
  const maxAttempts = options.maxUpdateAttempts ?? 32
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
    throw new TesseraError(
      'config_invalid',
      'session manager: maxUpdateAttempts must be a whole number >= 1',
    )
  }
  const acceptToken = options.acceptToken ?? ((token: string) => TOKEN_PATTERN.test(token))
  const idleTimeoutOf = options.idleTimeoutOf

  function idleMsOf(record: SessionRecord): number {
    const seconds = idleTimeoutOf?.(record)
    return seconds !== undefined && Number.isFinite(seconds) && seconds > 0
      ? seconds * 1000
      : idleMs
  }

  function touchMsOf(record: SessionRecord): number {
    return idleTimeoutOf === undefined ? touchMs : Math.min(touchMs, idleMsOf(record) / 10)
  }
  const purpose = options.purpose ?? 'session'
  const now = options.now ?? Date.now
  keyring.key(purpose) // fail fast on an invalid purpose

  const { name: cookieName, attributes } = createCookiePolicy(
    'tessera_session',
    options,
    'session manager',
  )

  // The stored id of each session handed out. A WeakMap keeps it out of JSON, logs and spreads
  // of the public object; update/revoke re-read the record, so no version is kept here.
  const internals = new WeakMap<Session, { storeId: string }>()

  function toSession(record: SessionRecord): Session {
    const meta = record.meta
    const session: Session = {
      id: record.id.slice(0, PUBLIC_ID_LENGTH),
      userId: record.userId,
      createdAt: record.createdAt,
      lastSeenAt: record.lastSeenAt,
      expiresAt: record.expiresAt,
      absoluteExpiresAt: record.absoluteExpiresAt,
      data: record.data,
      meta,
      authTime: typeof meta.authTime === 'number' ? meta.authTime : record.createdAt,
      aal: meta.aal === 2 ? 2 : 1,
      amr: Array.isArray(meta.amr) ? (meta.amr as AuthMethod[]) : NO_METHODS,
    }
    internals.set(session, { storeId: record.id })
    return session
  }

  function storeIdOf(session: Session): string {
    const internal = internals.get(session)
    if (internal === undefined) {
      throw new TesseraError(
        'invalid_argument',
        'session manager: pass a session object returned by this manager',
      )
    }
    return internal.storeId
  }

  function cookieFor(token: string, absoluteExpiresAt: number, at: number): string {
    return serializeCookie(cookieName, signValue(keyring, purpose, token), {
      ...attributes,
      maxAge: Math.ceil((absoluteExpiresAt - at) / 1000),
    })
  }

  function isExpired(record: SessionRecord, at: number): boolean {
    // SECURITY: the absolute limit ends a session however active it is (OWASP ASVS 3.3.1,
    // 3.3.2); both limits are read from the record, never from the cookie.
    return at >= record.expiresAt || at >= record.absoluteExpiresAt
  }

  function touched(record: SessionRecord, at: number): SessionRecord {
    return {
      ...record,
      version: record.version + 1,
      lastSeenAt: at,
      expiresAt: Math.min(at + idleMsOf(record), record.absoluteExpiresAt),
    }
  }

  /**
   * Reads, changes and compare-and-sets a record until the write lands. `change` returns the
   * record to write, or `null` when no write is needed. Returns the record as stored, or `null`
   * when it is gone or expired.
   */
  async function mutate(
    storeId: string,
    change: (record: SessionRecord, at: number) => SessionRecord | null,
    first?: SessionRecord,
  ): Promise<SessionRecord | null> {
    let current: SessionRecord | null | undefined = first
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      if (attempt > 1) await backoff(attempt)
      current ??= await store.get(storeId)
      const at = now()
      if (current === null || isExpired(current, at)) return null
      const next = change(current, at)
      if (next === null) return current
      if (await store.update(next, current.version)) return next
      current = undefined
    }
    throw new TesseraError(
      'store_conflict',
      `session update lost the compare-and-set ${maxAttempts} times to concurrent writers`,
    )
  }

  /**
   * The record of `userId` with public id `sessionId`, or `null`. Addressed only together with
   * the user id: one user can never reach another's session by its public id.
   */
  async function findByPublicId(userId: string, sessionId: string): Promise<SessionRecord | null> {
    if (typeof userId !== 'string' || userId.length === 0) return null
    if (typeof sessionId !== 'string' || sessionId.length !== PUBLIC_ID_LENGTH) return null
    if (store.getByPublicId !== undefined) {
      const record = await store.getByPublicId(userId, sessionId)
      // SECURITY: checked here too, not only trusted to the store: the record must be this
      // user's and carry this public id (a custom store's bug must not cross users).
      return record !== null &&
        record.userId === userId &&
        record.id.slice(0, PUBLIC_ID_LENGTH) === sessionId
        ? record
        : null
    }
    for (const record of await store.listByUser(userId)) {
      if (record.userId === userId && record.id.slice(0, PUBLIC_ID_LENGTH) === sessionId) {
        return record
      }
    }
    return null
  }

  async function issue(record: SessionRecord, token: string, at: number): Promise<IssuedSession> {
    await store.create(record)
    return {
      session: toSession(record),
      token,
      setCookie: cookieFor(token, record.absoluteExpiresAt, at),
    }
  }

  async function lookup(token: string): Promise<SessionRecord | null> {
    const storeId = hashToken(token)
    const record = await store.get(storeId)
    if (record === null) return null
    if (record.id !== storeId) return null
    if (isExpired(record, now())) {
      await store.delete(storeId)
      return null
    }
    const at = now()
    if (at - record.lastSeenAt < touchMsOf(record)) return record
    // The idle expiry moves at most once per touch interval: one write per interval, not one
    // per request. A lost compare-and-set means another request touched or updated it.
    return mutate(
      storeId,
      (current, time) =>
        time - current.lastSeenAt < touchMsOf(current) ? null : touched(current, time),
      record,
    )
  }

  async function validateCookie(
    cookieValue: string | null | undefined,
  ): Promise<ValidatedSession | null> {
    if (typeof cookieValue !== 'string' || cookieValue.length === 0) return null
    // SECURITY: the signature is checked before any store lookup, so forged or garbage cookies
    // cost one HMAC and never reach the store (no store amplification, no lookup timing oracle).
    const verified = verifyValue(keyring, purpose, cookieValue)
    if (verified === null || !acceptToken(verified.value)) return null
    const record = await lookup(verified.value)
    if (record === null) return null
    const session = toSession(record)
    if (!verified.needsResign) return { session }
    // Signed with a fallback secret: re-sign with the current one so the fallback can retire.
    return { session, setCookie: cookieFor(verified.value, record.absoluteExpiresAt, now()) }
  }

  return {
    cookieName,

    async create(userId, createOptions = {}): Promise<IssuedSession> {
      if (userId !== null && (typeof userId !== 'string' || userId.length === 0)) {
        throw new TesseraError(
          'invalid_argument',
          'session create: userId must be a non-empty string or null',
        )
      }
      const token = createOptions.token ?? randomBytes(TOKEN_BYTES).toString('base64url')
      if (typeof token !== 'string' || !acceptToken(token)) {
        throw new TesseraError('invalid_argument', 'session create: token is not an accepted token')
      }
      const at = now()
      const absoluteExpiresAt = at + absoluteMs
      // SECURITY: the store keeps only SHA-256(token): a leaked store or backup yields no
      // usable cookie (OWASP ASVS 3.2.2 / 2.9).
      const record: SessionRecord = {
        id: hashToken(token),
        userId,
        version: 1,
        createdAt: at,
        lastSeenAt: at,
        expiresAt: absoluteExpiresAt,
        absoluteExpiresAt,
        data: { ...(createOptions.data ?? {}) },
        meta: withAuth(
          { ...(createOptions.meta ?? {}) },
          createOptions.auth === undefined ? undefined : authFields(createOptions.auth, at),
        ),
      }
      record.expiresAt = Math.min(at + idleMsOf(record), absoluteExpiresAt)
      return issue(record, token, at)
    },

    validate(cookieHeader): Promise<ValidatedSession | null> {
      if (typeof cookieHeader !== 'string' || cookieHeader.length === 0)
        return Promise.resolve(null)
      return validateCookie(readCookie(cookieHeader, cookieName))
    },

    validateCookie,

    async validateToken(token): Promise<{ session: Session } | null> {
      if (typeof token !== 'string' || !acceptToken(token)) return null
      const record = await lookup(token)
      return record === null ? null : { session: toSession(record) }
    },

    async update(session, changes): Promise<Session | null> {
      const storeId = storeIdOf(session)
      if (changes === null || typeof changes !== 'object' || Array.isArray(changes)) {
        throw new TesseraError('invalid_argument', 'session update: changes must be an object')
      }
      // SECURITY: the compare-and-set never recreates a deleted record, so a request racing a
      // logout cannot resurrect the session (logout wins).
      const record = await mutate(storeId, (current, at) =>
        // The new data decides the idle window (idleTimeoutOf may read it).
        touched({ ...current, data: mergeData(current.data, changes) }, at),
      )
      return record === null ? null : toSession(record)
    },

    async regenerate(session, regenerateOptions = {}): Promise<IssuedSession | null> {
      const oldId = storeIdOf(session)
      const auth =
        regenerateOptions.auth === undefined ? undefined : authFields(regenerateOptions.auth, now())
      const old = await store.get(oldId)
      const at = now()
      if (old === null || isExpired(old, at)) return null
      const token = randomBytes(TOKEN_BYTES).toString('base64url')
      // SECURITY: a new token, and the old record deleted, so a token planted before login or
      // a privilege change is worthless after it (session fixation, OWASP ASVS 3.2.1). The
      // absolute expiry is kept: regenerating never extends a session's lifetime.
      const issued = await issue(
        {
          ...old,
          meta: auth === undefined ? old.meta : withAuth({ ...old.meta }, auth),
          id: hashToken(token),
          version: 1,
          lastSeenAt: at,
          expiresAt: Math.min(at + idleMsOf(old), old.absoluteExpiresAt),
        },
        token,
        at,
      )
      await store.delete(oldId)
      return issued
    },

    async revoke(session): Promise<void> {
      await store.delete(storeIdOf(session))
    },

    async getById(userId, sessionId): Promise<Session | null> {
      const record = await findByPublicId(userId, sessionId)
      return record === null || isExpired(record, now()) ? null : toSession(record)
    },

    async revokeById(userId, sessionId): Promise<boolean> {
      const record = await findByPublicId(userId, sessionId)
      if (record === null) return false
      await store.delete(record.id)
      return true
    },

    async revokeAll(userId, revokeOptions = {}): Promise<number> {
      const except = revokeOptions.except
      return store.deleteByUser(userId, except === undefined ? {} : { except: storeIdOf(except) })
    },

    async list(userId): Promise<Session[]> {
      const at = now()
      return (await store.listByUser(userId))
        .filter((record) => record.userId === userId && !isExpired(record, at))
        .sort((a, b) => b.lastSeenAt - a.lastSeenAt)
        .map(toSession)
    },

    clearCookie(): string {
      return serializeDeletedCookie(cookieName, attributes)
    },

    hasSignedCookie(cookieHeader): boolean {
      if (typeof cookieHeader !== 'string' || cookieHeader.length === 0) return false
      const verified = verifyValue(keyring, purpose, readCookie(cookieHeader, cookieName))
      return verified !== null && acceptToken(verified.value)
    },
  }
}

/** The public JSON shape of a session for API responses (API.md `session`). */
export function toPublicSession(session: Session): PublicSession {
  return {
    id: session.id,
    createdAt: new Date(session.createdAt).toISOString(),
    lastSeenAt: new Date(session.lastSeenAt).toISOString(),
    expiresAt: new Date(session.expiresAt).toISOString(),
    absoluteExpiresAt: new Date(session.absoluteExpiresAt).toISOString(),
    authTime: new Date(session.authTime).toISOString(),
    aal: session.aal,
    amr: [...session.amr],
  }
}

const NO_METHODS: readonly AuthMethod[] = Object.freeze([])

/** The stored form of a {@link SessionAuth}, checked: it decides what guards let through. */
function authFields(
  auth: SessionAuth,
  at: number,
): { authTime: number; aal: 1 | 2; amr: AuthMethod[] } {
  const time = auth.time ?? at
  const aal = auth.aal ?? 1
  const amr: unknown = auth.amr ?? []
  if (
    !Number.isSafeInteger(time) ||
    time < 0 ||
    (aal !== 1 && aal !== 2) ||
    !Array.isArray(amr) ||
    !amr.every((method: unknown) => AUTH_METHODS.includes(method as AuthMethod))
  ) {
    throw new TesseraError(
      'invalid_argument',
      `session auth: time must be epoch ms, aal 1 or 2, amr a list of ${AUTH_METHODS.join(', ')}`,
    )
  }
  return { authTime: time, aal, amr: [...new Set(amr as AuthMethod[])] }
}

function withAuth(
  meta: SessionMeta,
  auth: { authTime: number; aal: 1 | 2; amr: AuthMethod[] } | undefined,
): SessionMeta {
  if (auth === undefined) return meta
  meta.authTime = auth.authTime
  meta.aal = auth.aal
  meta.amr = auth.amr
  return meta
}

/** SHA-256 of a token, base64url: the id a store keeps. */
export function hashToken(token: string): string {
  // One-shot hash: about a third cheaper than createHash().update().digest() per validate.
  return hash('sha256', token, 'base64url')
}

function backoff(attempt: number): Promise<void> {
  // Random delay up to 2^attempt ms (capped at 50 ms), so writers that collided spread out.
  const ceiling = Math.min(50, 2 ** attempt)
  return new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling))
}
