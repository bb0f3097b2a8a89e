import type { IssuedSession, Session, SessionManager } from '../core/session-manager.js'
import type { Accounts } from './accounts.js'
import type { AuditLog, RequestContext } from './audit.js'
import type { LoginLimiter } from './rate-limit.js'
import { failure, type AuthFailure } from './results.js'
import type { SecondFactorRegistry } from './second-factor-methods.js'
import type { SignIn } from './sign-in.js'

/** What `POST /auth/reauthenticate` sends: the password, or a second factor. */
export interface ReauthenticateInput {
  password?: unknown
  method?: unknown
  code?: unknown
  response?: unknown
}

export type ReauthenticateResult =
  | { ok: true; issued: IssuedSession }
  | AuthFailure<'invalid_request' | 'invalid_credentials' | 'rate_limited' | 'unauthenticated'>

/** What {@link createReauthentication} is built on. */
export interface ReauthenticationDeps {
  signIn: Pick<SignIn, 'verifyUserPassword'>
  registry: SecondFactorRegistry
  sessions: SessionManager
  accounts: Pick<Accounts, 'findUserById'>
  audit: AuditLog
  limiter?: LoginLimiter | undefined
  /** @default Date.now */
  now?: () => number
}

/** Step-up: a signed-in user proves a credential again. */
export interface Reauthentication {
  /**
   * Checks the password (through the pipeline's `verifyUserPassword`: limiter, cap, one
   * verification) or a second factor (the registry, counted by the limiter) and rotates the
   * session's token, recording what was proved: a password gives `aal: 1, amr: ['pwd']`; a
   * second factor `aal: 2` with its methods and `mfa`.
   * @throws TesseraError `store_unavailable`
   */
  reauthenticate(
    session: Session,
    input: ReauthenticateInput,
    context?: RequestContext,
  ): Promise<ReauthenticateResult>
}

/**
 * Builds the step-up of API.md's `POST /auth/reauthenticate`.
 * @example
 * ```ts
 * const result = await reauth.reauthenticate(session, { password }, { ip })
 * if (result.ok) response.headers.append('Set-Cookie', result.issued.setCookie)
 * ```
 */
export function createReauthentication(deps: ReauthenticationDeps): Reauthentication {
  const { signIn, registry, sessions, audit, limiter } = deps
  const now = deps.now ?? Date.now

  return {
    async reauthenticate(session, input, context = {}): Promise<ReauthenticateResult> {
      const ctx = { ip: context.ip, userAgent: context.userAgent }
      const userId = session.userId
      if (userId === null) return failure('unauthenticated', 'sign in first')
      const given = typeof input === 'object' && input !== null ? input : {}
      let auth: { time: number; aal: 1 | 2; amr: Session['amr'] }
      let method: string
      if (typeof given.password === 'string') {
        method = 'password'
        const checked = await signIn.verifyUserPassword(userId, given.password, {
          ...ctx,
          audit: { action: 'reauthenticate' },
        })
        if (!checked.ok) {
          if (checked.code === 'rate_limited') {
            return failure('rate_limited', checked.message, checked.retryAfterSeconds)
          }
          await audit.record({
            type: 'login',
            outcome: 'failure',
            userId: userId,
            ...ctx,
            detail: { reason: 'wrong_password', stage: 'reauthenticate' },
          })
          return failure('invalid_credentials', 'the password is not correct')
        }
        // A password alone proves one factor, whatever the session had before.
        auth = { time: now(), aal: 1, amr: ['pwd'] }
      } else if (typeof given.method === 'string') {
        method = given.method
        if (registry.find(given.method) === undefined) {
          return failure('invalid_request', 'method must be a second factor the account has')
        }
        const user = await deps.accounts.findUserById(userId)
        if (user === null || !user.isActive) {
          return failure('unauthenticated', 'the account is no longer active')
        }
        let ticket
        if (limiter !== undefined) {
          // SECURITY: a code typed at step-up is a guess like one at sign-in (same backoff).
          const check = await limiter.check({
            account: user.email,
            ...(ctx.ip === undefined ? {} : { ip: ctx.ip }),
          })
          if (!check.allowed) {
            return failure('rate_limited', 'too many attempts; try again later', check.retryAfter)
          }
          ticket = check.ticket
        }
        const verified = await registry.verify(
          userId,
          given.method,
          { code: given.code, response: given.response },
          { ...ctx, challenge: null },
        )
        if (verified === null) {
          if (ticket !== undefined) await limiter?.failed(ticket)
          await audit.record({
            type: 'mfa_failed',
            outcome: 'failure',
            userId: userId,
            ...ctx,
            detail: { method: given.method, stage: 'reauthenticate' },
          })
          return failure('invalid_credentials', 'the code is not correct')
        }
        if (ticket !== undefined) await limiter?.succeeded(ticket)
        const amr = [
          ...(session.amr.includes('pwd') ? (['pwd'] as const) : []),
          ...verified.amr,
          'mfa' as const,
        ]
        auth = { time: now(), aal: 2, amr: [...new Set(amr)] }
      } else {
        return failure('invalid_request', 'send {password} or {method, code}')
      }
      // SECURITY: the token is rotated with the new authentication (ASVS 3.2.1): a copy of the
      // old cookie does not inherit the fresh step-up.
      const issued = await sessions.regenerate(session, { auth })
      if (issued === null) return failure('unauthenticated', 'the session has ended')
      await audit.record({
        type: 'login',
        outcome: 'success',
        userId: userId,
        ...ctx,
        detail: { stage: 'reauthenticate', method, amr: auth.amr.join(' ') },
      })
      return { ok: true, issued }
    },
  }
}
