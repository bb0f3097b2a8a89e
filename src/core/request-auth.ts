import { readCookie } from './cookie.js'
import {
  checkCrossSite,
  createCSRFToken,
  createTrustedOrigins,
  isSafeMethod,
  verifyCSRFToken,
} from './csrf.js'
import type { CrossSiteDecision, TrustedOrigins } from './csrf.js'
import { INVALID_BEARER_HEADERS, parseBearerToken } from './bearer.js'
import type { BearerOptions, BearerVerifier } from './bearer.js'
import { isTesseraError, TesseraError } from './errors.js'
import {
  assuranceRefusal,
  freshnessRefusal,
  refusal,
  UNAUTHENTICATED,
  UNAVAILABLE,
} from './refusals.js'
import type { AuthRefusal } from './refusals.js'
import type { Keyring } from './keyring.js'
import type { Session, SessionAuth, SessionManager } from './session-manager.js'
import type { JSONValue, SessionMeta } from './session-store.js'

// Where adapters and users have imported them from; they live in bearer.ts and refusals.ts.
export { parseBearerToken, type BearerOptions, type BearerVerifier } from './bearer.js'
export {
  assuranceRefusal,
  checkAALLevel,
  checkMaxAge,
  checkPermissionName,
  freshnessRefusal,
  refusalBody,
  refusalOfError,
  unauthenticatedRefusal,
  type AuthRefusal,
} from './refusals.js'

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
  /**
   * The CSRF token the request carries: the `X-CSRF-Token` header, or with
   * `csrf.proof: 'form-token'` the form's `_csrf` field.
   */
  csrfToken?: string | null | undefined
  /** The client address as the framework resolved it; stored in new sessions' meta. */
  ip?: string | null | undefined
  /** The `User-Agent` header; stored in new sessions' meta. */
  userAgent?: string | null | undefined
}

/** The authenticated principal of a request. `R` is what `loadUser` returns as `record`. */
export interface AuthUser<R = unknown> {
  /** The user id: the session's `userId`, or the token's `sub`. */
  readonly id: string
  /** Permission codenames (`app.action`) the user holds, for {@link RequestAuth.requirePermission}. */
  readonly permissions: readonly string[]
  /** How the request was authenticated. */
  readonly via: 'session' | 'bearer'
  /** The verified token claims, for `via: 'bearer'`. */
  readonly claims?: Readonly<Record<string, unknown>>
  /** The user record `loadUser` returned (`undefined` without `loadUser`). */
  readonly record: R
}

/** What {@link RequestAuthOptions.permissions} and `loadUser` are told about a request's user. */
export interface PermissionSource {
  userId: string
  session: Session | null
  claims: Readonly<Record<string, unknown>> | null
}

/** What {@link RequestAuthOptions.loadUser} returns for a user allowed in. */
export interface LoadedUser<R> {
  /** Permission codenames the user holds. */
  permissions: readonly string[]
  /** The user record, handed to routes as `user.record`. */
  record: R
}

/** How unsafe cookie-authenticated requests prove they come from the site; the `csrf` option. */
export interface CSRFOptions {
  /**
   * `'header-or-token'` (API.md): `Sec-Fetch-Site: same-origin`, a trusted `Origin`, or a valid
   * token. `'form-token'` (HTML forms, the admin panel): the token is always required, besides
   * the `Sec-Fetch-Site` and `Origin` rules that every unsafe request passes; the adapter hands
   * in the form's field as `csrfToken`.
   * @default 'header-or-token'
   */
  proof?: 'header-or-token' | 'form-token'
  /**
   * Tokens are bound to `<scope>:<session id>` instead of the session id, so a token of one
   * panel never works for another that shares the keyring.
   */
  scope?: string
}

/** Options of {@link createRequestAuth}. */
export interface RequestAuthOptions<R = unknown> {
  /** The session manager whose cookie authenticates browser requests. */
  sessions: SessionManager
  /**
   * Origins trusted for unsafe requests with a session cookie: the site's own public origin
   * plus any other (see `checkCrossSite`). Validated at setup.
   */
  trustedOrigins: TrustedOrigins | readonly string[]
  /** Keyring for CSRF tokens (purpose `csrf`); without it only the headers count as proof. */
  keyring?: Keyring
  /** Verifies `Authorization: Bearer` access tokens; without it the header is ignored. */
  bearer?: BearerVerifier | BearerOptions
  /**
   * The permissions of an authenticated user, when there is no `loadUser`.
   * @default the string array `permissions` of the session data, or of the token claims, or the
   *   space-separated `scope` claim
   */
  permissions?: (source: PermissionSource) => readonly string[] | Promise<readonly string[]>
  /**
   * Loads the user of a session or token on every request: its record and permissions, or
   * `null` when the user may not be signed in (gone, disabled), which makes the request
   * anonymous as a revoked session would. Read on every request, so a disable or a revoked
   * permission takes effect at once. Replaces `permissions`.
   */
  loadUser?: (source: PermissionSource) => LoadedUser<R> | null | Promise<LoadedUser<R> | null>
  /** The cross-site proof rule. @default { proof: 'header-or-token' } */
  csrf?: CSRFOptions
  /** Clock in epoch milliseconds, for `requireFresh`. @default Date.now */
  now?: () => number
}

/** Options of {@link RequestAuthState.signIn}. */
export interface SignInOptions {
  /** Data of the new session (e.g. `permissions`). */
  data?: Record<string, JSONValue>
  /** Extra metadata; `ip` and `userAgent` of the request are added unless given. */
  meta?: SessionMeta
  /**
   * How the user proved who they are, recorded as the session's `authTime`, `aal` and `amr`
   * (e.g. the `auth` of tessera's `verifyPassword` result), which `requireFresh` and
   * `requireAAL` read. @default none recorded
   */
  auth?: SessionAuth
}

/**
 * The authentication of one request, which an adapter hangs on its request or context.
 * `session` and `user` change after {@link RequestAuthState.signIn} / `signOut`.
 */
export interface RequestAuthState<R = unknown> {
  /**
   * The validated session, or `null` (none, forged, expired, revoked, its user refused). A bearer
   * request has one only with `bearer.requireSession`.
   */
  session: Session | null
  /** The authenticated user, or `null` (anonymous or an anonymous session). */
  user: AuthUser<R> | null
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
   * A CSRF token bound to the current session, for the `X-CSRF-Token` header or a form's
   * `_csrf` field.
   * @throws TesseraError `invalid_argument` without a session, `config_invalid` without a keyring
   */
  csrfToken(): string
}

/** The outcome of {@link RequestAuth.authenticate}. */
export type AuthenticateResult<R = unknown> =
  { ok: true; state: RequestAuthState<R> } | { ok: false; refusal: AuthRefusal }

/** The framework-neutral request authentication that every adapter calls. */
export interface RequestAuth<R = unknown> {
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
  ): Promise<AuthenticateResult<R>>
  /** `401 unauthenticated` when there is no user, else `null`. */
  requireAuth(state: RequestAuthState<R> | null | undefined): AuthRefusal | null
  /** `401` without a user, `403 forbidden` when the user lacks `permission`, else `null`. */
  requirePermission(
    state: RequestAuthState<R> | null | undefined,
    permission: string,
  ): AuthRefusal | null
  /**
   * `401` without a user, `403 reauthentication_required` unless the user proved a credential
   * within the last `maxAgeSeconds`: the session's `authTime`, or a bearer token's `auth_time`
   * claim (a token without one is never fresh). Else `null`. Check `maxAgeSeconds` at setup
   * with {@link checkMaxAge}.
   */
  requireFresh(
    state: RequestAuthState<R> | null | undefined,
    maxAgeSeconds: number,
  ): AuthRefusal | null
  /**
   * `401` without a user, `403 reauthentication_required` unless the user signed in at
   * authenticator assurance level `level` or higher: the session's `aal`, or a bearer token's
   * `acr` claim (`aal1`, `aal2`; another or none counts as 0). Else `null`.
   */
  requireAAL(state: RequestAuthState<R> | null | undefined, level: 1 | 2): AuthRefusal | null
}

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

/** The time a user last proved a credential, epoch ms, or `null` when unknown. */
function authTimeOf(state: RequestAuthState<unknown>): number | null {
  const user = state.user
  if (user === null) return null
  if (user.via === 'bearer') {
    const claim = user.claims?.auth_time
    // OpenID Connect Core 2: auth_time is seconds since the epoch.
    return typeof claim === 'number' && Number.isFinite(claim) ? claim * 1000 : null
  }
  return state.session?.authTime ?? null
}

/** The assurance level a user signed in at: 0 when unknown. */
function aalOf(state: RequestAuthState<unknown>): 0 | 1 | 2 {
  const user = state.user
  if (user === null) return 0
  if (user.via === 'bearer') {
    const acr = user.claims?.acr
    return acr === 'aal2' ? 2 : acr === 'aal1' ? 1 : 0
  }
  return state.session?.aal ?? 0
}

/**
 * Builds the request authentication shared by the Express, Fastify, Hono and Next adapters and
 * the tessera server: one place for the bearer-or-cookie choice, the cross-site rule (API.md),
 * loading the user, sign in and out, and the guards, so an adapter only translates its
 * framework's request and response.
 *
 * @throws TesseraError `config_invalid` for unusable trusted origins, a missing session manager,
 *   or both `permissions` and `loadUser`
 * @example
 * ```ts
 * const auth = createRequestAuth({ sessions, keyring, trustedOrigins: ['https://app.example.com'] })
 * const result = await auth.authenticate({ method, cookie, origin, secFetchSite }, (v) => headers.append('set-cookie', v))
 * if (!result.ok) return json(result.refusal.status, refusalBody(result.refusal))
 * ```
 */
export function createRequestAuth<R = unknown>(options: RequestAuthOptions<R>): RequestAuth<R> {
  const { sessions, keyring } = options
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
  if (options.permissions !== undefined && options.loadUser !== undefined) {
    throw new TesseraError(
      'config_invalid',
      'request auth: pass options.loadUser or options.permissions, not both (loadUser returns the permissions)',
    )
  }
  const bearer: Required<BearerOptions> | undefined =
    options.bearer === undefined
      ? undefined
      : 'verifier' in options.bearer
        ? {
            verifier: options.bearer.verifier,
            requireSession: options.bearer.requireSession ?? false,
            onInvalid: options.bearer.onInvalid ?? 'refuse',
            crossSite: options.bearer.crossSite ?? 'skip',
          }
        : {
            verifier: options.bearer,
            requireSession: false,
            onInvalid: 'refuse',
            crossSite: 'skip',
          }
  if (bearer !== undefined && typeof bearer.verifier?.verify !== 'function') {
    throw new TesseraError(
      'config_invalid',
      'request auth: options.bearer must be a verifier (createAccessTokens, createVerifier) or { verifier }',
    )
  }
  const formToken = options.csrf?.proof === 'form-token'
  if (formToken && keyring === undefined) {
    throw new TesseraError(
      'config_invalid',
      "request auth: csrf.proof 'form-token' needs options.keyring to make and check the tokens",
    )
  }
  const scope = options.csrf?.scope
  if (scope !== undefined && (typeof scope !== 'string' || !/^[a-z0-9_-]+$/.test(scope))) {
    throw new TesseraError(
      'config_invalid',
      'request auth: csrf.scope must be lower case letters, digits, _ or -',
    )
  }
  const bindingOf = (session: Session): string =>
    scope === undefined ? session.id : `${scope}:${session.id}`
  // Fail fast on unusable origins (checkCrossSite would validate an array only on first use).
  const trustedOrigins: TrustedOrigins = Array.isArray(options.trustedOrigins)
    ? createTrustedOrigins(options.trustedOrigins as readonly string[])
    : (options.trustedOrigins as TrustedOrigins)
  const permissionsOf = options.permissions ?? defaultPermissions
  const loadUser = options.loadUser
  const now = options.now ?? Date.now
  const cookieName = sessions.cookieName

  /** The user of a session or token, or `null` when `loadUser` refuses it. */
  async function userOf(
    userId: string,
    session: Session | null,
    claims: Readonly<Record<string, unknown>> | null,
  ): Promise<AuthUser<R> | null> {
    const via = claims === null ? 'session' : 'bearer'
    if (loadUser !== undefined) {
      const loaded = await loadUser({ userId, session, claims })
      if (loaded === null) return null
      return claims === null
        ? { id: userId, permissions: loaded.permissions, via, record: loaded.record }
        : { id: userId, permissions: loaded.permissions, via, claims, record: loaded.record }
    }
    const found = permissionsOf({ userId, session, claims })
    // Awaited only when it is a promise: the default reads the session and costs no tick.
    const permissions = Array.isArray(found) ? (found as readonly string[]) : await found
    const record = undefined as R
    return claims === null
      ? { id: userId, permissions, via, record }
      : { id: userId, permissions, via, claims, record }
  }

  function makeState(
    request: RequestDescription,
    session: Session | null,
    user: AuthUser<R> | null,
    csrf: CrossSiteDecision,
    emit: (value: string) => void,
  ): RequestAuthState<R> {
    const state: RequestAuthState<R> = {
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
        return createCSRFToken(keyring, bindingOf(state.session))
      },
    }
    return state
  }

  const anonymous = (
    request: RequestDescription,
    csrf: CrossSiteDecision,
    emit: (value: string) => void,
  ): AuthenticateResult<R> => ({ ok: true, state: makeState(request, null, null, csrf, emit) })

  async function authenticateBearer(
    config: Required<BearerOptions>,
    token: string,
    request: RequestDescription,
    early: CrossSiteDecision,
    emit: (value: string) => void,
  ): Promise<AuthenticateResult<R>> {
    // A bearer header is never sent by a browser on its own, so the cross-site rule (which
    // guards ambient cookies) applies only when asked for; the cookie is ignored on such a request.
    if (!early.allowed && config.crossSite === 'check') {
      return { ok: false, refusal: refusal('csrf_failed', early.message) }
    }
    const invalid = (message: string): AuthenticateResult<R> => {
      if (config.onInvalid === 'refuse') {
        return { ok: false, refusal: refusal('token_invalid', message, INVALID_BEARER_HEADERS) }
      }
      // SECURITY: a refused token authenticates nothing, so the request is an anonymous one and
      // meets the cross-site rule as any other (login CSRF with a junk header).
      if (!early.allowed) return { ok: false, refusal: refusal('csrf_failed', early.message) }
      return anonymous(request, early.allowed ? early : NO_SESSION, emit)
    }
    if (token === '') return invalid('the bearer token is malformed')
    const result = await config.verifier.verify(token)
    if (!result.ok) {
      if (result.code === 'jwks_unavailable') {
        return { ok: false, refusal: refusal('jwks_unavailable', UNAVAILABLE.message) }
      }
      return invalid('the bearer token is invalid or expired')
    }
    const claims = result.claims
    const sub = claims.sub
    if (typeof sub !== 'string' || sub.length === 0) {
      return invalid('the bearer token has no subject')
    }
    let session: Session | null = null
    if (config.requireSession) {
      const sid = claims.sid
      // SECURITY: a token outlives nothing it was issued for: its session must still be live
      // (logout, "log out other devices" and a password change end its tokens at once).
      // One keyed read (getById), whatever the number of sessions the user holds.
      const live =
        typeof sid === 'string' && sid.length > 0 ? await sessions.getById(sub, sid) : null
      if (live === null) return invalid('the session of the bearer token has ended')
      session = live
    }
    const user = await userOf(sub, session, claims)
    if (user === null) return anonymous(request, NO_SESSION, emit)
    return { ok: true, state: makeState(request, session, user, NO_SESSION, emit) }
  }

  async function authenticate(
    request: RequestDescription,
    emit: (value: string) => void,
  ): Promise<AuthenticateResult<R>> {
    const method = typeof request.method === 'string' ? request.method : 'POST'
    const headers = { secFetchSite: request.secFetchSite, origin: request.origin }
    // SECURITY: rules 2 and 3 of the cross-site check (Sec-Fetch-Site, untrusted Origin) run
    // before the store is touched, so a refused request changes nothing and costs no lookup.
    const early = isSafeMethod(method)
      ? SAFE_METHOD
      : checkCrossSite({ method, headers, trustedOrigins, hasSessionCookie: false })
    try {
      if (bearer !== undefined) {
        const token = parseBearerToken(request.authorization)
        if (token !== null) return await authenticateBearer(bearer, token, request, early, emit)
      }
      if (!early.allowed) {
        return { ok: false, refusal: refusal('csrf_failed', early.message) }
      }
      let session: Session | null = null
      // SECURITY: the one cookie reader treats a cookie sent twice as absent (cookie tossing).
      const cookieValue =
        typeof request.cookie === 'string' ? readCookie(request.cookie, cookieName) : undefined
      if (cookieValue !== undefined) {
        const validated = await sessions.validateCookie(cookieValue)
        if (validated !== null) {
          session = validated.session
          if (validated.setCookie !== undefined) emit(validated.setCookie)
        }
      }
      let csrf: CrossSiteDecision = early
      if (early.reason !== 'safe_method' && session !== null) {
        const csrfTokenValid =
          keyring !== undefined && verifyCSRFToken(keyring, bindingOf(session), request.csrfToken)
        // SECURITY: a session that validated makes this a cookie-authenticated request, which
        // must prove it comes from the site (API.md; ASVS 4.2.2). A stale or forged cookie
        // authenticates nothing, so the request goes on as anonymous. An HTML form must carry
        // its token whatever the headers say (form-token proof, ASVS 4.2.2 / 13.2.3).
        const decision =
          formToken && !csrfTokenValid
            ? MISSING_FORM_TOKEN
            : checkCrossSite({
                method,
                headers,
                trustedOrigins,
                hasSessionCookie: true,
                csrfTokenValid,
              })
        if (!decision.allowed) {
          return { ok: false, refusal: refusal('csrf_failed', decision.message) }
        }
        csrf = decision
      }
      if (session === null || session.userId === null) {
        return { ok: true, state: makeState(request, session, null, csrf, emit) }
      }
      const user = await userOf(session.userId, session, null)
      // A refused user (gone, disabled) authenticates nothing, as a revoked session would.
      if (user === null) return anonymous(request, csrf, emit)
      return { ok: true, state: makeState(request, session, user, csrf, emit) }
    } catch (error) {
      if (isTesseraError(error, 'store_unavailable')) return { ok: false, refusal: UNAVAILABLE }
      throw error
    }
  }

  function needUser(state: RequestAuthState<R> | null | undefined): state is RequestAuthState<R> {
    return state?.user != null
  }

  return {
    authenticate,
    requireAuth(state): AuthRefusal | null {
      return needUser(state) ? null : UNAUTHENTICATED
    },
    requirePermission(state, permission): AuthRefusal | null {
      if (!needUser(state)) return UNAUTHENTICATED
      if (state.user?.permissions.includes(permission) !== true) {
        return refusal('forbidden', `this endpoint needs the permission ${permission}`)
      }
      return null
    },
    requireFresh(state, maxAgeSeconds): AuthRefusal | null {
      if (!needUser(state)) return UNAUTHENTICATED
      return freshnessRefusal(authTimeOf(state), maxAgeSeconds, now())
    },
    requireAAL(state, level): AuthRefusal | null {
      if (!needUser(state)) return UNAUTHENTICATED
      return assuranceRefusal(aalOf(state), level)
    },
  }
}

const SAFE_METHOD: CrossSiteDecision = Object.freeze({ allowed: true, reason: 'safe_method' })
const NO_SESSION: CrossSiteDecision = Object.freeze({ allowed: true, reason: 'no_session' })
const MISSING_FORM_TOKEN: CrossSiteDecision = Object.freeze({
  allowed: false,
  reason: 'missing_proof',
  message:
    'the form is missing its CSRF token or the token is invalid; reload the page and try again',
})
