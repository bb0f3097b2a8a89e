import type { Context } from 'hono'
import { toPublicUser } from '../../auth/accounts.js'
import type { AuthService } from '../../auth/service.js'
import type { TrustedProxies } from '../../core/client-ip.js'
import { TesseraError } from '../../core/errors.js'
import { freshnessRefusal } from '../../core/refusals.js'
import { toPublicSession } from '../../core/session-manager.js'
import type { AppEnv, TesseraApp } from '../app.js'
import { expectFields, readJSONBody } from '../body.js'
import type { ServerMetrics } from '../metrics.js'
import { requestInfo, type RequestInfo } from '../request-context.js'
import type { SecondStep } from '../../auth/mfa-challenges.js'
import { callerOf, failed, secondFactorChallenge, signInAnswer, type Caller } from './auth.js'

/** What the e-mail routes are built on; everything is built by the caller. */
export interface EmailRoutesDeps {
  auth: AuthService
  trustedProxies: TrustedProxies
  metrics: ServerMetrics
  /** `TESSERA_REAUTH_MAX_AGE`: how recent a sign-in an address change needs, in seconds. */
  reauthMaxAge: number
  /** The server's clock (epoch ms), for the freshness rule. */
  now: () => number
  /** The second step of a sign-in (issue 13): an e-mailed code is a first factor like a password. */
  secondStep?: SecondStep | undefined
}

/**
 * Registers the routes of API.md "E-mail verification, e-mail change and sign-in codes" under
 * `/auth/email*`. They run behind the API's authentication and cross-site rule, so register
 * them after `authRoutes`.
 */
export function emailRoutes(deps: EmailRoutesDeps): (app: TesseraApp) => void {
  const { auth, metrics } = deps
  const info = (c: Context<AppEnv>): RequestInfo => requestInfo(c, deps.trustedProxies)

  function requireCaller(c: Context<AppEnv>): Caller {
    const found = callerOf(c)
    if (found === null) {
      throw new TesseraError('unauthenticated', 'sign in first: no valid session or access token')
    }
    return found
  }

  /** An optional JSON body: none at all reads as `{}`. */
  async function optionalBody(c: Context<AppEnv>): Promise<unknown> {
    const length = c.req.header('content-length')
    const type = c.req.header('content-type')
    if (type === undefined && (length === undefined || length === '0')) return {}
    return readJSONBody(c.req.raw)
  }

  return (app) => {
    app.post('/auth/email/verification', async (c) => {
      const body = await optionalBody(c)
      const current = callerOf(c)
      // Not signed in (TESSERA_EMAIL_VERIFICATION=required refuses the sign-in): the address
      // in the body, with the same 202 whether or not it has an account.
      const result =
        current !== null
          ? await auth.email.requestVerification(current.user.id, info(c))
          : await auth.email.resendVerification(
              expectFields(body, { email: 'string' }, { maxLength: 320 }).email,
              info(c),
            )
      // SECURITY: over the limit, the same 202 and nothing sent (API.md).
      if (result.rateLimited) metrics.recordRateLimited('email_verification_request')
      return c.body(null, 202)
    })

    app.post('/auth/email/verify', async (c) => {
      const { token } = expectFields(await readJSONBody(c.req.raw), { token: 'string' })
      const result = await auth.email.verify(token, info(c))
      if (!result.ok) {
        if (result.code === 'rate_limited') metrics.recordRateLimited('email_verify')
        throw failed(result)
      }
      return c.json({ user: toPublicUser(result.user) })
    })

    app.post('/auth/email', async (c) => {
      const current = requireCaller(c)
      // SECURITY: changing the address is a sensitive change (API.md "Second factors and
      // step-up"): a recent sign-in, and the password in the request as well.
      const stale = freshnessRefusal(current.session.authTime, deps.reauthMaxAge, deps.now())
      if (stale !== null) throw new TesseraError('reauthentication_required', stale.message)
      const body = expectFields(
        await readJSONBody(c.req.raw),
        { newEmail: 'string', password: 'string' },
        { maxLength: 4096 },
      )
      const result = await auth.email.requestChange(current.user.id, body, info(c))
      if (!result.ok) {
        if (result.code === 'rate_limited') metrics.recordRateLimited('email_change_request')
        throw failed(result)
      }
      return c.body(null, 202)
    })

    app.post('/auth/email/confirm', async (c) => {
      const { token } = expectFields(await readJSONBody(c.req.raw), { token: 'string' })
      const result = await auth.email.confirmChange(token, info(c))
      if (!result.ok) {
        if (result.code === 'rate_limited') metrics.recordRateLimited('email_change_confirm')
        throw failed(result)
      }
      return c.json({ user: toPublicUser(result.user) })
    })

    app.post('/auth/email-code/request', async (c) => {
      const { email } = expectFields(
        await readJSONBody(c.req.raw),
        { email: 'string' },
        { maxLength: 320 },
      )
      // SECURITY: the same 202, at once, for known and unknown addresses (no enumeration).
      const result = await auth.email.requestCode(email, info(c))
      if (result.rateLimited) metrics.recordRateLimited('email_code_request')
      return c.body(null, 202)
    })

    app.post('/auth/email-code/verify', async (c) => {
      const body = expectFields(
        await readJSONBody(c.req.raw),
        { email: 'string', code: 'string' },
        { maxLength: 320 },
      )
      const current = callerOf(c)
      const verified = await auth.email.verifyCode(body, {
        ...info(c),
        session: current?.kind === 'cookie' ? current.session : undefined,
      })
      // SECURITY: an account with a second factor gets the challenge, not a session.
      const challenge = await secondFactorChallenge(deps.secondStep, verified, 'login')
      if (challenge !== null) return c.json(challenge)
      const result = signInAnswer(verified, 'email_code_verify', metrics)
      c.header('Set-Cookie', result.setCookie, { append: true })
      return c.json({ user: toPublicUser(result.user), session: toPublicSession(result.session) })
    })
  }
}
