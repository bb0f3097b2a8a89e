import { TesseraError } from '../core/errors.js'
import type { SessionManager } from '../core/session-manager.js'
import type { ActionLimiter } from './action-limiter.js'
import type { Accounts, ActionContext, UserWithPermissions } from './accounts.js'
import type { AuditLog, RequestContext } from './audit.js'
import { isUniqueViolation, type TesseraDB } from './db/database.js'
import { parseEmail } from './email.js'
import {
  checkSignInCode,
  consumeEmailToken,
  isEmailTokenShape,
  issueEmailToken,
  issueSignInCode,
  peekEmailToken,
  voidEmailTokens,
} from './email-tokens.js'
import type { MailDelivery } from './mail-delivery.js'
import { composeMail, type MailBrand, type MailKind, type MailTemplates } from './mail-templates.js'
import { failure, INVALID_CREDENTIALS, type AuthFailure } from './results.js'
import type { SignIn, SignInOptions, SignInResult } from './sign-in.js'

/** Lifetimes of the mailed secrets, in seconds. */
export interface EmailLifetimes {
  /** A verification link. @default 86400 (24 hours) */
  verification: number
  /** The confirmation link sent to a new address. @default 3600 (1 hour) */
  change: number
  /** The "this was not me" link sent to the old address. @default 604800 (7 days) */
  report: number
  /** A one-time sign-in code. @default 600 (10 minutes, API.md) */
  code: number
}

/** The default {@link EmailLifetimes}. */
export const EMAIL_LIFETIMES: EmailLifetimes = {
  verification: 24 * 3600,
  change: 3600,
  report: 7 * 24 * 3600,
  code: 600,
}

/** What {@link createEmailFlows} is built on (the auth service passes its own parts). */
export interface EmailFlowsDeps {
  db: TesseraDB
  accounts: Accounts
  audit: AuditLog
  signIn: SignIn
  sessions: SessionManager
  delivery: MailDelivery
  brand: MailBrand
  templates?: Partial<MailTemplates> | undefined
  lifetimes?: Partial<EmailLifetimes> | undefined
  /**
   * Limits per account and per IP (`createActionLimiter`; its defaults include the actions of
   * {@link EMAIL_ACTIONS}). Without it nothing is limited: use that only behind another limiter.
   */
  limiter?: ActionLimiter | undefined
  now: () => number
}

/** The actions the e-mail flows count with the action limiter. */
export const EMAIL_ACTIONS = [
  'email_verification_request',
  'email_verify',
  'email_change_request',
  'email_change_confirm',
  'email_code_request',
  'email_code_verify',
] as const

/** A mail endpoint's outcome: `rateLimited` means nothing is sent (the answer stays the same). */
export interface MailRequestResult {
  rateLimited: boolean
}

/** A verified address: the account as it is now. */
export type VerifyEmailResult =
  { ok: true; user: UserWithPermissions } | AuthFailure<'invalid_token' | 'rate_limited'>

/** The outcome of asking to change the address. */
export type EmailChangeRequestResult =
  | { ok: true }
  | AuthFailure<'invalid_request' | 'invalid_credentials' | 'rate_limited' | 'conflict'>

/** The outcome of confirming a new address. */
export type EmailChangeConfirmResult =
  | { ok: true; user: UserWithPermissions }
  | AuthFailure<'invalid_token' | 'conflict' | 'rate_limited'>

/** The outcome of the old address's report. */
export type EmailChangeReportResult =
  { ok: true; restored: boolean; sessionsRevoked: number } | AuthFailure<'invalid_token'>

/** The outcome of a sign-in code: what any sign-in gives, or a wrong code. */
export type SignInCodeResult = SignInResult | AuthFailure<'invalid_request' | 'rate_limited'>

/**
 * Verification of addresses, change of address and one-time sign-in codes (API.md "E-mail
 * verification, e-mail change and sign-in codes"). Every mail is sent off the request path.
 */
export interface EmailFlows {
  /** Mails a verification link to the user's stored address (after the caller returns). */
  sendVerification(userId: string, context?: ActionContext): void
  /** The resend of a signed-in user: limited per address and per IP; returns at once. */
  requestVerification(userId: string, context?: RequestContext): Promise<MailRequestResult>
  /**
   * The resend of someone not signed in (`{email}`): mails a link when the address has an
   * active, unverified account; the same silence otherwise. Limited like
   * {@link EmailFlows.requestVerification}; returns at once.
   */
  resendVerification(email: string, context?: RequestContext): Promise<MailRequestResult>
  /** True when `token` is a live verification link (the page shows its button). */
  isVerificationLink(token: string): Promise<boolean>
  /** Marks the address verified; the token is single use and only for the address it was sent to. */
  verify(token: string, context?: RequestContext): Promise<VerifyEmailResult>
  /** An administrator marks the address verified (audited with the actor). False: no such user. */
  markVerified(
    userId: string,
    context?: ActionContext,
    options?: { via?: 'admin' | 'identity_provider' },
  ): Promise<boolean>
  /**
   * Checks the password, then mails a confirmation to `newEmail` and a notice with a report link
   * to the current address. The address changes only at {@link EmailFlows.confirmChange}.
   */
  requestChange(
    userId: string,
    input: { newEmail: string; password: string },
    context?: RequestContext,
  ): Promise<EmailChangeRequestResult>
  /** True when `token` is a live confirmation link of a new address. */
  isChangeLink(token: string): Promise<boolean>
  /**
   * Sets the new address (verified: the link proved it); voids reset, verification, change and
   * code secrets of the account.
   */
  confirmChange(token: string, context?: RequestContext): Promise<EmailChangeConfirmResult>
  /** True when `token` is a live report link. */
  isReportLink(token: string): Promise<boolean>
  /**
   * The old address says "this was not me": the pending change is cancelled, or the address
   * put back when it already changed; every session of the account ends.
   */
  reportChange(token: string, context?: RequestContext): Promise<EmailChangeReportResult>
  /** Mails a sign-in code to a known, active address; the same silence otherwise. Returns at once. */
  requestCode(email: string, context?: RequestContext): Promise<MailRequestResult>
  /**
   * The sign-in with a mailed code: right code → the pipeline (second factor if the account has
   * one, then the session, `amr: ['otp']`) and the address counts as verified; wrong or none →
   * `invalid_credentials`.
   */
  verifyCode(
    input: { email: string; code: string },
    options?: SignInOptions,
  ): Promise<SignInCodeResult>
}

const INVALID_LINK = 'the link is invalid, has expired or was already used'

/** Builds the e-mail flows; `createAuthService` builds them as `auth.email`. */
export function createEmailFlows(deps: EmailFlowsDeps): EmailFlows {
  const { db, accounts, audit, delivery, brand, now, limiter } = deps
  const lifetimes: EmailLifetimes = { ...EMAIL_LIFETIMES, ...deps.lifetimes }
  const missing = EMAIL_ACTIONS.filter((action) => limiter && !limiter.actions.includes(action))
  if (missing.length > 0) {
    throw new TesseraError(
      'config_invalid',
      `the action limiter has no policy for ${missing.join(', ')}: spread DEFAULT_ACTION_POLICIES into its policies`,
    )
  }

  /**
   * SECURITY: every endpoint that sends mail or checks a mailed secret is limited per account
   * and per IP, in the shared store (API.md). The account is a normalised address or a user id,
   * so variants of one address count as one. Returns the refusal, audited, or null.
   */
  async function limited(
    action: (typeof EMAIL_ACTIONS)[number],
    subject: { account?: string | undefined; ip?: string | undefined },
    context: RequestContext | undefined,
    userId: string | null,
  ): Promise<{ retryAfter: number } | null> {
    if (limiter === undefined) return null
    const check = await limiter.check(action, subject)
    if (check.allowed) return null
    await audit.record({
      type: 'rate_limited',
      outcome: 'denied',
      userId,
      ip: context?.ip,
      userAgent: context?.userAgent,
      detail: { action, scope: check.scope, retryAfterSeconds: check.retryAfter },
    })
    return { retryAfter: check.retryAfter }
  }
  const tooMany = (wait: { retryAfter: number }): AuthFailure<'rate_limited'> =>
    failure('rate_limited', 'too many attempts; try again later', wait.retryAfter)
  const link = (path: string, token: string): string =>
    // SECURITY: links come from the configured public URL only, never from a request's Host.
    `${brand.publicUrl}/${path}?token=${encodeURIComponent(token)}`

  async function mail<K extends MailKind>(
    kind: K,
    to: string,
    data: Parameters<MailTemplates[K]>[0],
  ): Promise<void> {
    const content = composeMail(deps.templates, kind, data, brand)
    // SECURITY: only ever the stored (normalised) address of an account, or the new address
    // the account holder typed: never an address variant from an unauthenticated request.
    await delivery.send(kind, { to, ...content })
  }

  async function mailVerification(
    userId: string,
    context: ActionContext | undefined,
    via: string,
  ): Promise<void> {
    const user = await accounts.findUserById(userId)
    if (user === null || !user.isActive || user.emailVerifiedAt !== null) return
    const token = await issueEmailToken(db, {
      userId: user.id,
      purpose: 'verify',
      email: user.email,
      now: now(),
      ttlSeconds: lifetimes.verification,
    })
    await mail('emailVerification', user.email, {
      email: user.email,
      link: link('verify-email', token),
      hours: Math.round(lifetimes.verification / 3600),
    })
    await audit.record({
      type: 'email_verification_sent',
      outcome: 'success',
      userId: user.id,
      ip: context?.ip,
      userAgent: context?.userAgent,
      detail: { via, ...(context?.actorId === undefined ? {} : { actorId: context.actorId }) },
    })
  }

  async function setVerified(userId: string, at: number): Promise<boolean> {
    const result = await db
      .updateTable('users')
      .set({ email_verified_at: at })
      .where('id', '=', userId)
      .where('email_verified_at', 'is', null)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) > 0
  }

  async function current(userId: string): Promise<UserWithPermissions | null> {
    const user = await accounts.getUserWithPermissions(userId)
    return user !== null && user.isActive ? user : null
  }

  return {
    sendVerification(userId, context) {
      delivery.defer(() => mailVerification(userId, context, context?.actorId ? 'admin' : 'user'))
    },

    async requestVerification(userId, context) {
      const user = await accounts.findUserById(userId)
      if (user === null || user.emailVerifiedAt !== null) return { rateLimited: false }
      const ip = context?.ip
      if (
        (await limited(
          'email_verification_request',
          { account: user.email, ip },
          context,
          userId,
        )) !== null
      ) {
        return { rateLimited: true }
      }
      delivery.defer(() => mailVerification(userId, context, 'resend'))
      return { rateLimited: false }
    },

    async resendVerification(email, context) {
      const normalized = parseEmail(email)
      if (normalized === null) return { rateLimited: false }
      // Keyed on the normalised address whether or not it has an account: the limit tells
      // nothing either.
      const ip = context?.ip
      if (
        (await limited(
          'email_verification_request',
          { account: normalized, ip },
          context,
          null,
        )) !== null
      ) {
        return { rateLimited: true }
      }
      // SECURITY: the caller's answer does not depend on the account (no enumeration): the
      // lookup runs after this returns.
      delivery.defer(async () => {
        const user = await accounts.findUserByEmail(normalized)
        if (user !== null) await mailVerification(user.id, context, 'resend')
      })
      return { rateLimited: false }
    },

    async isVerificationLink(token) {
      return (await peekEmailToken(db, token, 'verify', now())) !== null
    },

    async verify(token, context) {
      // SECURITY: guesses are counted per IP before any lookup, then per account once a live
      // token names one.
      const byIp = await limited('email_verify', { ip: context?.ip }, context, null)
      if (byIp !== null) return tooMany(byIp)
      const owner = await peekEmailToken(db, token, 'verify', now())
      if (owner !== null) {
        const byAccount = await limited(
          'email_verify',
          { account: owner.userId },
          context,
          owner.userId,
        )
        if (byAccount !== null) return tooMany(byAccount)
      }
      const at = now()
      const consumed = owner === null ? null : await consumeEmailToken(db, token, 'verify', at)
      const user = consumed === null ? null : await current(consumed.userId)
      // SECURITY: a link proves only the address it was sent to: after a change of address an
      // older link verifies nothing.
      if (consumed === null || user === null || user.email !== consumed.email) {
        await audit.record({
          type: 'email_verified',
          outcome: 'failure',
          userId: user?.id ?? null,
          ip: context?.ip,
          userAgent: context?.userAgent,
          detail: { reason: consumed === null ? 'invalid_token' : 'address_changed' },
        })
        return failure('invalid_token', INVALID_LINK)
      }
      await setVerified(user.id, at)
      await audit.record({
        type: 'email_verified',
        outcome: 'success',
        userId: user.id,
        ip: context?.ip,
        userAgent: context?.userAgent,
        detail: { via: 'link' },
      })
      const fresh = await current(user.id)
      return fresh === null ? failure('invalid_token', INVALID_LINK) : { ok: true, user: fresh }
    },

    async markVerified(userId, context, options) {
      const user = await accounts.findUserById(userId)
      if (user === null) return false
      await setVerified(userId, now())
      await voidEmailTokens(db, userId, ['verify'], now())
      await audit.record({
        type: 'email_verified',
        outcome: 'success',
        userId,
        ip: context?.ip,
        userAgent: context?.userAgent,
        detail: {
          via: options?.via ?? 'admin',
          ...(context?.actorId === undefined ? {} : { actorId: context.actorId }),
        },
      })
      return true
    },

    async requestChange(userId, input, context) {
      const newEmail = parseEmail(input.newEmail)
      if (newEmail === null || typeof input.password !== 'string') {
        return failure('invalid_request', 'newEmail (a valid address) and password are required')
      }
      const wait = await limited(
        'email_change_request',
        { account: userId, ip: context?.ip },
        context,
        userId,
      )
      if (wait !== null) return tooMany(wait)
      const checked = await deps.signIn.verifyUserPassword(userId, input.password, {
        ip: context?.ip,
        userAgent: context?.userAgent,
        audit: { action: 'email_change' },
      })
      if (!checked.ok) {
        await audit.record({
          type: 'email_change_requested',
          outcome: 'failure',
          userId,
          ip: context?.ip,
          userAgent: context?.userAgent,
          detail: { reason: checked.code },
        })
        return checked.code === 'rate_limited'
          ? failure('rate_limited', checked.message, checked.retryAfterSeconds)
          : failure('invalid_credentials', 'the password is incorrect')
      }
      const user = checked.user
      if (newEmail === user.email) {
        return failure('invalid_request', 'newEmail is the current address')
      }
      if ((await accounts.findUserByEmail(newEmail)) !== null) {
        return failure('conflict', 'an account with this email already exists')
      }
      const at = now()
      // Only the newest request counts: earlier confirmation links stop working.
      await voidEmailTokens(db, user.id, ['change'], at)
      const confirm = await issueEmailToken(db, {
        userId: user.id,
        purpose: 'change',
        email: newEmail,
        now: at,
        ttlSeconds: lifetimes.change,
      })
      const report = await issueEmailToken(db, {
        userId: user.id,
        purpose: 'report',
        email: user.email,
        now: at,
        ttlSeconds: lifetimes.report,
      })
      await audit.record({
        type: 'email_change_requested',
        outcome: 'success',
        userId: user.id,
        ip: context?.ip,
        userAgent: context?.userAgent,
        detail: { newEmail },
      })
      const oldEmail = user.email
      delivery.defer(async () => {
        await mail('emailChangeConfirm', newEmail, {
          oldEmail,
          newEmail,
          link: link('confirm-email', confirm),
          hours: Math.round(lifetimes.change / 3600),
        })
        await mail('emailChangeNotice', oldEmail, {
          oldEmail,
          newEmail,
          reportLink: link('report-email-change', report),
          days: Math.round(lifetimes.report / 86400),
        })
      })
      return { ok: true }
    },

    async isChangeLink(token) {
      return (await peekEmailToken(db, token, 'change', now())) !== null
    },

    async confirmChange(token, context) {
      const byIp = await limited('email_change_confirm', { ip: context?.ip }, context, null)
      if (byIp !== null) return tooMany(byIp)
      const owner = await peekEmailToken(db, token, 'change', now())
      if (owner !== null) {
        const byAccount = await limited(
          'email_change_confirm',
          { account: owner.userId },
          context,
          owner.userId,
        )
        if (byAccount !== null) return tooMany(byAccount)
      }
      const at = now()
      const outcome = await db.transaction().execute(async (trx) => {
        const consumed = await consumeEmailToken(trx, token, 'change', at)
        if (consumed === null) return { ok: false as const, code: 'invalid_token' as const }
        const before = await trx
          .selectFrom('users')
          .select(['email', 'is_active'])
          .where('id', '=', consumed.userId)
          .executeTakeFirst()
        if (before === undefined || Number(before.is_active) !== 1) {
          return { ok: false as const, code: 'invalid_token' as const }
        }
        try {
          await trx
            .updateTable('users')
            .set({ email: consumed.email, email_verified_at: at })
            .where('id', '=', consumed.userId)
            .execute()
        } catch (error) {
          if (isUniqueViolation(error)) return { ok: false as const, code: 'conflict' as const }
          throw error
        }
        // SECURITY: a change of address voids every secret mailed to the old one: reset links,
        // verification links, sign-in codes and other pending changes (the report link stays,
        // so the old address can still undo it).
        await trx
          .updateTable('password_reset_tokens')
          .set({ used_at: at })
          .where('user_id', '=', consumed.userId)
          .where('used_at', 'is', null)
          .execute()
        await voidEmailTokens(trx, consumed.userId, ['verify', 'change', 'code'], at)
        return {
          ok: true as const,
          userId: consumed.userId,
          from: before.email,
          to: consumed.email,
        }
      })
      if (!outcome.ok) {
        await audit.record({
          type: 'email_changed',
          outcome: 'failure',
          ip: context?.ip,
          userAgent: context?.userAgent,
          detail: { reason: outcome.code },
        })
        return outcome.code === 'conflict'
          ? failure('conflict', 'an account with this email already exists')
          : failure('invalid_token', INVALID_LINK)
      }
      await audit.record({
        type: 'email_changed',
        outcome: 'success',
        userId: outcome.userId,
        ip: context?.ip,
        userAgent: context?.userAgent,
        detail: { from: outcome.from, to: outcome.to },
      })
      const user = await current(outcome.userId)
      return user === null ? failure('invalid_token', INVALID_LINK) : { ok: true, user }
    },

    async isReportLink(token) {
      return (await peekEmailToken(db, token, 'report', now())) !== null
    },

    async reportChange(token, context) {
      const at = now()
      const outcome = await db.transaction().execute(async (trx) => {
        const consumed = await consumeEmailToken(trx, token, 'report', at)
        if (consumed === null) return null
        await voidEmailTokens(trx, consumed.userId, ['change', 'code', 'verify'], at)
        const user = await trx
          .selectFrom('users')
          .select('email')
          .where('id', '=', consumed.userId)
          .executeTakeFirst()
        let restored = false
        if (user !== undefined && user.email !== consumed.email) {
          try {
            // The old address is proved again by this very link.
            await trx
              .updateTable('users')
              .set({ email: consumed.email, email_verified_at: at })
              .where('id', '=', consumed.userId)
              .execute()
            restored = true
          } catch (error) {
            if (!isUniqueViolation(error)) throw error
          }
        }
        await trx
          .updateTable('password_reset_tokens')
          .set({ used_at: at })
          .where('user_id', '=', consumed.userId)
          .where('used_at', 'is', null)
          .execute()
        return { userId: consumed.userId, restored }
      })
      if (outcome === null) return failure('invalid_token', INVALID_LINK)
      // SECURITY: someone who knew the password asked for the change: every session ends.
      const sessionsRevoked = await deps.sessions.revokeAll(outcome.userId)
      await audit.record({
        type: 'email_change_reported',
        outcome: 'success',
        userId: outcome.userId,
        ip: context?.ip,
        userAgent: context?.userAgent,
        detail: { restored: outcome.restored, sessionsRevoked },
      })
      return { ok: true, restored: outcome.restored, sessionsRevoked }
    },

    async requestCode(email, context) {
      const normalized = parseEmail(email)
      if (normalized === null) return { rateLimited: false }
      const ip = context?.ip
      if (
        (await limited('email_code_request', { account: normalized, ip }, context, null)) !== null
      ) {
        return { rateLimited: true }
      }
      // SECURITY: the same answer, at once, for known and unknown addresses (no enumeration).
      delivery.defer(async () => {
        const user = await accounts.findUserByEmail(normalized)
        if (user === null || !user.isActive) {
          await audit.record({
            type: 'email_code_requested',
            outcome: 'failure',
            userId: user?.id ?? null,
            ip: context?.ip,
            userAgent: context?.userAgent,
            detail: { reason: user === null ? 'unknown_account' : 'inactive', email: normalized },
          })
          return
        }
        const code = await issueSignInCode(db, {
          userId: user.id,
          email: user.email,
          now: now(),
          ttlSeconds: lifetimes.code,
        })
        const page = `${brand.publicUrl}/email-code?email=${encodeURIComponent(user.email)}&code=${code}`
        await mail('signInCode', user.email, {
          email: user.email,
          code,
          link: page,
          minutes: Math.round(lifetimes.code / 60),
        })
        await audit.record({
          type: 'email_code_requested',
          outcome: 'success',
          userId: user.id,
          ip: context?.ip,
          userAgent: context?.userAgent,
        })
      })
      return { rateLimited: false }
    },

    async verifyCode(input, options = {}) {
      const email = parseEmail(input.email)
      if (email === null || typeof input.code !== 'string') {
        return failure('invalid_request', 'email (a valid address) and code are required')
      }
      // SECURITY: guesses per IP and per address (known or not), before any lookup.
      const wait = await limited(
        'email_code_verify',
        { account: email, ip: options.ip },
        options,
        null,
      )
      if (wait !== null) return tooMany(wait)
      const user = await accounts.findUserByEmail(email)
      const checked =
        user === null || !user.isActive
          ? ({ ok: false, reason: 'no_code' } as const)
          : await checkSignInCode(db, user.id, input.code.trim(), now())
      if (!checked.ok || user === null) {
        await audit.record({
          type: 'login',
          outcome: 'failure',
          userId: user?.id ?? null,
          ip: options.ip,
          userAgent: options.userAgent,
          detail: { method: 'email_code', reason: checked.ok ? 'unknown_account' : checked.reason },
        })
        // SECURITY: one answer for an unknown address, no live code and a wrong code.
        return failure('invalid_credentials', INVALID_CREDENTIALS)
      }
      // The code reached the account's address: that proves it, as a verification link does.
      if (checked.email === user.email) await setVerified(user.id, now())
      return deps.signIn.afterFirstFactor(user.id, { amr: ['otp'] }, options)
    },
  }
}

/** True when `token` has the shape of a mailed link token (for pages that check before work). */
export { isEmailTokenShape }
