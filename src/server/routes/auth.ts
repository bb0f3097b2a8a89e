import type { Context, MiddlewareHandler } from 'hono'
import { tessera } from '../../adapters/hono.js'
import { sessionAuthClaims, type AccessTokens } from '../../auth/access-tokens.js'
import { toPublicUser, type UserWithPermissions } from '../../auth/accounts.js'
import type { KeySet } from '../../auth/keys.js'
import type { RefreshTokens, TokenPair } from '../../auth/refresh-tokens.js'
import type { ChallengePurpose, SecondStep } from '../../auth/mfa-challenges.js'
import type { AuthFailure, AuthService, LoginResult } from '../../auth/service.js'
import type { TrustedProxies } from '../../core/client-ip.js'
import { createCSRFToken, type TrustedOrigins } from '../../core/csrf.js'
import { HTTP_ERRORS, TesseraError, type TesseraErrorCode } from '../../core/errors.js'
import type { Keyring } from '../../core/keyring.js'
import {
  toPublicSession,
  type PublicSession,
  type Session,
  type SessionManager,
} from '../../core/session-manager.js'
import type { AppEnv, TesseraApp } from '../app.js'
import { expectFields, readJSONBody } from '../body.js'
import type { ServerMetrics } from '../metrics.js'
import { requestInfo, type RequestInfo } from '../request-context.js'
import { requireRecentAuth } from './step-up.js'

/** The access- and refresh-token services behind `/auth/token`, `/auth/refresh`, JWKS. */
export interface TokenServices {
  access: AccessTokens
  refresh: RefreshTokens
  keys: KeySet
}

/** What the `/auth` routes are built on; everything is built by the caller. */
export interface AuthRoutesDeps {
  auth: AuthService
  sessions: SessionManager
  keyring: Keyring
  tokens: TokenServices
  trustedOrigins: TrustedOrigins
  trustedProxies: TrustedProxies
  metrics: ServerMetrics
  /**
   * The second step (issue 13): a right password of an account with a second factor answers
   * API.md's challenge instead of a session. Without it such a sign-in is a configuration error.
   */
  secondStep?: SecondStep | undefined
  /** Seconds within which revoking all sessions needs a sign-in. @default 600 */
  reauthMaxAge?: number | undefined
  /** @default Date.now */
  now?: (() => number) | undefined
  /**
   * The admin panel's path as requests carry it (base path included), which has its own
   * authentication; `null` when there is no panel. @default '/admin'
   */
  adminPath?: string | null
}

/** Who made a request: a browser session (cookie) or an access token (bearer). */
export type Caller =
  | { kind: 'cookie'; user: UserWithPermissions; session: Session }
  | { kind: 'bearer'; user: UserWithPermissions; session: Session }

/** The error of a service failure: its code (API.md's names) answered through the one table. */
export function failed(failure: AuthFailure<string>): TesseraError {
  const code: TesseraErrorCode = Object.hasOwn(HTTP_ERRORS, failure.code)
    ? (failure.code as TesseraErrorCode)
    : 'invalid_request'
  return new TesseraError(
    code,
    failure.message,
    failure.retryAfterSeconds === undefined ? {} : { retryAfter: failure.retryAfterSeconds },
  )
}

/**
 * API.md's `200 {mfaRequired, challenge, methods, expiresAt}` when the first factor was right and
 * the account has a second factor, else `null`: the one second step of every way of signing in
 * over the API (password, token grant, e-mailed code).
 */
export async function secondFactorChallenge(
  secondStep: SecondStep | undefined,
  result: LoginResult,
  purpose: ChallengePurpose,
): Promise<Record<string, unknown> | null> {
  if (result.ok || result.code !== 'second_factor_required' || secondStep === undefined) {
    return null
  }
  const issued = await secondStep.begin(result, purpose)
  return {
    mfaRequired: true,
    challenge: issued.challenge,
    methods: issued.methods,
    expiresAt: new Date(issued.expiresAt).toISOString(),
  }
}

/**
 * A sign-in's session, or the HTTP error for its refusal (counted in the metrics): the one
 * answer of every way of signing in over the API (password, token grant, e-mailed code). A
 * `second_factor_required` that reaches it is a server without a second step (the caller
 * answers it with {@link secondFactorChallenge} first).
 */
export function signInAnswer(
  result: LoginResult,
  route: string,
  metrics: ServerMetrics,
): Extract<LoginResult, { ok: true }> {
  if (result.ok) {
    metrics.recordLogin('success')
    return result
  }
  if (result.code === 'second_factor_required') {
    throw new TesseraError(
      'config_invalid',
      'a sign-in asked for a second factor, but this server has no second-factor step',
    )
  }
  if (result.code === 'rate_limited') metrics.recordRateLimited(route)
  else if (result.code === 'invalid_credentials') metrics.recordLogin('failure')
  throw failed(result)
}

/**
 * Who made the request, as the API's authentication middleware (registered by
 * {@link authRoutes}) authenticated it: a browser session or a token; `null` when nobody.
 */
export function callerOf(c: Context<AppEnv>): Caller | null {
  // Undefined only where the middleware did not run (the admin panel's paths).
  const state = c.get('tessera') as AppEnv['Variables']['tessera'] | undefined
  const user = state?.user
  const session = state?.session
  if (user == null || session == null) return null
  const kind = user.via === 'bearer' ? 'bearer' : 'cookie'
  return { kind, user: user.record, session }
}

/** True for the admin panel's path and everything under it (the panel's own routes). */
function isAdminPath(path: string, adminPath: string | null): boolean {
  return adminPath !== null && (path === adminPath || path.startsWith(`${adminPath}/`))
}

const UNAUTHENTICATED = (): TesseraError =>
  new TesseraError('unauthenticated', 'sign in first: no valid session or access token')

/** {@link callerOf}, or `401 unauthenticated`. */
export function requireCallerOf(c: Context<AppEnv>): Caller {
  const found = callerOf(c)
  if (found === null) throw UNAUTHENTICATED()
  return found
}

/**
 * Registers the routes of API.md under `/auth` and `/.well-known/jwks.json`, with the CSRF rule
 * on every unsafe method.
 */
export function authRoutes(deps: AuthRoutesDeps): (app: TesseraApp) => void {
  const { auth, sessions, keyring, tokens, metrics } = deps
  const adminPath = deps.adminPath === undefined ? '/admin' : deps.adminPath
  const info = (c: Context<AppEnv>): RequestInfo => requestInfo(c, deps.trustedProxies)

  // SECURITY: every request is authenticated by tessera-auth/hono, as in a user's own app: the
  // session cookie (read once, a duplicate read as none), or a bearer access token whose session
  // must still be live (logout ends its tokens at once) and whose user must still be active; the
  // cross-site rule of API.md (Fetch Metadata, Origin, X-CSRF-Token) for every unsafe method,
  // bearer requests included, before any handler runs, so a refused request changes nothing.
  const web = tessera<UserWithPermissions>({
    sessions,
    keyring,
    trustedOrigins: deps.trustedOrigins,
    bearer: {
      verifier: tokens.access,
      requireSession: true,
      // API.md: a bad token on GET /auth/session is `401 unauthenticated`, like no token.
      onInvalid: 'anonymous',
      crossSite: 'check',
    },
    // SECURITY: the account is re-read on every request, so a disabled user or a revoked
    // permission loses access at once (no cache of users).
    loadUser: async ({ userId }) => {
      const user = await auth.accounts.getUserWithPermissions(userId)
      return user !== null && user.isActive ? { permissions: user.permissions, record: user } : null
    },
  })

  // AppEnv is TesseraEnv plus the server's own variables; Hono's Context is invariant in its env,
  // so the adapter's middleware is typed for the wider env it runs in (app.use would do the same).
  const authenticate = web.middleware as unknown as MiddlewareHandler<AppEnv>

  const caller = (c: Context<AppEnv>): Promise<Caller | null> => Promise.resolve(callerOf(c))
  const requireCaller = (c: Context<AppEnv>): Promise<Caller> =>
    new Promise((resolve) => resolve(requireCallerOf(c)))

  const challengeOf = (
    result: LoginResult,
    purpose: ChallengePurpose,
  ): Promise<Record<string, unknown> | null> =>
    secondFactorChallenge(deps.secondStep, result, purpose)

  /** A sign-in's session, or the HTTP error for its refusal (counted in the metrics). */
  function signedIn(
    result: LoginResult,
    route: 'login' | 'token',
  ): Extract<LoginResult, { ok: true }> {
    return signInAnswer(result, route, metrics)
  }

  return (app) => {
    // The admin panel has its own sessions and a form-token proof (src/server/admin); the API's
    // authentication is for everything else.
    app.use((c, next) => (isAdminPath(c.req.path, adminPath) ? next() : authenticate(c, next)))

    app.post('/auth/signup', async (c) => {
      const body = await readJSONBody(c.req.raw)
      expectFields(body, { email: 'string', password: 'string' })
      const current = await caller(c)
      const result = await auth.signup(body, {
        ...info(c),
        session: current?.kind === 'cookie' ? current.session : undefined,
      })
      // TESSERA_EMAIL_VERIFICATION=required: the account exists, the session waits for the
      // address to be verified (docs/email.md).
      if (!result.ok && result.code === 'email_unverified') {
        return c.json({ user: toPublicUser(result.user), verificationRequired: true }, 201)
      }
      if (!result.ok) throw failed(result)
      c.header('Set-Cookie', result.setCookie, { append: true })
      return c.json({ user: toPublicUser(result.user) }, 201)
    })

    app.post('/auth/login', async (c) => {
      const body = await readJSONBody(c.req.raw)
      expectFields(body, { email: 'string', password: 'string' })
      const current = await caller(c)
      const login = await auth.login(body, {
        ...info(c),
        session: current?.kind === 'cookie' ? current.session : undefined,
      })
      // The session the request came with stays until the second step ends it (mfa.ts).
      const challenge = await challengeOf(login, 'login')
      if (challenge !== null) return c.json(challenge)
      const result = signedIn(login, 'login')
      c.header('Set-Cookie', result.setCookie, { append: true })
      return c.json({ user: toPublicUser(result.user), session: toPublicSession(result.session) })
    })

    app.post('/auth/logout', async (c) => {
      const current = await caller(c)
      if (current !== null) await auth.logout(current.session, info(c))
      c.header('Set-Cookie', sessions.clearCookie(), { append: true })
      return c.body(null, 204)
    })

    app.get('/auth/session', async (c) => {
      const current = await requireCaller(c)
      return c.json({ user: toPublicUser(current.user), session: toPublicSession(current.session) })
    })

    app.get('/auth/csrf', async (c) => {
      const current = await requireCaller(c)
      return c.json({ token: createCSRFToken(keyring, current.session.id) })
    })

    app.get('/auth/sessions', async (c) => {
      const current = await requireCaller(c)
      const list = await sessions.list(current.user.id)
      return c.json({
        sessions: list.map((session) => ({
          ...sessionEntry(toPublicSession(session)),
          ip: session.meta.ip ?? null,
          userAgent: session.meta.userAgent ?? null,
          current: session.id === current.session.id,
        })),
      })
    })

    app.delete('/auth/sessions/:id', async (c) => {
      const current = await requireCaller(c)
      const revoked = await auth.revokeSession(current.user.id, c.req.param('id'), info(c))
      if (!revoked) throw new TesseraError('not_found', 'no such session')
      return c.body(null, 204)
    })

    app.delete('/auth/sessions', async (c) => {
      const current = await requireCaller(c)
      // SECURITY: revoking every other session is a sensitive change (API.md): a recent sign-in.
      requireRecentAuth(current.session, deps.reauthMaxAge ?? 600, (deps.now ?? Date.now)())
      await auth.revokeOtherSessions(current.user.id, { ...info(c), session: current.session })
      return c.body(null, 204)
    })

    app.post('/auth/password', async (c) => {
      const current = await requireCaller(c)
      const body = await readJSONBody(c.req.raw)
      expectFields(body, { currentPassword: 'string', newPassword: 'string' })
      const result = await auth.changePassword(current.user.id, body, {
        ...info(c),
        session: current.session,
        // A cookie session continues under a new token (API.md); a token client's session
        // keeps its id, which its access and refresh tokens are bound to.
        currentSession: current.kind === 'cookie' ? 'rotate' : 'keep',
      })
      if (!result.ok) {
        if (result.code === 'rate_limited') metrics.recordRateLimited('password')
        throw failed(result)
      }
      if (result.rotated !== null) {
        c.header('Set-Cookie', result.rotated.setCookie, { append: true })
      }
      return c.body(null, 204)
    })

    app.post('/auth/password-reset/request', async (c) => {
      const body = await readJSONBody(c.req.raw)
      expectFields(body, { email: 'string' })
      // SECURITY: the same 202 whether or not the address has an account (no enumeration), and
      // whether or not the address or IP is over its limit (then nothing is sent: API.md).
      const result = await auth.requestPasswordReset(body, info(c))
      if (result.rateLimited) metrics.recordRateLimited('password_reset_request')
      return c.body(null, 202)
    })

    app.post('/auth/password-reset/confirm', async (c) => {
      const body = await readJSONBody(c.req.raw)
      expectFields(body, { token: 'string', newPassword: 'string' })
      const result = await auth.confirmPasswordReset(body, info(c))
      if (!result.ok) {
        if (result.code === 'rate_limited') metrics.recordRateLimited('password_reset_confirm')
        throw failed(result)
      }
      return c.body(null, 204)
    })

    app.post('/auth/token', async (c) => {
      const body = await readJSONBody(c.req.raw)
      expectFields(body, { email: 'string', password: 'string' })
      const request = info(c)
      // The same sign-in as POST /auth/login (one pipeline), then tokens instead of a cookie.
      const login = await auth.login(body, request)
      const challenge = await challengeOf(login, 'token')
      if (challenge !== null) return c.json(challenge)
      const result = signedIn(login, 'token')
      // The token client gets a session of its own (listed and revocable like a browser's);
      // the refresh family is bound to it, so revoking one ends the other. Its tokens carry
      // the session's auth_time, acr and amr, and every refreshed token keeps them.
      return c.json(await issueTokens(tokens, result.user.id, result.session, request))
    })

    app.post('/auth/refresh', async (c) => {
      const body = expectFields(await readJSONBody(c.req.raw), { refresh_token: 'string' })
      const result = await tokens.refresh.refresh(body.refresh_token, { meta: metaOf(info(c)) })
      if (!result.ok) {
        if (result.code === 'token_reused') {
          throw new TesseraError('token_reused', 'this refresh token was already used')
        }
        throw new TesseraError('token_invalid', 'the refresh token is not valid')
      }
      // SECURITY: a family outlives nothing: once its session is revoked (logout, "log out
      // other devices", password change), refreshing stops too.
      const verified = tokens.access.verifySync(result.accessToken)
      const live = verified.ok ? await sessions.getById(result.userId, verified.claims.sid) : null
      // A refresh is activity: it slides the session the family is bound to (never past its
      // absolute expiry), so a client that refreshes within the idle time stays signed in for
      // the absolute lifetime, as API.md promises (7 days idle / 30 days absolute).
      const slid = live === null ? null : await sessions.update(live, {})
      if (slid === null) {
        await tokens.refresh.revokeFamily(result.familyId)
        throw new TesseraError('token_invalid', 'the refresh token is not valid')
      }
      return c.json(tokenBody(result))
    })

    app.post('/auth/revoke', async (c) => {
      const body = expectFields(await readJSONBody(c.req.raw), { token: 'string' })
      const revoked = await tokens.refresh.revoke(body.token)
      // SECURITY: revoking a refresh token ends the session it is bound to (RFC 7009 2.1), so
      // that session's access tokens stop working at once, not when they expire.
      if (revoked?.sessionId != null) {
        await auth.revokeSession(revoked.userId, revoked.sessionId, info(c))
      }
      return c.json({})
    })

    app.get('/.well-known/jwks.json', async (c) => {
      await tokens.keys.refreshIfStale()
      return c.json(tokens.keys.jwks(), 200, { 'Cache-Control': 'public, max-age=300' })
    })
  }
}

function sessionEntry(
  session: PublicSession,
): Pick<PublicSession, 'id' | 'createdAt' | 'lastSeenAt' | 'expiresAt'> {
  return {
    id: session.id,
    createdAt: session.createdAt,
    lastSeenAt: session.lastSeenAt,
    expiresAt: session.expiresAt,
  }
}

/** API.md's token answer. */
export function tokenBody(pair: TokenPair): Record<string, unknown> {
  return {
    access_token: pair.accessToken,
    token_type: 'Bearer',
    expires_in: pair.expiresIn,
    refresh_token: pair.refreshToken,
  }
}

/**
 * The token pair of a token client's sign-in: a refresh family bound to the session, with the
 * session's `auth_time`, `acr` and `amr` as claims (`POST /auth/token`, its second step).
 */
export async function issueTokens(
  tokens: TokenServices,
  userId: string,
  session: Session,
  request: RequestInfo,
): Promise<Record<string, unknown>> {
  const pair = await tokens.refresh.issue(userId, {
    sessionId: session.id,
    meta: metaOf(request),
    claims: sessionAuthClaims(session),
  })
  return tokenBody(pair)
}

function metaOf(request: RequestInfo): { ip?: string; userAgent?: string } {
  const meta: { ip?: string; userAgent?: string } = {}
  if (request.ip !== undefined) meta.ip = request.ip
  if (request.userAgent !== undefined) meta.userAgent = request.userAgent
  return meta
}
