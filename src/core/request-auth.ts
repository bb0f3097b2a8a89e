import { checkCrossSite, createCSRFToken, createTrustedOrigins, verifyCSRFToken } from './csrf.js'
import type { CrossSiteDecision, TrustedOrigins } from './csrf.js'
import { isTesseraError, TesseraError } from './errors.js'
import type { Keyring } from './keyring.js'
import { readCookie } from './session-manager.js'
import type { Session, SessionAuth, SessionManager } from './session-manager.js'
import type { JSONValue, SessionMeta } from './session-store.js'

/**
 * What the framework-neutral request authentication needs to know about a request. Adapters
 * fill it from their framework's request; a missing header is `undefined` or `null`.
 */
export interface RequestDescription {
  /** The HTTP method, any case. */
  method: string
  /** The `Cookie` header. */
  cookie?: string | null | undefined
  /** The `Authorization` header. */
  authorization?: string | null | undefined
  /** The `Sec-Fetch-Site` header. */
  secFetchSite?: string | null | undefined
  /** The `Origin` header. */
  origin?: string | null | undefined
  /** The `X-CSRF-Token` header. */
  csrfToken?: string | null | undefined
  /** The client address as the framework resolved it; stored in new sessions' meta. */
  ip?: string | null | undefined
  /** The `User-Agent` header; stored in new sessions' meta. */
  userAgent?: string | null | undefined
}

/**
 * The shape a bearer verifier must have: `createVerifier()` from `tessera-auth/jwt` and
 * `createAccessTokens()` both fit. A result with `ok: false` and `code: 'jwks_unavailable'`
 * means the keys could not be fetched (503), any other failure is a bad token (401).
 */
export interface BearerVerifier {
  verify(
    token: string,
  ): Promise<
    { ok: true; claims: { sub?: unknown } & Record<string, unknown> } | { ok: false; code: string }
  >
}

/** The authenticated principal of a request. */
export interface AuthUser {
  /** The user id: the session's `userId`, or the token's `sub`. */
  readonly id: string
  /** Permission codenames (`app.action`) the user holds, for {@link RequestAuth.requirePermission}. */
  readonly permissions: readonly string[]
  /** How the request was authenticated. */
  readonly via: 'session' | 'bearer'
  /** The verified token claims, for `via: 'bearer'`. */
  readonly claims?: Readonly<Record<string, unknown>>
}

/** Where {@link RequestAuthOptions.permissions} may read a user's permissions from. */
export interface PermissionSource {
  userId: string
  session: Session | null
  claims: Readonly<Record<string, unknown>> | null
}

/** Options of {@link createRequestAuth}. */
export interface RequestAuthOptions {
  /** The session manager whose cookie authenticates browser requests. */
  sessions: SessionManager
  /**
   * Origins trusted for unsafe requests with a session cookie: the site's own public origin
   * plus any other (see `checkCrossSite`). Validated at setup.
   */
  trustedOrigins: TrustedOrigins | readonly string[]
  /** Keyring for `X-CSRF-Token` tokens (purpose `csrf`); without it only the headers count as proof. */
  keyring?: Keyring
  /** Verifies `Authorization: Bearer` access tokens; without it the header is ignored. */
  bearer?: BearerVerifier
  /**
   * The permissions of an authenticated user.
   * @default the string array `permissions` of the session data, or of the token claims, or the
   *   space-separated `scope` claim
   */
  permissions?: (source: PermissionSource) => readonly string[] | Promise<readonly string[]>
}

/** A refusal an adapter answers with `status` and the API.md error body {@link refusalBody}. */
export interface AuthRefusal {
  status: 401 | 403 | 503
  code: 'unauthenticated' | 'forbidden' | 'csrf_failed' | 'invalid_token' | 'unavailable'
  message: string
  /** Extra response headers (`WWW-Authenticate` on a refused bearer token). */
  headers: Readonly<Record<string, string>>
}

/** Options of {@link RequestAuthState.signIn}. */
export interface SignInOptions {
  /** Data of the new session (e.g. `permissions`). */
  data?: Record<string, JSONValue>
  /** Extra metadata; `ip` and `userAgent` of the request are added unless given. */
  meta?: SessionMeta
  /**
   * How the user proved who they are, recorded as the session's `authTime`, `aal` and `amr`
   * (e.g. the `auth` of tessera's `verifyPassword` result). @default none recorded
   */
  auth?: SessionAuth
}

/**
 * The authentication of one request, which an adapter hangs on its request or context.
 * `session` and `user` change after {@link RequestAuthState.signIn} / `signOut`.
 */
export interface RequestAuthState {
  /** The validated session, or `null` (none, forged, expired, revoked, or a bearer request). */
  session: Session | null
  /** The authenticated user, or `null` (anonymous or an anonymous session). */
  user: AuthUser | null
  /** The cross-site decision for this request (always allowed once the request got through). */
  readonly csrf: CrossSiteDecision
  /**
   * Signs `userId` in: the current session is deleted and a new one created with a new token,
   * so a token planted before login is worthless (no session fixation). Emits its `Set-Cookie`.
   * @throws TesseraError `store_unavailable`
   */
  signIn(userId: string, options?: SignInOptions): Promise<Session>
  /** Deletes the current session (if any) and emits a `Set-Cookie` that clears the cookie. */
  signOut(): Promise<void>
  /**
   * A CSRF token bound to the current session for the `X-CSRF-Token` header.
   * @throws TesseraError `invalid_argument` without a session, `config_invalid` without a keyring
   */
  csrfToken(): string
}

/** The outcome of {@link RequestAuth.authenticate}. */
export type AuthenticateResult =
  { ok: true; state: RequestAuthState } | { ok: false; refusal: AuthRefusal }

/** The framework-neutral request authentication that every adapter calls. */
export interface RequestAuth {
  /**
   * Reads a request: bearer token (when a verifier is set and the header says `Bearer`), else
   * the session cookie, then the cross-site rule for unsafe methods. `emitSetCookie` is called
   * for every `Set-Cookie` to send, now (a re-signed cookie) or later (sign in, sign out).
   * Never throws for untrusted input; a store or JWKS that cannot be reached gives a 503
   * refusal. Other errors are rethrown.
   */
  authenticate(
    request: RequestDescription,
    emitSetCookie: (value: string) => void,
  ): Promise<AuthenticateResult>
  /** `401 unauthenticated` when there is no user, else `null`. */
  requireAuth(state: RequestAuthState | null | undefined): AuthRefusal | null
  /** `401` without a user, `403 forbidden` when the user lacks `permission`, else `null`. */
  requirePermission(
    state: RequestAuthState | null | undefined,
    permission: string,
  ): AuthRefusal | null
}

const PERMISSION_PATTERN = /^[a-z0-9_-]+\.[a-z0-9_.-]+$/
const MAX_AUTHORIZATION_LENGTH = 16_384
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({})

/** The API.md error body of a refusal: `{"error": {"code", "message"}}`. */
export function refusalBody(refusal: AuthRefusal): {
  error: { code: AuthRefusal['code']; message: string }
} {
  return { error: { code: refusal.code, message: refusal.message } }
}

/**
 * A permission codename check usable at setup: adapters call it when a guard is built, so a
 * typo fails at startup rather than refusing every request.
 * @throws TesseraError `config_invalid` when `permission` is not `app.action`
 */
export function checkPermissionName(permission: string): string {
  if (typeof permission !== 'string' || !PERMISSION_PATTERN.test(permission)) {
    throw new TesseraError(
      'config_invalid',
      'requirePermission: the permission must look like app.action (lower case letters, digits, _ or -)',
    )
  }
  return permission
}

function refusal(
  status: AuthRefusal['status'],
  code: AuthRefusal['code'],
  message: string,
  headers: Readonly<Record<string, string>> = NO_HEADERS,
): AuthRefusal {
  return { status, code, message, headers }
}

const UNAVAILABLE = refusal(503, 'unavailable', 'a service this request needs cannot be reached')

function stringList(value: unknown): readonly string[] | null {
  if (!Array.isArray(value)) return null
  return value.filter((item): item is string => typeof item === 'string')
}

function defaultPermissions(source: PermissionSource): readonly string[] {
  if (source.session !== null) return stringList(source.session.data.permissions) ?? []
  if (source.claims !== null) {
    const list = stringList(source.claims.permissions)
    if (list !== null) return list
    const scope = source.claims.scope
    if (typeof scope === 'string') return scope.split(' ').filter((item) => item.length > 0)
  }
  return []
}

/** The token of an `Authorization: Bearer <token>` header, `''` for a malformed one, `null` for another scheme. */
function bearerToken(header: string | null | undefined): string | null {
  if (typeof header !== 'string') return null
  const trimmed = header.trim()
  if (trimmed.length < 6 || trimmed.slice(0, 6).toLowerCase() !== 'bearer') return null
  if (trimmed.length === 6) return ''
  if (trimmed[6] !== ' ' && trimmed[6] !== '\t') return null
  const token = trimmed.slice(7).trim()
  // RFC 6750 2.1 b64token; anything else (spaces, commas, control characters) is malformed.
  if (token.length > MAX_AUTHORIZATION_LENGTH || !/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) return ''
  return token
}

/**
 * Builds the request authentication shared by the Express, Fastify and Hono adapters: one
 * place for the bearer-or-cookie choice, the cross-site rule (API.md), sign in and out, and
 * the guards, so an adapter only translates its framework's request and response.
 *
 * @throws TesseraError `config_invalid` for unusable trusted origins or a missing session manager
 * @example
 * ```ts
 * const auth = createRequestAuth({ sessions, keyring, trustedOrigins: ['https://app.example.com'] })
 * const result = await auth.authenticate({ method, cookie, origin, secFetchSite }, (v) => headers.append('set-cookie', v))
 * if (!result.ok) return json(result.refusal.status, refusalBody(result.refusal))
 * ```
 */
export function createRequestAuth(options: RequestAuthOptions): RequestAuth {
  const { sessions, keyring, bearer } = options
  if (
    sessions === null ||
    typeof sessions !== 'object' ||
    typeof sessions.validate !== 'function'
  ) {
    throw new TesseraError(
      'config_invalid',
      'request auth: options.sessions must be a session manager (createSessionManager)',
    )
  }
  // Fail fast on unusable origins (checkCrossSite would validate an array only on first use).
  const trustedOrigins: TrustedOrigins = Array.isArray(options.trustedOrigins)
    ? createTrustedOrigins(options.trustedOrigins as readonly string[])
    : (options.trustedOrigins as TrustedOrigins)
  const permissionsOf = options.permissions ?? defaultPermissions
  const cookieName = sessions.cookieName

  async function userOf(
    userId: string | null,
    session: Session | null,
    claims: Readonly<Record<string, unknown>> | null,
  ): Promise<AuthUser | null> {
    if (userId === null) return null
    const found = permissionsOf({ userId, session, claims })
    // Awaited only when it is a promise: the default reads the session and costs no tick.
    const permissions = Array.isArray(found) ? (found as readonly string[]) : await found
    return claims === null
      ? { id: userId, permissions, via: 'session' }
      : { id: userId, permissions, via: 'bearer', claims }
  }

  function makeState(
    request: RequestDescription,
    session: Session | null,
    user: AuthUser | null,
    csrf: CrossSiteDecision,
    emit: (value: string) => void,
  ): RequestAuthState {
    const state: RequestAuthState = {
      session,
      user,
      csrf,
      async signIn(userId, signInOptions = {}): Promise<Session> {
        const meta: SessionMeta = { ...(signInOptions.meta ?? {}) }
        if (meta.ip === undefined && typeof request.ip === 'string') meta.ip = request.ip
        if (meta.userAgent === undefined && typeof request.userAgent === 'string') {
          meta.userAgent = request.userAgent.slice(0, 512)
        }
        // SECURITY: a new token for the signed-in session and the old record deleted, so a
        // cookie planted before login is worthless after it (session fixation, ASVS 3.2.1).
        const issued = await sessions.create(userId, {
          data: signInOptions.data ?? {},
          meta,
          ...(signInOptions.auth === undefined ? {} : { auth: signInOptions.auth }),
        })
        if (state.session !== null) await sessions.revoke(state.session)
        emit(issued.setCookie)
        state.session = issued.session
        state.user = await userOf(userId, issued.session, null)
        return issued.session
      },
      async signOut(): Promise<void> {
        if (state.session !== null) await sessions.revoke(state.session)
        emit(sessions.clearCookie())
        state.session = null
        state.user = null
      },
      csrfToken(): string {
        if (keyring === undefined) {
          throw new TesseraError(
            'config_invalid',
            'csrfToken: pass options.keyring to the adapter to issue CSRF tokens',
          )
        }
        if (state.session === null) {
          throw new TesseraError('invalid_argument', 'csrfToken: the request has no session')
        }
        return createCSRFToken(keyring, state.session.id)
      },
    }
    return state
  }

  async function authenticate(
    request: RequestDescription,
    emit: (value: string) => void,
  ): Promise<AuthenticateResult> {
    const method = typeof request.method === 'string' ? request.method : 'POST'
    const token = bearer === undefined ? null : bearerToken(request.authorization)
    if (bearer !== undefined && token !== null) {
      if (token === '') {
        return {
          ok: false,
          refusal: refusal(401, 'invalid_token', 'the bearer token is malformed', {
            'WWW-Authenticate': 'Bearer error="invalid_token"',
          }),
        }
      }
      const result = await bearer.verify(token)
      if (!result.ok) {
        if (result.code === 'jwks_unavailable') return { ok: false, refusal: UNAVAILABLE }
        return {
          ok: false,
          refusal: refusal(401, 'invalid_token', 'the bearer token is invalid or expired', {
            'WWW-Authenticate': 'Bearer error="invalid_token"',
          }),
        }
      }
      const sub = result.claims.sub
      if (typeof sub !== 'string' || sub.length === 0) {
        return {
          ok: false,
          refusal: refusal(401, 'invalid_token', 'the bearer token has no subject', {
            'WWW-Authenticate': 'Bearer error="invalid_token"',
          }),
        }
      }
      // A bearer header is never sent by a browser on its own, so the cross-site rule (which
      // guards ambient cookies) does not apply; the cookie is ignored on such a request.
      const user = await userOf(sub, null, result.claims)
      return {
        ok: true,
        state: makeState(request, null, user, { allowed: true, reason: 'no_session' }, emit),
      }
    }

    const cookieHeader = typeof request.cookie === 'string' ? request.cookie : null
    const headers = { secFetchSite: request.secFetchSite, origin: request.origin }
    // SECURITY: rules 2 and 3 of the cross-site check (Sec-Fetch-Site, untrusted Origin) run
    // before the store is touched, so a refused request changes nothing and costs no lookup.
    const early = checkCrossSite({ method, headers, trustedOrigins, hasSessionCookie: false })
    if (!early.allowed) {
      return { ok: false, refusal: refusal(403, 'csrf_failed', early.message) }
    }
    let session: Session | null = null
    const cookieValue = cookieHeader === null ? undefined : readCookie(cookieHeader, cookieName)
    if (cookieValue !== undefined) {
      try {
        const validated = await sessions.validateCookie(cookieValue)
        if (validated !== null) {
          session = validated.session
          if (validated.setCookie !== undefined) emit(validated.setCookie)
        }
      } catch (error) {
        if (isTesseraError(error, 'store_unavailable')) return { ok: false, refusal: UNAVAILABLE }
        throw error
      }
    }
    let csrf: CrossSiteDecision = early
    if (early.reason !== 'safe_method') {
      const csrfTokenValid =
        session !== null && keyring !== undefined
          ? verifyCSRFToken(keyring, session.id, request.csrfToken)
          : false
      // SECURITY: a session that validated makes this a cookie-authenticated request, which
      // must prove it comes from the site (API.md; ASVS 4.2.2). A stale or forged cookie
      // authenticates nothing, so the request goes on as anonymous.
      const decision = checkCrossSite({
        method,
        headers,
        trustedOrigins,
        hasSessionCookie: session !== null,
        csrfTokenValid,
      })
      if (!decision.allowed) {
        return { ok: false, refusal: refusal(403, 'csrf_failed', decision.message) }
      }
      csrf = decision
    }
    let user: AuthUser | null = null
    try {
      user = session === null ? null : await userOf(session.userId, session, null)
    } catch (error) {
      if (isTesseraError(error, 'store_unavailable')) return { ok: false, refusal: UNAVAILABLE }
      throw error
    }
    return { ok: true, state: makeState(request, session, user, csrf, emit) }
  }

  return {
    authenticate,
    requireAuth(state): AuthRefusal | null {
      if (state?.user == null) {
        return refusal(401, 'unauthenticated', 'sign in to use this endpoint')
      }
      return null
    },
    requirePermission(state, permission): AuthRefusal | null {
      if (state?.user == null) {
        return refusal(401, 'unauthenticated', 'sign in to use this endpoint')
      }
      if (!state.user.permissions.includes(permission)) {
        return refusal(403, 'forbidden', `this endpoint needs the permission ${permission}`)
      }
      return null
    },
  }
}

/**
 * The refusal an adapter answers when a call it made (sign in, sign out) failed because a store
 * cannot be reached, or `null` for any other error, which the adapter passes on.
 */
export function refusalOfError(error: unknown): AuthRefusal | null {
  return isTesseraError(error, 'store_unavailable') ? UNAVAILABLE : null
}
