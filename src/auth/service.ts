import type { SessionMeta, SessionRecord } from '../core/session-store.js'
import { TesseraError } from '../core/errors.js'
import {
  createAccounts,
  type Accounts,
  type SessionRevoker,
  type UserWithPermissions,
} from './accounts.js'
import { createAuditLog, type AuditLog, type RequestContext } from './audit.js'
import type { TesseraDB } from './db/database.js'
import { parseEmail } from './email.js'
import type { Mailer } from './mailer.js'
import {
  RESET_TOKEN_TTL_SECONDS,
  consumeResetToken,
  issueResetToken,
  peekResetToken,
} from './reset.js'

/** The password functions the service needs (`tessera/password` provides them). */
export interface PasswordHasher {
  hashPassword(password: string): Promise<string>
  verifyPassword(password: string, hash: string): Promise<boolean>
  needsRehash(hash: string): boolean
  /** `{ ok: false, message }` for a password the policy refuses; checked before hashing. */
  checkPasswordPolicy(password: string): { ok: true } | { ok: false; message: string }
  /** Spends the time of one verification, for unknown accounts (no user enumeration by timing). */
  verifyDummy(password: string): Promise<void>
}

/** The session functions the service needs (the session manager provides them). */
export interface SessionIssuer extends SessionRevoker {
  /** Starts a new session; returns the token for the cookie and the stored record. */
  create(
    userId: string,
    options: { meta: SessionMeta },
  ): Promise<{ token: string; session: SessionRecord }>
  /** Deletes one session by id; a missing one is not an error. */
  revoke(sessionId: string): Promise<void>
  /** The user's live sessions. */
  list(userId: string): Promise<SessionRecord[]>
}

/** One login attempt as the limiter sees it. */
export interface LoginAttempt {
  /** The normalised e-mail (also for unknown accounts). */
  account: string
  ip?: string | undefined
}

/** What the limiter decides before any hashing. */
export type LimitDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number }

/** Login throttling (per account and per IP), e.g. over `tessera/password`'s rate limiter. */
export interface LoginLimiter {
  check(attempt: LoginAttempt): Promise<LimitDecision>
  recordFailure(attempt: LoginAttempt): Promise<void>
  recordSuccess(attempt: LoginAttempt): Promise<void>
}

/** Options of {@link createAuthService}. */
export interface AuthServiceOptions {
  passwords: PasswordHasher
  sessions: SessionIssuer
  mailer: Mailer
  /**
   * The public origin (and optional base path) links in e-mails are built from, e.g.
   * `https://auth.example.com`. Never derived from a request's `Host`.
   */
  publicUrl: string
  /** Login throttling; without it nothing is throttled (use only behind another limiter). */
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

/** A user signed in: the new session and its token (for the cookie). */
export interface AuthSuccess {
  ok: true
  user: UserWithPermissions
  token: string
  session: SessionRecord
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

/** The request a session belongs to. */
export interface SessionContext extends RequestContext {
  /** The id of the session making the request, when there is one. */
  sessionId?: string | undefined
}

/** Signing up, in and out, changing and resetting passwords. */
export interface AuthService {
  readonly accounts: Accounts
  readonly audit: AuditLog
  /** Reads only `email` and `password` from `body`; everything else is ignored. */
  signup(body: unknown, context?: SessionContext): Promise<SignupResult>
  /**
   * Checks the limiter before any hashing, verifies (a dummy hash for unknown e-mails, same
   * answer), upgrades an old hash, and always starts a fresh session. `context.sessionId` (a
   * session sent with the login) is revoked, never reused.
   */
  login(body: unknown, context?: SessionContext): Promise<LoginResult>
  logout(sessionId: string, context?: RequestContext & { userId?: string | null }): Promise<void>
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
  /** Revokes one of the user's own sessions; false when it is not theirs (or gone). */
  revokeSession(userId: string, sessionId: string, context?: RequestContext): Promise<boolean>
  /** Revokes every session of the user except `context.sessionId`; returns how many. */
  revokeOtherSessions(userId: string, context?: SessionContext): Promise<number>
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
  const { passwords, sessions, mailer, limiter } = options
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
  ): Promise<{ token: string; session: SessionRecord }> {
    const created = await sessions.create(userId, { meta: meta(context) })
    // SECURITY: a session presented with the login is never promoted (session fixation,
    // ASVS 3.2.1): the new one replaces it.
    if (context?.sessionId !== undefined && context.sessionId !== created.session.id) {
      await sessions.revoke(context.sessionId)
    }
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
      if (password.length > MAX_PASSWORD_INPUT) {
        return failure('weak_password', 'password is too long')
      }
      const policy = passwords.checkPasswordPolicy(password)
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
      const passwordHash = await passwords.hashPassword(password)
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
      const { token, session } = await startSession(userId, context)
      await accounts.recordLogin(userId)
      await audit.record({ type: 'signup', outcome: 'success', userId, ...ctx })
      const user = await accounts.getUserWithPermissions(userId)
      if (user === null) throw new TesseraError('not_found', 'the new account vanished')
      return { ok: true, user, token, session }
    },

    async login(body: unknown, context?: SessionContext): Promise<LoginResult> {
      const rawEmail = readString(body, 'email')
      const password = readString(body, 'password')
      if (rawEmail === undefined || password === undefined) {
        return failure('invalid_request', 'email and password are required')
      }
      const ctx = { ip: context?.ip, userAgent: context?.userAgent }
      const email = parseEmail(rawEmail)
      const attempt: LoginAttempt = { account: email ?? rawEmail.slice(0, 320), ip: context?.ip }

      // SECURITY: the limiter decides before any hash is computed, and a locked account is
      // refused even with the right password (ASVS 2.2.1).
      const decision = (await limiter?.check(attempt)) ?? { allowed: true }
      if (!decision.allowed) {
        await audit.record({
          type: 'rate_limited',
          outcome: 'denied',
          ...ctx,
          detail: { action: 'login', retryAfterSeconds: decision.retryAfterSeconds },
        })
        return failure(
          'rate_limited',
          'too many attempts; try again later',
          decision.retryAfterSeconds,
        )
      }

      const found = email === null ? null : await accounts.findUserByEmail(email)
      const hash = found === null ? null : await accounts.getPasswordHash(found.id)
      let verified = false
      if (password.length > MAX_PASSWORD_INPUT) {
        verified = false
      } else if (found === null || hash === null) {
        // SECURITY: unknown accounts cost one verification too, so timing does not tell which
        // e-mails have accounts (ASVS 2.2.x / OWASP authentication cheat sheet).
        await passwords.verifyDummy(password)
      } else {
        verified = await passwords.verifyPassword(password, hash)
      }

      if (found === null || hash === null || !verified || !found.isActive) {
        await limiter?.recordFailure(attempt)
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
        const upgraded = await passwords.hashPassword(password)
        await accounts.upgradePasswordHash(found.id, hash, upgraded)
      }
      await limiter?.recordSuccess(attempt)
      const { token, session } = await startSession(found.id, context)
      await accounts.recordLogin(found.id)
      await audit.record({ type: 'login', outcome: 'success', userId: found.id, ...ctx })
      const user = await accounts.getUserWithPermissions(found.id)
      if (user === null) return failure('invalid_credentials', INVALID_CREDENTIALS)
      return { ok: true, user, token, session }
    },

    async logout(
      sessionId: string,
      context?: RequestContext & { userId?: string | null },
    ): Promise<void> {
      await sessions.revoke(sessionId)
      await audit.record({
        type: 'logout',
        outcome: 'success',
        userId: context?.userId ?? null,
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
      const attempt: LoginAttempt = { account: user.email, ip: context?.ip }
      const decision = (await limiter?.check(attempt)) ?? { allowed: true }
      if (!decision.allowed) {
        await audit.record({
          type: 'rate_limited',
          outcome: 'denied',
          userId,
          ...ctx,
          detail: { action: 'change_password', retryAfterSeconds: decision.retryAfterSeconds },
        })
        return failure(
          'rate_limited',
          'too many attempts; try again later',
          decision.retryAfterSeconds,
        )
      }
      const hash = await accounts.getPasswordHash(userId)
      const verified =
        hash !== null &&
        currentPassword.length <= MAX_PASSWORD_INPUT &&
        (await passwords.verifyPassword(currentPassword, hash))
      if (!verified) {
        await limiter?.recordFailure(attempt)
        await audit.record({
          type: 'password_changed',
          outcome: 'failure',
          userId,
          ...ctx,
          detail: { reason: 'wrong_current_password' },
        })
        return failure('invalid_credentials', 'current password is incorrect')
      }
      if (newPassword.length > MAX_PASSWORD_INPUT)
        return failure('weak_password', 'password is too long')
      const policy = passwords.checkPasswordPolicy(newPassword)
      if (!policy.ok) return failure('weak_password', policy.message)
      await limiter?.recordSuccess(attempt)
      await accounts.setPasswordHash(userId, await passwords.hashPassword(newPassword))
      // SECURITY: a password change ends every other session (ASVS 3.3.3).
      const revoked = await sessions.revokeAll(
        userId,
        context?.sessionId === undefined ? undefined : { except: context.sessionId },
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
      if (newPassword.length > MAX_PASSWORD_INPUT)
        return failure('weak_password', 'password is too long')
      const policy = passwords.checkPasswordPolicy(newPassword)
      if (!policy.ok) return failure('weak_password', policy.message)
      const passwordHash = await passwords.hashPassword(newPassword)
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
      const own = await sessions.list(userId)
      if (!own.some((s) => s.id === sessionId)) return false
      await sessions.revoke(sessionId)
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
        context?.sessionId === undefined ? undefined : { except: context.sessionId },
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

    async idle(): Promise<void> {
      while (pending.size > 0) await Promise.allSettled([...pending])
    },
  }
  return service
}
