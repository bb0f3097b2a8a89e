import type { Context } from 'hono'
import { sessionAuthClaims, type AccessTokens } from '../../auth/access-tokens.js'
import { toPublicUser, type UserWithPermissions } from '../../auth/accounts.js'
import type { KeySet } from '../../auth/keys.js'
import type { RefreshTokens, TokenPair } from '../../auth/refresh-tokens.js'
import type { AuthFailure, AuthService, LoginResult } from '../../auth/service.js'
import { TesseraError } from '../../core/errors.js'
import type { TrustedProxies } from '../../core/client-ip.js'
import {
  checkCrossSite,
  createCSRFToken,
  isSafeMethod,
  verifyCSRFToken,
  type TrustedOrigins,
} from '../../core/csrf.js'
import type { Keyring } from '../../core/keyring.js'
import {
  readCookie,
  toPublicSession,
  type PublicSession,
  type Session,
  type SessionManager,
} from '../../core/session-manager.js'
import type { AppEnv, TesseraApp } from '../app.js'
import { expectFields, readJSONBody } from '../body.js'
import { HTTPError, type APIErrorCode, type ErrorStatus } from '../http-error.js'
import type { ServerMetrics } from '../metrics.js'
import { requestInfo, type RequestInfo } from '../request-context.js'

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
}

/** Who made a request: a browser session (cookie) or an access token (bearer). */
export type Caller =
  | { kind: 'cookie'; user: UserWithPermissions; session: Session }
  | { kind: 'bearer'; user: UserWithPermissions; session: Session }

const FAILURE_STATUS: Record<string, ErrorStatus> = {
  invalid_request: 400,
  invalid_credentials: 401,
  rate_limited: 429,
  conflict: 409,
  weak_password: 400,
  forbidden: 403,
  invalid_token: 400,
}

function failed(failure: AuthFailure<string>): HTTPError {
  const known = Object.hasOwn(FAILURE_STATUS, failure.code)
  const status = known ? (FAILURE_STATUS[failure.code] ?? 400) : 400
  const code = (known ? failure.code : 'invalid_request') as APIErrorCode
  const headers: Record<string, string> = {}
  if (failure.retryAfterSeconds !== undefined) {
    headers['Retry-After'] = String(Math.max(1, Math.ceil(failure.retryAfterSeconds)))
  }
  return new HTTPError(status, code, failure.message, { headers })
}

/** True for `/admin` and everything under it (the admin panel's own routes). */
function isAdminPath(path: string): boolean {
  return path === '/admin' || path.startsWith('/admin/')
}

const UNAUTHENTICATED = (): HTTPError =>
  new HTTPError(401, 'unauthenticated', 'sign in first: no valid session or access token')

/**
 * Registers the routes of API.md under `/auth` and `/.well-known/jwks.json`, with the CSRF rule
 * on every unsafe method.
 */
export function authRoutes(deps: AuthRoutesDeps): (app: TesseraApp) => void {
  const { auth, sessions, keyring, tokens, metrics } = deps
  const callers = new WeakMap<object, Promise<Caller | null>>()

  const info = (c: Context<AppEnv>): RequestInfo => requestInfo(c, deps.trustedProxies)

  async function userFor(userId: string | null): Promise<UserWithPermissions | null> {
    if (userId === null) return null
    const user = await auth.accounts.getUserWithPermissions(userId)
    return user !== null && user.isActive ? user : null
  }

  /** The browser session of the request's cookie, if valid; re-signs a fallback-signed cookie. */
  async function cookieCaller(c: Context<AppEnv>): Promise<Caller | null> {
    const header = c.req.header('cookie')
    if (header === undefined || readCookie(header, sessions.cookieName) === undefined) return null
    const validated = await sessions.validate(header)
    if (validated === null) return null
    const user = await userFor(validated.session.userId)
    if (user === null) return null
    if (validated.setCookie !== undefined)
      c.header('Set-Cookie', validated.setCookie, { append: true })
    return { kind: 'cookie', user, session: validated.session }
  }

  /** The session behind an access token, alive in the store (logout ends its tokens here). */
  async function bearerCaller(token: string): Promise<Caller | null> {
    const verified = await tokens.access.verify(token)
    if (!verified.ok) return null
    const user = await userFor(verified.claims.sub)
    if (user === null) return null
    // SECURITY: a token outlives nothing it was issued for: its session must still be live.
    const session = (await sessions.list(user.id)).find((s) => s.id === verified.claims.sid)
    if (session === undefined) return null
    return { kind: 'bearer', user, session }
  }

  /** Who made the request (cached per request). An `Authorization` header wins over a cookie. */
  function caller(c: Context<AppEnv>): Promise<Caller | null> {
    let found = callers.get(c)
    if (found === undefined) {
      const authorization = c.req.header('authorization')
      if (authorization !== undefined) {
        const match = /^Bearer +([A-Za-z0-9\-_.~+/]+=*) *$/i.exec(authorization)
        found = match?.[1] === undefined ? Promise.resolve(null) : bearerCaller(match[1])
      } else {
        found = cookieCaller(c)
      }
      callers.set(c, found)
    }
    return found
  }

  async function requireCaller(c: Context<AppEnv>): Promise<Caller> {
    const found = await caller(c)
    if (found === null) throw UNAUTHENTICATED()
    return found
  }

  function tokenBody(pair: TokenPair): Record<string, unknown> {
    return {
      access_token: pair.accessToken,
      token_type: 'Bearer',
      expires_in: pair.expiresIn,
      refresh_token: pair.refreshToken,
    }
  }

  /**
   * A sign-in's session, or the HTTP error for its refusal (counted in the metrics). A second
   * factor cannot be asked for yet: the server configures none (issue 13 answers it with the
   * challenge of API.md).
   */
  function signedIn(
    result: LoginResult,
    route: 'login' | 'token',
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

  return (app) => {
    // SECURITY: the cross-site rule of API.md (OWASP CSRF cheat sheet: Fetch Metadata, Origin,
    // synchronizer token), checked before any handler runs, so a refused request changes nothing.
    app.use(async (c, next) => {
      if (isSafeMethod(c.req.method)) return next()
      // The admin panel posts HTML forms and checks its own stricter rule (a per-form CSRF token
      // plus Origin / Sec-Fetch-Site, src/server/admin/app.ts); the API's rule is for the API.
      if (isAdminPath(c.req.path)) return next()
      const header = c.req.header('cookie')
      const hasSessionCookie =
        header !== undefined && readCookie(header, sessions.cookieName) !== undefined
      const request = {
        method: c.req.method,
        headers: { secFetchSite: c.req.header('sec-fetch-site'), origin: c.req.header('origin') },
        trustedOrigins: deps.trustedOrigins,
        hasSessionCookie,
      }
      let decision = checkCrossSite(request)
      const csrfToken = c.req.header('x-csrf-token')
      if (!decision.allowed && decision.reason === 'missing_proof' && csrfToken !== undefined) {
        const found = await caller(c)
        const valid =
          found?.kind === 'cookie' && verifyCSRFToken(keyring, found.session.id, csrfToken)
        decision = checkCrossSite({ ...request, csrfTokenValid: valid })
      }
      if (!decision.allowed) throw new HTTPError(403, 'csrf_failed', decision.message)
      return next()
    })

    app.post('/auth/signup', async (c) => {
      const body = await readJSONBody(c.req.raw)
      expectFields(body, { email: 'string', password: 'string' })
      const current = await caller(c)
      const result = await auth.signup(body, {
        ...info(c),
        session: current?.kind === 'cookie' ? current.session : undefined,
      })
      if (!result.ok) throw failed(result)
      c.header('Set-Cookie', result.setCookie, { append: true })
      return c.json({ user: toPublicUser(result.user) }, 201)
    })

    app.post('/auth/login', async (c) => {
      const body = await readJSONBody(c.req.raw)
      expectFields(body, { email: 'string', password: 'string' })
      const current = await caller(c)
      const result = signedIn(
        await auth.login(body, {
          ...info(c),
          session: current?.kind === 'cookie' ? current.session : undefined,
        }),
        'login',
      )
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
      if (!revoked) throw new HTTPError(404, 'not_found', 'no such session')
      return c.body(null, 204)
    })

    app.delete('/auth/sessions', async (c) => {
      const current = await requireCaller(c)
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
      // SECURITY: the same 202 whether or not the address has an account (no enumeration).
      await auth.requestPasswordReset(body, info(c))
      return c.body(null, 202)
    })

    app.post('/auth/password-reset/confirm', async (c) => {
      const body = await readJSONBody(c.req.raw)
      expectFields(body, { token: 'string', newPassword: 'string' })
      const result = await auth.confirmPasswordReset(body, info(c))
      if (!result.ok) throw failed(result)
      return c.body(null, 204)
    })

    app.post('/auth/token', async (c) => {
      const body = await readJSONBody(c.req.raw)
      expectFields(body, { email: 'string', password: 'string' })
      const request = info(c)
      // The same sign-in as POST /auth/login (one pipeline), then tokens instead of a cookie.
      const result = signedIn(await auth.login(body, request), 'token')
      // The token client gets a session of its own (listed and revocable like a browser's);
      // the refresh family is bound to it, so revoking one ends the other. Its tokens carry
      // the session's auth_time, acr and amr, and every refreshed token keeps them.
      const pair = await tokens.refresh.issue(result.user.id, {
        sessionId: result.session.id,
        meta: metaOf(request),
        claims: sessionAuthClaims(result.session),
      })
      return c.json(tokenBody(pair))
    })

    app.post('/auth/refresh', async (c) => {
      const body = expectFields(await readJSONBody(c.req.raw), { refresh_token: 'string' })
      const result = await tokens.refresh.refresh(body.refresh_token, { meta: metaOf(info(c)) })
      if (!result.ok) {
        if (result.code === 'token_reused') {
          throw new HTTPError(401, 'token_reused', 'this refresh token was already used')
        }
        throw new HTTPError(401, 'invalid_token', 'the refresh token is not valid')
      }
      // SECURITY: a family outlives nothing: once its session is revoked (logout, "log out
      // other devices", password change), refreshing stops too.
      const verified = tokens.access.verifySync(result.accessToken)
      const live = verified.ok
        ? (await sessions.list(result.userId)).find((s) => s.id === verified.claims.sid)
        : undefined
      // A refresh is activity: it slides the session the family is bound to (never past its
      // absolute expiry), so a client that refreshes within the idle time stays signed in for
      // the absolute lifetime, as API.md promises (7 days idle / 30 days absolute).
      const slid = live === undefined ? null : await sessions.update(live, {})
      if (slid === null) {
        await tokens.refresh.revokeFamily(result.familyId)
        throw new HTTPError(401, 'invalid_token', 'the refresh token is not valid')
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

function metaOf(request: RequestInfo): { ip?: string; userAgent?: string } {
  const meta: { ip?: string; userAgent?: string } = {}
  if (request.ip !== undefined) meta.ip = request.ip
  if (request.userAgent !== undefined) meta.userAgent = request.userAgent
  return meta
}
