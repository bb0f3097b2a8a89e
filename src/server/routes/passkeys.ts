import type { Context } from 'hono'
import { toPublicUser, type UserWithPermissions } from '../../auth/accounts.js'
import { cleanPasskeyName, type Passkey, type Passkeys } from '../../auth/passkeys.js'
import type { ActionLimiter } from '../../auth/action-limiter.js'
import type { AuthService } from '../../auth/service.js'
import type { PasskeySecondFactor } from '../../auth/passkey-second-factor.js'
import type { SecondFactorRequired } from '../../auth/sign-in.js'
import type { TrustedProxies } from '../../core/client-ip.js'
import { TesseraError } from '../../core/errors.js'
import { freshnessRefusal } from '../../core/refusals.js'
import { toPublicSession, type Session } from '../../core/session-manager.js'
import type { AppEnv, TesseraApp } from '../app.js'
import { readJSONBody } from '../body.js'
import type { ServerMetrics } from '../metrics.js'
import { requestInfo } from '../request-context.js'

/** What the `/auth/passkeys` routes are built on. */
export interface PasskeyRoutesDeps {
  auth: AuthService
  passkeys: Passkeys
  trustedProxies: TrustedProxies
  metrics: ServerMetrics
  /** `TESSERA_REAUTH_MAX_AGE` in seconds: how recent a sign-in adding or removing a passkey needs. */
  reauthMaxAge: number
  /**
   * The second step of a sign-in (the MFA routes' `createSecondStep`): a passkey without user
   * verification that signs in an account with a second factor gets its challenge, as a password
   * does; with `factor`, `POST /auth/mfa/passkey-options` answers the passkey method of that
   * step. Without it such a sign-in is an error of the server's configuration.
   */
  secondStep?: SecondStepLike | undefined
  /** The `passkey` method of the second step (`createPasskeySecondFactor`). */
  factor?: PasskeySecondFactor | undefined
  /**
   * Bounds `POST /auth/passkeys/login/options` per IP (action `passkey_login_options`): every
   * answer stores a challenge record.
   */
  limiter?: ActionLimiter | undefined
  /** @default Date.now */
  now?: () => number
}

/** What the passkey routes use of the MFA routes' second step (`SecondStep`). */
export interface SecondStepLike {
  begin(
    required: SecondFactorRequired,
    purpose: 'login',
  ): Promise<{ challenge: string; methods: readonly string[]; expiresAt: number }>
  peek(
    challenge: unknown,
    purposes?: readonly ('login' | 'token')[],
  ): Promise<{ userId: string } | null>
}

/** A passkey as the API shows it. */
export interface PublicPasskey {
  id: string
  name: string
  createdAt: string
  lastUsedAt: string | null
  backedUp: boolean
  deviceType: 'singleDevice' | 'multiDevice'
  transports: string[]
}

/** The API's view of a passkey: no key, no counter, no credential id. */
export function toPublicPasskey(passkey: Passkey): PublicPasskey {
  return {
    id: passkey.id,
    name: passkey.name,
    createdAt: new Date(passkey.createdAt).toISOString(),
    lastUsedAt: passkey.lastUsedAt === null ? null : new Date(passkey.lastUsedAt).toISOString(),
    backedUp: passkey.backedUp,
    deviceType: passkey.deviceType,
    transports: [...passkey.transports],
  }
}

const NOT_FOUND = (): TesseraError => new TesseraError('not_found', 'no such passkey')

function bodyObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new TesseraError('invalid_request', 'the request body must be a JSON object')
  }
  return body as Record<string, unknown>
}

function own(body: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(body, name) ? body[name] : undefined
}

/**
 * The routes of API.md "Passkeys (WebAuthn)": registration (a signed-in user with a recent
 * sign-in), usernameless sign-in through the one sign-in pipeline, the user's list, rename and
 * removal. Registered after the API's authentication middleware (`authRoutes`).
 */
export function passkeyRoutes(deps: PasskeyRoutesDeps): (app: TesseraApp) => void {
  const { auth, passkeys, metrics } = deps
  const now = deps.now ?? Date.now
  const info = (c: Context<AppEnv>): ReturnType<typeof requestInfo> =>
    requestInfo(c, deps.trustedProxies)

  function caller(c: Context<AppEnv>): { user: UserWithPermissions; session: Session } {
    const state = c.get('tessera') as AppEnv['Variables']['tessera'] | undefined
    const user = state?.user
    const session = state?.session
    if (user == null || session == null) {
      throw new TesseraError('unauthenticated', 'sign in first: no valid session or access token')
    }
    return { user: user.record, session }
  }

  /** `caller`, with the step-up rule of every `requireFresh` guard (core's one rule). */
  function freshCaller(c: Context<AppEnv>): { user: UserWithPermissions; session: Session } {
    const found = caller(c)
    // SECURITY: adding or removing a passkey needs a recent sign-in (API.md), so a stolen
    // session cookie alone cannot plant a passkey for later or take the user's away.
    const refused = freshnessRefusal(found.session.authTime, deps.reauthMaxAge, now())
    if (refused !== null) throw new TesseraError('reauthentication_required', refused.message)
    return found
  }

  return (app) => {
    app.post('/auth/passkeys/register/options', async (c) => {
      const { user } = freshCaller(c)
      return c.json(await passkeys.registrationOptions({ id: user.id, email: user.email }))
    })

    app.post('/auth/passkeys/register', async (c) => {
      const { user } = freshCaller(c)
      const body = bodyObject(await readJSONBody(c.req.raw))
      const name = own(body, 'name')
      if (name !== undefined && typeof name !== 'string') {
        throw new TesseraError('invalid_request', '"name" must be a string')
      }
      const result = await passkeys.register(user.id, own(body, 'response'), {
        ...info(c),
        name,
      })
      if (!result.ok) throw new TesseraError(result.code, result.message)
      return c.json({ passkey: toPublicPasskey(result.passkey) }, 201)
    })

    app.get('/auth/passkeys', async (c) => {
      const { user } = caller(c)
      const list = await passkeys.list(user.id)
      return c.json({ passkeys: list.map(toPublicPasskey) })
    })

    app.patch('/auth/passkeys/:id', async (c) => {
      const { user } = caller(c)
      const body = bodyObject(await readJSONBody(c.req.raw))
      const name = cleanPasskeyName(own(body, 'name'))
      if (name === null) {
        throw new TesseraError('invalid_request', '"name" must be a string of 1 to 64 characters')
      }
      const id = c.req.param('id')
      if (!(await passkeys.rename(user.id, id, name, info(c)))) throw NOT_FOUND()
      const renamed = (await passkeys.list(user.id)).find((passkey) => passkey.id === id)
      if (renamed === undefined) throw NOT_FOUND()
      return c.json({ passkey: toPublicPasskey(renamed) })
    })

    app.delete('/auth/passkeys/:id', async (c) => {
      const { user } = freshCaller(c)
      const removed = await passkeys.remove(user.id, c.req.param('id'), info(c))
      if (removed === 'last_sign_in_method') {
        throw new TesseraError('conflict', 'this passkey is the last way to sign in to the account')
      }
      if (!removed) throw NOT_FOUND()
      return c.body(null, 204)
    })

    app.post('/auth/passkeys/login/options', async (c) => {
      // SECURITY: anyone may ask, and each answer stores a 5-minute challenge: limited per IP.
      if (deps.limiter !== undefined) {
        const decision = await deps.limiter.check('passkey_login_options', { ip: info(c).ip })
        if (!decision.allowed) {
          metrics.recordRateLimited('passkey_login_options')
          throw new TesseraError(
            'rate_limited',
            'too many passkey sign-in attempts: wait a moment',
            {
              retryAfter: decision.retryAfter,
            },
          )
        }
      }
      // The body (API.md: `{}`) carries nothing: every caller gets the same options.
      return c.json(await passkeys.authenticationOptions())
    })

    const { secondStep, factor } = deps
    if (secondStep !== undefined && factor !== undefined) {
      app.post('/auth/mfa/passkey-options', async (c) => {
        const body = bodyObject(await readJSONBody(c.req.raw))
        // SECURITY: the options name the passkeys of the challenge's user only, and their
        // WebAuthn challenge is bound to that user and that sign-in challenge (a passkey of
        // another sign-in, or another user's, does not answer it).
        const live = await secondStep.peek(own(body, 'challenge'), ['login', 'token'])
        if (live === null) {
          throw new TesseraError('invalid_token', 'the challenge is unknown, used or expired')
        }
        return c.json(await factor.options(live.userId, own(body, 'challenge') as string))
      })
    }

    app.post('/auth/passkeys/login', async (c) => {
      const body = bodyObject(await readJSONBody(c.req.raw))
      const request = info(c)
      const proof = await passkeys.authenticate(own(body, 'response'), request)
      if (!proof.ok) {
        if (proof.code === 'invalid_credentials') metrics.recordLogin('failure')
        throw new TesseraError(proof.code, proof.message)
      }
      const state = c.get('tessera') as AppEnv['Variables']['tessera'] | undefined
      // The one sign-in pipeline: the account must be active; a passkey without user
      // verification is one factor and goes on to the account's second factor.
      const result = await auth.signIn.afterFirstFactor(
        proof.userId,
        { amr: proof.amr, aal: proof.aal },
        {
          ...request,
          session: state?.user?.via === 'bearer' ? undefined : (state?.session ?? undefined),
          audit: { detail: { method: 'webauthn', webauthnId: proof.passkey.id } },
        },
      )
      if (!result.ok) {
        if (result.code === 'second_factor_required') {
          if (deps.secondStep !== undefined) {
            // API.md: the same challenge answer as a password sign-in's first step.
            const issued = await deps.secondStep.begin(result, 'login')
            return c.json({
              mfaRequired: true,
              challenge: issued.challenge,
              methods: issued.methods,
              expiresAt: new Date(issued.expiresAt).toISOString(),
            })
          }
          throw new TesseraError(
            'config_invalid',
            'a passkey sign-in asked for a second factor, but this server has no second-factor step',
          )
        }
        metrics.recordLogin('failure')
        throw new TesseraError(
          result.code === 'forbidden' ? 'forbidden' : 'invalid_credentials',
          result.message,
        )
      }
      metrics.recordLogin('success')
      c.header('Set-Cookie', result.setCookie, { append: true })
      return c.json({ user: toPublicUser(result.user), session: toPublicSession(result.session) })
    })
  }
}
