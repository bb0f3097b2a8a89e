import { TesseraError } from '../core/errors.js'
import type { IssuedSession, Session, SessionManager } from '../core/session-manager.js'
import type { SessionMeta } from '../core/session-store.js'
import {
  createAccounts,
  type Accounts,
  type ActionContext,
  type UserWithPermissions,
} from './accounts.js'
import { createAuditLog, type AuditLog, type RequestContext } from './audit.js'
import type { TesseraDB } from './db/database.js'
import { parseEmail } from './email.js'
import type { Mailer } from './mailer.js'
import { checkPasswordPolicy, type PasswordPolicyOptions } from './password-policy.js'
import { createPasswordHasher, type PasswordHasher } from './passwords.js'
import type { LoginLimiter, LoginTicket } from './rate-limit.js'
import {
  RESET_TOKEN_TTL_SECONDS,
  consumeResetToken,
  issueResetToken,
  peekResetToken,
} from './reset.js'

/** Options of {@link createAuthService}. */
export interface AuthServiceOptions {
  /** The session manager every login, logout and revocation goes through. */
  sessions: SessionManager
  mailer: Mailer
  /** @default createPasswordHasher() (argon2id m=19456 KiB, t=2, p=1) */
  passwords?: PasswordHasher
  /** Limits of {@link checkPasswordPolicy} for new passwords. @default 12 to 128, common list */
  passwordPolicy?: PasswordPolicyOptions
  /**
   * The public origin (and optional base path) links in e-mails are built from, e.g.
   * `https://auth.example.com`. Never derived from a request's `Host`.
   */
  publicUrl: string
  /**
   * Login throttling (`createLoginLimiter`), checked before any hashing on login and password
   * change. Without it nothing is throttled: use that only behind another limiter.
   */
  limiter?: LoginLimiter
  /** Defaults to `createAuditLog(db, { now })`. */
  audit?: AuditLog
  /** Defaults to `createAccounts(db, { sessions, audit, now })`. */
  accounts?: Accounts
  /** @default 'open' */
  signup?: 'open' | 'closed'
  /** @default 1800 (30 minutes) */
  resetTokenTtlSeconds?: number
  /** Background work (reset mail) that failed; never receives a token. @default console.error */
  onBackgroundError?: (error: unknown) => void
  /** @default Date.now */
  now?: () => number
}

/** An expected failure: untrusted input never throws. `code` matches the HTTP API's codes. */
export interface AuthFailure<Code extends string> {
  ok: false
  code: Code
  message: string
  /** Seconds to wait, for `rate_limited`. */
  retryAfterSeconds?: number
}

/** A user signed in: the new session, its token and the `Set-Cookie` value for it. */
export interface AuthSuccess extends IssuedSession {
  ok: true
  user: UserWithPermissions
}

export type SignupResult =
  AuthSuccess | AuthFailure<'invalid_request' | 'conflict' | 'weak_password' | 'forbidden'>
export type LoginResult =
  AuthSuccess | AuthFailure<'invalid_request' | 'invalid_credentials' | 'rate_limited'>
export type ChangePasswordResult =
  | { ok: true }
  | AuthFailure<'invalid_request' | 'invalid_credentials' | 'weak_password' | 'rate_limited'>
export type ConfirmResetResult =
  { ok: true; userId: string } | AuthFailure<'invalid_request' | 'invalid_token' | 'weak_password'>

export type CreateUserResult =
  | { ok: true; user: UserWithPermissions }
  | AuthFailure<'invalid_request' | 'conflict' | 'weak_password'>
export type SetPasswordResult = { ok: true } | AuthFailure<'not_found' | 'weak_password'>

/** The request, and the session it came with when there is one. */
export interface SessionContext extends RequestContext {
  /** The validated session of the request (from `sessions.validate`), if any. */
  session?: Session | undefined
}

/** Signing up, in and out, changing and resetting passwords. */
export interface AuthService {
  readonly accounts: Accounts
  readonly audit: AuditLog
  /** Reads only `email` and `password` from `body`; everything else is ignored. */
  signup(body: unknown, context?: SessionContext): Promise<SignupResult>
  /**
   * Checks the limiter before any hashing, verifies (a dummy hash for unknown e-mails, same
   * answer), upgrades an old hash, and always starts a fresh session. `context.session` (a
   * session sent with the login) is revoked, never reused.
   */
  login(body: unknown, context?: SessionContext): Promise<LoginResult>
  /** Deletes the session from the store (a copy of its cookie stops working). */
  logout(session: Session, context?: RequestContext): Promise<void>
  /** Needs the current password; revokes every other session of the user. */
  changePassword(
    userId: string,
    body: unknown,
    context?: SessionContext,
  ): Promise<ChangePasswordResult>
  /**
   * Same answer (nothing) and nearly the same time whether the e-mail is known: the lookup,
   * the token and the mail happen after this resolves. See {@link AuthService.idle}.
   */
  requestPasswordReset(body: unknown, context?: RequestContext): Promise<void>
  confirmPasswordReset(body: unknown, context?: RequestContext): Promise<ConfirmResetResult>
  /** Revokes one of the user's own sessions by public id; false when it is not theirs (or gone). */
  revokeSession(userId: string, sessionId: string, context?: RequestContext): Promise<boolean>
  /** Revokes every session of the user except `context.session`; returns how many. */
  revokeOtherSessions(userId: string, context?: SessionContext): Promise<number>
  /**
   * An administrator (or `tessera user create`) creates an account with a password: policy
   * checked, password hashed. Unlike {@link AuthService.signup} it may set `isAdmin` and starts no
   * session. `context.actorId` names the administrator in the audit log.
   */
  createUser(
    input: { email: string; password: string; isAdmin?: boolean },
    context?: ActionContext,
  ): Promise<CreateUserResult>
  /**
   * An administrator (or `tessera user passwd`) sets a user's password without the current one:
   * policy checked, reset tokens voided, every session of the user ended.
   */
  setPassword(
    userId: string,
    newPassword: string,
    context?: ActionContext,
  ): Promise<SetPasswordResult>
  /** Resolves when background work (reset mail) started so far has finished. */
  idle(): Promise<void>
}

// SECURITY: bodies are read field by field with own-property checks; nothing is spread or
// merged, so `__proto__`, `constructor` or `isAdmin` in a body have no effect.
function readString(body: unknown, key: string): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined
  if (!Object.prototype.hasOwnProperty.call(body, key)) return undefined
  const value = (body as Record<string, unknown>)[key]
  return typeof value === 'string' ? value : undefined
}

// A password this long is refused before any hashing (a cheap request must not buy an
// expensive hash); the policy's own maximum is smaller.
const MAX_PASSWORD_INPUT = 4096
const MAX_PENDING_BACKGROUND = 1000

function normalizePublicUrl(publicUrl: string): string {
  let url: URL
  try {
    url = new URL(publicUrl)
  } catch (cause) {
    throw new TesseraError('config_invalid', 'publicUrl must be an absolute http(s) URL', { cause })
  }
  if (
    (url.protocol !== 'https:' && url.protocol !== 'http:') ||
    url.search !== '' ||
    url.hash !== ''
  ) {
    throw new TesseraError(
      'config_invalid',
      'publicUrl must be an http(s) URL without query or fragment, e.g. https://auth.example.com',
    )
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '')
}

function meta(context: RequestContext | undefined): SessionMeta {
  const out: SessionMeta = {}
  if (context?.ip !== undefined) out.ip = context.ip
  if (context?.userAgent !== undefined) out.userAgent = context.userAgent
  return out
}

function failure<Code extends string>(
  code: Code,
  message: string,
  retryAfterSeconds?: number,
): AuthFailure<Code> {
  return retryAfterSeconds === undefined
    ? { ok: false, code, message }
    : { ok: false, code, message, retryAfterSeconds }
}

const INVALID_CREDENTIALS = 'email or password is incorrect'

/**
 * The account services over a migrated database, a password hasher, a session manager and a
 * mailer. Plain functions: the server and adapters map their results to HTTP.
 *
 * @throws TesseraError `config_invalid` for a bad `publicUrl` or TTL.
 * @example
 * ```ts
 * const auth = createAuthService(db, {
 *   passwords, sessions: manager, limiter, publicUrl: 'https://auth.example.com',
 *   mailer: createFileOutboxMailer({ from: 'no-reply@example.com', directory: './outbox' }),
 * })
 * const result = await auth.login(await request.json(), { ip, userAgent })
 * if (!result.ok) return json({ error: { code: result.code, message: result.message } }, 401)
 * ```
 */
export function createAuthService(db: TesseraDB, options: AuthServiceOptions): AuthService {
  const now = options.now ?? Date.now
  const publicUrl = normalizePublicUrl(options.publicUrl)
  const ttl = options.resetTokenTtlSeconds ?? RESET_TOKEN_TTL_SECONDS
  if (!Number.isInteger(ttl) || ttl < 60 || ttl > 24 * 3600) {
    throw new TesseraError('config_invalid', 'resetTokenTtlSeconds must be 60 to 86400 seconds')
  }
  const { sessions, mailer, limiter } = options
  const passwords = options.passwords ?? createPasswordHasher()
  const policyOptions = options.passwordPolicy ?? {}
  const checkPolicy = (password: string): { ok: true } | { ok: false; message: string } =>
    password.length > MAX_PASSWORD_INPUT
      ? { ok: false, message: 'The password is too long.' }
      : checkPasswordPolicy(password, policyOptions)
  const audit = options.audit ?? createAuditLog(db, { now })
  const accounts = options.accounts ?? createAccounts(db, { sessions, audit, now })
  const onBackgroundError =
    options.onBackgroundError ??
    ((error: unknown): void => {
      console.error(
        'tessera: background task failed:',
        error instanceof Error ? error.message : error,
      )
    })
  const pending = new Set<Promise<void>>()

  function background(task: () => Promise<void>): void {
    if (pending.size >= MAX_PENDING_BACKGROUND) {
      onBackgroundError(new TesseraError('store_unavailable', 'too many pending background tasks'))
      return
    }
    const run = (async (): Promise<void> => {
      await new Promise<void>((resolve) => setImmediate(resolve))
      await task()
    })().catch(onBackgroundError)
    const tracked = run.finally(() => pending.delete(tracked))
    pending.add(tracked)
  }

  async function startSession(
    userId: string,
    context: SessionContext | undefined,
  ): Promise<IssuedSession> {
    const created = await sessions.create(userId, { meta: meta(context) })
    // SECURITY: a session presented with the login is never promoted (session fixation,
    // ASVS 3.2.1): the new one replaces it.
    if (context?.session !== undefined) await sessions.revoke(context.session)
    return created
  }

  async function sendResetMail(email: string, context: RequestContext | undefined): Promise<void> {
    const user = await accounts.findUserByEmail(email)
    if (user === null || !user.isActive) {
      await audit.record({
        type: 'password_reset_requested',
        outcome: 'failure',
        userId: user?.id ?? null,
        ip: context?.ip,
        userAgent: context?.userAgent,
        detail: { reason: user === null ? 'unknown_account' : 'inactive', email },
      })
      return
    }
    const token = await issueResetToken(db, user.id, { now: now(), ttlSeconds: ttl })
    // SECURITY: the link comes from the configured public URL only, never from a request's
    // Host header (reset poisoning).
    const link = `${publicUrl}/reset?token=${encodeURIComponent(token)}`
    const minutes = Math.round(ttl / 60)
    await mailer.send({
      to: user.email,
      subject: 'Reset your password',
      text:
        `Someone asked to reset the password of your account (${user.email}).\n\n` +
        `To choose a new password, open this link within ${minutes} minutes:\n\n${link}\n\n` +
        'The link works once. If you did not ask for this, ignore this message: ' +
        'your password stays as it is.\n',
    })
    await audit.record({
      type: 'password_reset_requested',
      outcome: 'success',
      userId: user.id,
      ip: context?.ip,
      userAgent: context?.userAgent,
    })
  }

  const service: AuthService = {
    accounts,
    audit,

    async signup(body: unknown, context?: SessionContext): Promise<SignupResult> {
      const rawEmail = readString(body, 'email')
      const password = readString(body, 'password')
      const email = parseEmail(rawEmail)
      const ctx = { ip: context?.ip, userAgent: context?.userAgent }
      if (options.signup === 'closed') {
        await audit.record({
          type: 'signup',
          outcome: 'denied',
          ...ctx,
          detail: { reason: 'closed' },
        })
        return failure('forbidden', 'signup is closed')
      }
      if (email === null || password === undefined) {
        return failure('invalid_request', 'email (a valid address) and password are required')
      }
      const policy = checkPolicy(password)
      if (!policy.ok) return failure('weak_password', policy.message)
      if ((await accounts.findUserByEmail(email)) !== null) {
        await audit.record({
          type: 'signup',
          outcome: 'failure',
          ...ctx,
          detail: { reason: 'conflict' },
        })
        return failure('conflict', 'an account with this email already exists')
      }
      const passwordHash = await passwords.hash(password)
      let userId: string
      try {
        userId = (await accounts.createUser({ email, passwordHash }, ctx)).id
      } catch (error) {
        if (error instanceof TesseraError && error.code === 'conflict') {
          await audit.record({
            type: 'signup',
            outcome: 'failure',
            ...ctx,
            detail: { reason: 'conflict' },
          })
          return failure('conflict', 'an account with this email already exists')
        }
        throw error
      }
      const issued = await startSession(userId, context)
      await accounts.recordLogin(userId)
      await audit.record({ type: 'signup', outcome: 'success', userId, ...ctx })
      const user = await accounts.getUserWithPermissions(userId)
      if (user === null) throw new TesseraError('not_found', 'the new account vanished')
      return { ok: true, user, ...issued }
    },

    async login(body: unknown, context?: SessionContext): Promise<LoginResult> {
      const rawEmail = readString(body, 'email')
      const password = readString(body, 'password')
      if (rawEmail === undefined || password === undefined) {
        return failure('invalid_request', 'email and password are required')
      }
      const ctx = { ip: context?.ip, userAgent: context?.userAgent }
      const email = parseEmail(rawEmail)

      // SECURITY: the limiter counts the attempt and decides before any hash is computed; a
      // locked account is refused even with the right password (ASVS 2.2.1).
      let ticket: LoginTicket | undefined
      if (limiter !== undefined) {
        const check = await limiter.check({
          account: email ?? rawEmail.slice(0, 320),
          ...(context?.ip === undefined ? {} : { ip: context.ip }),
        })
        if (!check.allowed) {
          await audit.record({
            type: 'rate_limited',
            outcome: 'denied',
            ...ctx,
            detail: { action: 'login', scope: check.scope, retryAfterSeconds: check.retryAfter },
          })
          return failure('rate_limited', 'too many attempts; try again later', check.retryAfter)
        }
        ticket = check.ticket
      }

      const found = email === null ? null : await accounts.findUserByEmail(email)
      const hash = found === null ? null : await accounts.getPasswordHash(found.id)
      let verified = false
      if (found === null || hash === null) {
        // SECURITY: unknown accounts cost one verification too, so timing does not tell which
        // e-mails have accounts (ASVS 2.2.x / OWASP authentication cheat sheet).
        await passwords.dummyVerify(password)
      } else {
        verified = await passwords.verify(password, hash)
      }

      if (found === null || hash === null || !verified || !found.isActive) {
        if (ticket !== undefined) await limiter?.failed(ticket)
        await audit.record({
          type: 'login',
          outcome: 'failure',
          userId: found?.id ?? null,
          ...ctx,
          detail: {
            reason: found === null ? 'unknown_account' : !verified ? 'wrong_password' : 'inactive',
            ...(found === null && email !== null ? { email } : {}),
          },
        })
        // SECURITY: one answer for unknown e-mail, wrong password and disabled account.
        return failure('invalid_credentials', INVALID_CREDENTIALS)
      }

      if (passwords.needsRehash(hash)) {
        const upgraded = await passwords.hash(password)
        await accounts.upgradePasswordHash(found.id, hash, upgraded)
      }
      if (ticket !== undefined) await limiter?.succeeded(ticket)
      const issued = await startSession(found.id, context)
      await accounts.recordLogin(found.id)
      await audit.record({ type: 'login', outcome: 'success', userId: found.id, ...ctx })
      const user = await accounts.getUserWithPermissions(found.id)
      if (user === null) return failure('invalid_credentials', INVALID_CREDENTIALS)
      return { ok: true, user, ...issued }
    },

    async logout(session: Session, context?: RequestContext): Promise<void> {
      await sessions.revoke(session)
      await audit.record({
        type: 'logout',
        outcome: 'success',
        userId: session.userId,
        ip: context?.ip,
        userAgent: context?.userAgent,
      })
    },

    async changePassword(
      userId: string,
      body: unknown,
      context?: SessionContext,
    ): Promise<ChangePasswordResult> {
      const currentPassword = readString(body, 'currentPassword')
      const newPassword = readString(body, 'newPassword')
      if (currentPassword === undefined || newPassword === undefined) {
        return failure('invalid_request', 'currentPassword and newPassword are required')
      }
      const ctx = { ip: context?.ip, userAgent: context?.userAgent }
      const user = await accounts.findUserById(userId)
      if (user === null || !user.isActive) {
        return failure('invalid_credentials', 'current password is incorrect')
      }
      let ticket: LoginTicket | undefined
      if (limiter !== undefined) {
        // The current password is a guess like a login's: same limiter, same account key.
        const check = await limiter.check({
          account: user.email,
          ...(context?.ip === undefined ? {} : { ip: context.ip }),
        })
        if (!check.allowed) {
          await audit.record({
            type: 'rate_limited',
            outcome: 'denied',
            userId,
            ...ctx,
            detail: {
              action: 'change_password',
              scope: check.scope,
              retryAfterSeconds: check.retryAfter,
            },
          })
          return failure('rate_limited', 'too many attempts; try again later', check.retryAfter)
        }
        ticket = check.ticket
      }
      const hash = await accounts.getPasswordHash(userId)
      const verified = hash !== null && (await passwords.verify(currentPassword, hash))
      if (!verified) {
        if (ticket !== undefined) await limiter?.failed(ticket)
        await audit.record({
          type: 'password_changed',
          outcome: 'failure',
          userId,
          ...ctx,
          detail: { reason: 'wrong_current_password' },
        })
        return failure('invalid_credentials', 'current password is incorrect')
      }
      if (ticket !== undefined) await limiter?.succeeded(ticket)
      const policy = checkPolicy(newPassword)
      if (!policy.ok) return failure('weak_password', policy.message)
      await accounts.setPasswordHash(userId, await passwords.hash(newPassword))
      // SECURITY: a password change ends every other session (ASVS 3.3.3).
      const revoked = await sessions.revokeAll(
        userId,
        context?.session === undefined ? undefined : { except: context.session },
      )
      await audit.record({
        type: 'password_changed',
        outcome: 'success',
        userId,
        ...ctx,
        detail: { sessionsRevoked: revoked },
      })
      return { ok: true }
    },

    requestPasswordReset(body: unknown, context?: RequestContext): Promise<void> {
      const email = parseEmail(readString(body, 'email'))
      // SECURITY: the caller's answer and timing do not depend on whether the account exists
      // (user enumeration): everything account-specific runs after this returns.
      if (email !== null) background(() => sendResetMail(email, context))
      return Promise.resolve()
    },

    async confirmPasswordReset(
      body: unknown,
      context?: RequestContext,
    ): Promise<ConfirmResetResult> {
      const token = readString(body, 'token')
      const newPassword = readString(body, 'newPassword')
      if (token === undefined || newPassword === undefined) {
        return failure('invalid_request', 'token and newPassword are required')
      }
      const ctx = { ip: context?.ip, userAgent: context?.userAgent }
      const invalid = async (): Promise<ConfirmResetResult> => {
        await audit.record({ type: 'password_reset_used', outcome: 'failure', ...ctx })
        return failure('invalid_token', 'the reset link is invalid or has expired')
      }
      // Checked first, without consuming, so a bad token costs no hash.
      if ((await peekResetToken(db, token, now())) === null) return invalid()
      const policy = checkPolicy(newPassword)
      if (!policy.ok) return failure('weak_password', policy.message)
      const passwordHash = await passwords.hash(newPassword)
      const userId = await consumeResetToken(db, token, passwordHash, now())
      if (userId === null) return invalid()
      // SECURITY: a used reset token ends every session of the user, the current one included.
      const revoked = await sessions.revokeAll(userId)
      await audit.record({
        type: 'password_reset_used',
        outcome: 'success',
        userId,
        ...ctx,
        detail: { sessionsRevoked: revoked },
      })
      return { ok: true, userId }
    },

    async revokeSession(
      userId: string,
      sessionId: string,
      context?: RequestContext,
    ): Promise<boolean> {
      if (!(await sessions.revokeById(userId, sessionId))) return false
      await audit.record({
        type: 'session_revoked',
        outcome: 'success',
        userId,
        ip: context?.ip,
        userAgent: context?.userAgent,
        detail: { count: 1 },
      })
      return true
    },

    async revokeOtherSessions(userId: string, context?: SessionContext): Promise<number> {
      const count = await sessions.revokeAll(
        userId,
        context?.session === undefined ? undefined : { except: context.session },
      )
      await audit.record({
        type: 'session_revoked',
        outcome: 'success',
        userId,
        ip: context?.ip,
        userAgent: context?.userAgent,
        detail: { count },
      })
      return count
    },

    async createUser(
      input: { email: string; password: string; isAdmin?: boolean },
      context?: ActionContext,
    ): Promise<CreateUserResult> {
      const email = parseEmail(input.email)
      if (email === null) return failure('invalid_request', 'email is not a valid address')
      const policy = checkPolicy(input.password)
      if (!policy.ok) return failure('weak_password', policy.message)
      const passwordHash = await passwords.hash(input.password)
      try {
        const user = await accounts.createUser(
          { email, passwordHash, isAdmin: input.isAdmin === true },
          context,
        )
        const full = await accounts.getUserWithPermissions(user.id)
        if (full === null) throw new TesseraError('not_found', 'the new account vanished')
        return { ok: true, user: full }
      } catch (error) {
        if (error instanceof TesseraError && error.code === 'conflict') {
          return failure('conflict', 'an account with this email already exists')
        }
        throw error
      }
    },

    async setPassword(
      userId: string,
      newPassword: string,
      context?: ActionContext,
    ): Promise<SetPasswordResult> {
      const policy = checkPolicy(newPassword)
      if (!policy.ok) return failure('weak_password', policy.message)
      if ((await accounts.findUserById(userId)) === null) {
        return failure('not_found', 'no such user')
      }
      const changed = await accounts.setPasswordHash(userId, await passwords.hash(newPassword))
      if (!changed) return failure('not_found', 'no such user')
      // SECURITY: a password set by someone else ends every session of the user.
      const revoked = await sessions.revokeAll(userId)
      await audit.record({
        type: 'password_changed',
        outcome: 'success',
        userId,
        ip: context?.ip,
        userAgent: context?.userAgent,
        detail: {
          by: 'admin',
          sessionsRevoked: revoked,
          ...(context?.actorId === undefined ? {} : { actorId: context.actorId }),
        },
      })
      return { ok: true }
    },

    async idle(): Promise<void> {
      while (pending.size > 0) await Promise.allSettled([...pending])
    },
  }
  return service
}
