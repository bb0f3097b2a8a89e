import type { Passkeys } from '../../auth/passkeys.js'
import type { Context } from 'hono'
import { toPublicUser } from '../../auth/accounts.js'
import type { SecondStep } from '../../auth/mfa-challenges.js'
import type { Reauthentication } from '../../auth/reauthenticate.js'
import type { SecondFactorRegistry } from '../../auth/second-factor-methods.js'
import type { SecondFactors } from '../../auth/second-factors.js'
import type { TrustedProxies } from '../../core/client-ip.js'
import { TesseraError } from '../../core/errors.js'
import { toPublicSession, type Session, type SessionManager } from '../../core/session-manager.js'
import type { AppEnv, TesseraApp } from '../app.js'
import { readJSONBody } from '../body.js'
import { HTTPError } from '../http-error.js'
import type { ServerMetrics } from '../metrics.js'
import { requestInfo, type RequestInfo } from '../request-context.js'
import {
  callerOf,
  failed,
  issueTokens,
  requireCallerOf,
  type Caller,
  type TokenServices,
} from './auth.js'
import { toPublicPasskey } from './passkeys.js'
import { requireRecentAuth } from './step-up.js'

/** What the second-factor routes are built on. */
export interface MFARoutesDeps {
  factors: SecondFactors
  registry: SecondFactorRegistry
  secondStep: SecondStep
  reauth: Reauthentication
  sessions: SessionManager
  tokens: TokenServices
  trustedProxies: TrustedProxies
  metrics: ServerMetrics
  /** Seconds within which a factor change needs a sign-in. */
  reauthMaxAge: number
  /** The users' passkeys, listed by `GET /auth/mfa`. @default none */
  passkeys?: Pick<Passkeys, 'list'> | undefined
  /** @default Date.now */
  now?: (() => number) | undefined
}

// A code, a challenge, a method name: nothing legitimate is longer.
const MAX_FIELD = 256

function field(body: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(body, name) ? body[name] : undefined
}

function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HTTPError(400, 'invalid_request', 'the request body must be a JSON object')
  }
  return body as Record<string, unknown>
}

/** An optional short string field: absent, or a string up to {@link MAX_FIELD} characters. */
function optionalString(body: Record<string, unknown>, name: string): string | undefined {
  const value = field(body, name)
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length > MAX_FIELD) {
    throw new HTTPError(
      400,
      'invalid_request',
      `"${name}" must be a string of at most ${MAX_FIELD} characters`,
    )
  }
  return value
}

function requiredString(body: Record<string, unknown>, name: string): string {
  const value = optionalString(body, name)
  if (value === undefined) throw new HTTPError(400, 'invalid_request', `"${name}" must be a string`)
  return value
}

/**
 * The routes of API.md "Second factors and step-up": the second step of `POST /auth/login` and
 * `POST /auth/token`, the factors of the signed-in user, and `POST /auth/reauthenticate`.
 * Registered after `authRoutes`, whose middleware has authenticated the request.
 */
export function mfaRoutes(deps: MFARoutesDeps): (app: TesseraApp) => void {
  const { factors, secondStep, reauth, sessions, tokens, metrics } = deps
  const now = deps.now ?? Date.now
  const info = (c: Context<AppEnv>): RequestInfo => requestInfo(c, deps.trustedProxies)

  function recent(caller: Caller, secondFactor: boolean): void {
    requireRecentAuth(caller.session, deps.reauthMaxAge, now(), { secondFactor })
  }

  /**
   * A cookie session continues at the level just proved, under a new token; a token client's
   * session keeps its id (its tokens are bound to it) and is not changed.
   */
  async function raise(c: Context<AppEnv>, caller: Caller, session: Session): Promise<void> {
    if (caller.kind !== 'cookie') return
    const amr = [...new Set([...session.amr, 'otp' as const, 'mfa' as const])]
    const issued = await sessions.regenerate(session, { auth: { time: now(), aal: 2, amr } })
    if (issued !== null) c.header('Set-Cookie', issued.setCookie, { append: true })
  }

  return (app) => {
    app.post('/auth/mfa/verify', async (c) => {
      const body = objectBody(await readJSONBody(c.req.raw))
      const challenge = requiredString(body, 'challenge')
      const method = requiredString(body, 'method')
      const code = optionalString(body, 'code')
      const response = field(body, 'response')
      if (code === undefined && response === undefined) {
        throw new HTTPError(400, 'invalid_request', 'send "code" (or "response" for a passkey)')
      }
      const request = info(c)
      const current = callerOf(c)
      const verified = await secondStep.verify(
        { challenge, method, code, response },
        {
          ...request,
          // A login's cookie session is replaced by the new one (session fixation).
          session: current?.kind === 'cookie' ? current.session : undefined,
        },
      )
      if (!verified.ok) {
        if (verified.code === 'rate_limited') metrics.recordRateLimited('login')
        else if (verified.code === 'invalid_credentials') metrics.recordLogin('failure')
        throw failed(verified)
      }
      metrics.recordLogin('success')
      const { result, purpose } = verified
      if (purpose === 'token') {
        return c.json(await issueTokens(tokens, result.user.id, result.session, request))
      }
      c.header('Set-Cookie', result.setCookie, { append: true })
      return c.json({ user: toPublicUser(result.user), session: toPublicSession(result.session) })
    })

    app.get('/auth/mfa', async (c) => {
      const caller = requireCallerOf(c)
      const status = await factors.status(caller.user.id)
      return c.json({
        totp:
          status.totp === null
            ? null
            : {
                enabled: status.totp.enabled,
                createdAt: new Date(status.totp.createdAt).toISOString(),
              },
        recoveryCodes: status.recoveryCodes,
        passkeys: (await deps.passkeys?.list(caller.user.id))?.map(toPublicPasskey) ?? [],
      })
    })

    app.post('/auth/mfa/totp', async (c) => {
      const caller = requireCallerOf(c)
      recent(caller, false)
      const started = await factors.startTOTP(caller.user, info(c))
      if (!started.ok) throw failed(started)
      return c.json({ secret: started.secret, uri: started.uri, qrSvg: started.qrSvg })
    })

    app.post('/auth/mfa/totp/confirm', async (c) => {
      const caller = requireCallerOf(c)
      const body = objectBody(await readJSONBody(c.req.raw))
      const code = requiredString(body, 'code')
      recent(caller, false)
      const confirmed = await factors.confirmTOTP(caller.user.id, code, info(c))
      if (!confirmed.ok) throw failed(confirmed)
      await raise(c, caller, caller.session)
      return c.json({ recoveryCodes: confirmed.recoveryCodes })
    })

    app.delete('/auth/mfa/totp', async (c) => {
      const caller = requireCallerOf(c)
      // SECURITY: removing a factor needs a recent sign-in with a second factor (API.md).
      recent(caller, await factors.hasTOTP(caller.user.id))
      await factors.removeTOTP(caller.user.id, info(c))
      return c.body(null, 204)
    })

    app.post('/auth/mfa/recovery-codes', async (c) => {
      const caller = requireCallerOf(c)
      if ((await deps.registry.methodsOf(caller.user.id)).length === 0) {
        throw new TesseraError(
          'conflict',
          'add an authenticator first: recovery codes stand in for one',
        )
      }
      recent(caller, true)
      const codes = await factors.regenerateRecoveryCodes(caller.user.id, info(c))
      return c.json({ recoveryCodes: codes })
    })

    app.post('/auth/reauthenticate', async (c) => {
      const caller = requireCallerOf(c)
      const body = objectBody(await readJSONBody(c.req.raw))
      const password = field(body, 'password')
      if (password !== undefined && (typeof password !== 'string' || password.length > 4096)) {
        throw new HTTPError(400, 'invalid_request', '"password" must be a string')
      }
      const method = optionalString(body, 'method')
      const code = optionalString(body, 'code')
      if (caller.kind !== 'cookie') {
        throw new HTTPError(
          400,
          'invalid_request',
          'a token client re-authenticates by signing in again at POST /auth/token',
        )
      }
      const result = await reauth.reauthenticate(
        caller.session,
        { password, method, code, response: field(body, 'response') },
        info(c),
      )
      if (!result.ok) {
        if (result.code === 'rate_limited') metrics.recordRateLimited('login')
        throw failed(result)
      }
      c.header('Set-Cookie', result.issued.setCookie, { append: true })
      return c.json({ session: toPublicSession(result.issued.session) })
    })
  }
}
