import { TesseraError } from '../core/errors.js'
import type { IssuedSession, Session, SessionManager } from '../core/session-manager.js'
import type { SessionMeta } from '../core/session-store.js'
import type { ActionLimiter } from './action-limiter.js'
import {
  createAccounts,
  type Accounts,
  type ActionContext,
  type UserWithPermissions,
} from './accounts.js'
import { createAuditLog, type AuditLog, type RequestContext } from './audit.js'
import { createCredentials, type Credentials } from './credentials.js'
import type { TesseraDB } from './db/database.js'
import { parseEmail } from './email.js'
import type { Mailer } from './mailer.js'
import { checkPasswordPolicy, type PasswordPolicyOptions } from './password-policy.js'
import { createPasswordHasher, type PasswordHasher } from './passwords.js'
import type { LoginLimiter } from './rate-limit.js'
import {
  RESET_TOKEN_TTL_SECONDS,
  consumeResetToken,
  issueResetToken,
  peekResetToken,
} from './reset.js'
import { failure, type AuthFailure } from './results.js'
import {
  createSignIn,
  MAX_PASSWORD_INPUT,
  type PasswordVerification,
  type SecondFactorMethod,
  type SignIn,
  type SignInResult,
  type SignInSuccess,
} from './sign-in.js'

export type { AuthFailure } from './results.js'

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
  /**
   * Limits of the reset flow (`createActionLimiter`, actions `password_reset_request` and
   * `password_reset_confirm`): reset mails per address and per IP, token attempts per IP and per
   * account. Without it nothing is limited: use that only behind another limiter.
   */
  actionLimiter?: ActionLimiter
  /** Defaults to `createAuditLog(db, { now })`. */
  audit?: AuditLog
  /** Defaults to `createAccounts(db, { sessions, audit, now })`. */
  accounts?: Accounts
  /** The password hashes. Defaults to `createCredentials(db, { now })`. */
  credentials?: Credentials
  /**
   * The second factors an account has (the MFA step provides it): when it names any, a right
   * password answers `second_factor_required` instead of a session. @default none
   */
  secondFactors?: (user: UserWithPermissions) => Promise<readonly SecondFactorMethod[]>
  /** @default 'open' */
  signup?: 'open' | 'closed'
  /** @default 1800 (30 minutes) */
  resetTokenTtlSeconds?: number
  /** Background work (reset mail) that failed; never receives a token. @default console.error */
  onBackgroundError?: (error: unknown) => void
  /** @default Date.now */
  now?: () => number
}

/** A user signed in: the new session, its token and the `Set-Cookie` value for it. */
export type AuthSuccess = SignInSuccess

export type SignupResult =
  AuthSuccess | AuthFailure<'invalid_request' | 'conflict' | 'weak_password' | 'forbidden'>
/**
 * The outcome of {@link AuthService.login}: a session; a second factor to ask for (only with the
 * `secondFactors` option; `ok: false`, so nobody is signed in by code that ignores it); or a
 * refusal (`forbidden` only when a `require` option is given, which `login` never does).
 */
export type LoginResult = SignInResult
/**
 * A changed password. `rotated` is the caller's session under a new token (send its
 * `setCookie`), or `null` when no session was given or it was rotation-exempt.
 */
export type ChangePasswordResult =
  | { ok: true; rotated: IssuedSession | null }
  | AuthFailure<'invalid_request' | 'invalid_credentials' | 'weak_password' | 'rate_limited'>
export type ConfirmResetResult =
  | { ok: true; userId: string }
  | AuthFailure<'invalid_request' | 'invalid_token' | 'weak_password' | 'rate_limited'>
/**
 * What became of a reset request: `rateLimited` when the address or the IP is over its limit and
 * nothing is sent. The caller answers the same either way (API.md: `202` always).
 */
export interface RequestResetResult {
  rateLimited: boolean
}

export type CreateUserResult =
  | { ok: true; user: UserWithPermissions }
  | AuthFailure<'invalid_request' | 'conflict' | 'weak_password'>
export type SetPasswordResult = { ok: true } | AuthFailure<'not_found' | 'weak_password'>

/** The request, and the session it came with when there is one. */
export interface SessionContext extends RequestContext {
  /** The validated session of the request (from `sessions.validate`), if any. */
  session?: Session | undefined
}

/** The request of a password change, and what becomes of its session. */
export interface ChangePasswordContext extends SessionContext {
  /**
   * `'rotate'`: `session` continues under a new token (a browser's cookie session: API.md);
   * `'keep'`: it continues under its token (a session an access token's `sid` and a refresh
   * family are bound to). Every other session of the user ends either way. @default 'rotate'
   */
  currentSession?: 'rotate' | 'keep'
}

/** Signing up, in and out, changing and resetting passwords. */
export interface AuthService {
  /** Users, groups and permissions; password hashes are not part of it (see `createCredentials`). */
  readonly accounts: Accounts
  readonly audit: AuditLog
  /**
   * The sign-in pipeline every way of signing in goes through: {@link AuthService.login},
   * {@link AuthService.verifyPassword}, the token grant, the admin panel, later factors.
   */
  readonly signIn: SignIn
  /** Reads only `email` and `password` from `body`; everything else is ignored. */
  signup(body: unknown, context?: SessionContext): Promise<SignupResult>
  /**
   * `signIn.password` over a request body: the limiter before any hashing, a dummy hash for
   * unknown e-mails (same answer), the length cap, a rehash of an old hash, and always a fresh
   * session (`amr: ['pwd']`, `aal: 1`). `context.session` (a session sent with the login) is
   * revoked, never reused.
   */
  login(body: unknown, context?: SessionContext): Promise<LoginResult>
  /**
   * Checks `{ email, password }` with every protection of {@link AuthService.login} but makes no
   * session: for an app that signs the user in itself, e.g. with an adapter's
   * `signIn(req, res, result.user.id, { auth: result.auth })`.
   */
  verifyPassword(body: unknown, context?: RequestContext): Promise<PasswordVerification>
  /** Deletes the session from the store (a copy of its cookie stops working). */
  logout(session: Session, context?: RequestContext): Promise<void>
  /**
   * Needs the current password; `context.session` continues under a new token (see
   * {@link ChangePasswordContext}) and every other session of the user ends.
   */
  changePassword(
    userId: string,
    body: unknown,
    context?: ChangePasswordContext,
  ): Promise<ChangePasswordResult>
  /**
   * Same answer (nothing) and nearly the same time whether the e-mail is known: the lookup,
   * the token and the mail happen after this resolves. See {@link AuthService.idle}.
   */
  requestPasswordReset(body: unknown, context?: ActionContext): Promise<RequestResetResult>
  /**
   * Sets the password a reset token is for. With an `actionLimiter`, attempts are limited per IP
   * (before the token is looked up) and per account (once the token names one): `rate_limited`
   * with `retryAfterSeconds`.
   */
  confirmPasswordReset(body: unknown, context?: RequestContext): Promise<ConfirmResetResult>
  /**
   * Revokes one of the user's sessions by public id; false when it is not theirs (or gone).
   * `context.actorId` names an administrator acting for the user in the audit log.
   */
  revokeSession(userId: string, sessionId: string, context?: ActionContext): Promise<boolean>
  /**
   * Revokes every session of the user except `context.session`; returns how many.
   * `context.actorId` names an administrator acting for the user in the audit log.
   */
  revokeOtherSessions(userId: string, context?: SessionContext & ActionContext): Promise<number>
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

const MAX_PENDING_BACKGROUND = 1000

/** The acting administrator for an audit detail, as `setPassword` and the accounts record it. */
function actorOf(context: ActionContext | undefined): { actorId?: string } {
  return context?.actorId === undefined ? {} : { actorId: context.actorId }
}

function signInContext(context: SessionContext | undefined): SessionContext {
  return { ip: context?.ip, userAgent: context?.userAgent, session: context?.session }
}

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
  const { sessions, mailer, limiter, actionLimiter } = options
  const passwords = options.passwords ?? createPasswordHasher()
  const policyOptions = options.passwordPolicy ?? {}
  const checkPolicy = (password: string): { ok: true } | { ok: false; message: string } =>
    password.length > MAX_PASSWORD_INPUT
      ? { ok: false, message: 'The password is too long.' }
      : checkPasswordPolicy(password, policyOptions)
  const audit = options.audit ?? createAuditLog(db, { now })
  const accounts = options.accounts ?? createAccounts(db, { sessions, audit, now })
  const credentials = options.credentials ?? createCredentials(db, { now })
  const signIn = createSignIn({
    accounts,
    credentials,
    passwords,
    sessions,
    audit,
    limiter,
    secondFactors: options.secondFactors,
    now,
  })
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
    const meta: SessionMeta = {}
    if (context?.ip !== undefined) meta.ip = context.ip
    if (context?.userAgent !== undefined) meta.userAgent = context.userAgent
    // The password the user just chose proves who they are, as at a password sign-in.
    const created = await sessions.create(userId, { meta, auth: { amr: ['pwd'] } })
    // SECURITY: a session presented with the login is never promoted (session fixation,
    // ASVS 3.2.1): the new one replaces it.
    if (context?.session !== undefined) await sessions.revoke(context.session)
    return created
  }

  async function sendResetMail(email: string, context: ActionContext | undefined): Promise<void> {
    const user = await accounts.findUserByEmail(email)
    if (user === null || !user.isActive) {
      await audit.record({
        type: 'password_reset_requested',
        outcome: 'failure',
        userId: user?.id ?? null,
        ip: context?.ip,
        userAgent: context?.userAgent,
        detail: {
          reason: user === null ? 'unknown_account' : 'inactive',
          email,
          ...actorOf(context),
        },
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
      ...(context?.actorId === undefined ? {} : { detail: actorOf(context) }),
    })
  }

  const service: AuthService = {
    accounts,
    audit,
    signIn,

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
      try {
        const issued = await startSession(userId, context)
        await accounts.recordLogin(userId)
        await audit.record({ type: 'signup', outcome: 'success', userId, ...ctx })
        const user = await accounts.getUserWithPermissions(userId)
        if (user === null) throw new TesseraError('not_found', 'the new account vanished')
        return { ok: true, user, ...issued }
      } catch (error) {
        // SECURITY: a signup that cannot finish (the session store is down or full) leaves no
        // half-made account: the client got no session and may try again with the same e-mail.
        await accounts.deleteUser(userId).catch(() => undefined)
        throw error
      }
    },

    async login(body: unknown, context?: SessionContext): Promise<LoginResult> {
      const email = readString(body, 'email')
      const password = readString(body, 'password')
      if (email === undefined || password === undefined) {
        return failure('invalid_request', 'email and password are required')
      }
      return signIn.password({ email, password }, signInContext(context))
    },

    async verifyPassword(body: unknown, context?: RequestContext): Promise<PasswordVerification> {
      const email = readString(body, 'email')
      const password = readString(body, 'password')
      if (email === undefined || password === undefined) {
        return failure('invalid_request', 'email and password are required')
      }
      return signIn.verifyPassword({ email, password }, signInContext(context))
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
      context?: ChangePasswordContext,
    ): Promise<ChangePasswordResult> {
      const currentPassword = readString(body, 'currentPassword')
      const newPassword = readString(body, 'newPassword')
      if (currentPassword === undefined || newPassword === undefined) {
        return failure('invalid_request', 'currentPassword and newPassword are required')
      }
      const ctx = { ip: context?.ip, userAgent: context?.userAgent }
      const checked = await signIn.verifyUserPassword(userId, currentPassword, {
        ...ctx,
        audit: { action: 'change_password' },
      })
      if (!checked.ok) {
        if (checked.code === 'invalid_credentials') {
          await audit.record({
            type: 'password_changed',
            outcome: 'failure',
            userId,
            ...ctx,
            detail: { reason: 'wrong_current_password' },
          })
        }
        return failure(
          checked.code === 'rate_limited' ? 'rate_limited' : 'invalid_credentials',
          checked.code === 'rate_limited' ? checked.message : 'current password is incorrect',
          checked.retryAfterSeconds,
        )
      }
      const policy = checkPolicy(newPassword)
      if (!policy.ok) return failure('weak_password', policy.message)
      await credentials.setPasswordHash(userId, await passwords.hash(newPassword))
      // SECURITY: the caller's session continues under a new token, so a copy of the old one
      // (perhaps why the password is being changed) is worthless (ASVS 3.2.1); `regenerate`
      // keeps its authTime, aal and amr.
      let kept: Session | undefined = context?.session
      let rotated: IssuedSession | null = null
      if (kept !== undefined && context?.currentSession !== 'keep') {
        rotated = await sessions.regenerate(kept)
        kept = rotated?.session
      }
      // SECURITY: a password change ends every other session (ASVS 3.3.3).
      const revoked = await sessions.revokeAll(
        userId,
        kept === undefined ? undefined : { except: kept },
      )
      await audit.record({
        type: 'password_changed',
        outcome: 'success',
        userId,
        ...ctx,
        detail: { sessionsRevoked: revoked, ...(rotated === null ? {} : { rotated: true }) },
      })
      return { ok: true, rotated }
    },

    async requestPasswordReset(
      body: unknown,
      context?: ActionContext,
    ): Promise<RequestResetResult> {
      const email = parseEmail(readString(body, 'email'))
      if (email === null) return { rateLimited: false }
      // SECURITY: mail flooding (API.md): at most so many reset mails per address and per IP,
      // counted in the shared store, so every process enforces one limit. Keyed on the
      // normalised address whether or not it has an account: the limit reveals nothing either.
      const check = await actionLimiter?.check('password_reset_request', {
        account: email,
        ip: context?.ip,
      })
      if (check !== undefined && !check.allowed) {
        background(() =>
          audit.record({
            type: 'rate_limited',
            outcome: 'denied',
            ip: context?.ip,
            userAgent: context?.userAgent,
            detail: {
              action: 'password_reset_request',
              scope: check.scope,
              retryAfterSeconds: check.retryAfter,
            },
          }),
        )
        return { rateLimited: true }
      }
      // SECURITY: the caller's answer and timing do not depend on whether the account exists
      // (user enumeration): everything account-specific runs after this returns.
      background(() => sendResetMail(email, context))
      return { rateLimited: false }
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
      const limited = async (
        check: { retryAfter: number; scope: 'account' | 'ip' },
        userId: string | null,
      ): Promise<ConfirmResetResult> => {
        await audit.record({
          type: 'rate_limited',
          outcome: 'denied',
          userId,
          ...ctx,
          detail: {
            action: 'password_reset_confirm',
            scope: check.scope,
            retryAfterSeconds: check.retryAfter,
          },
        })
        return failure('rate_limited', 'too many attempts; try again later', check.retryAfter)
      }
      // SECURITY: token guessing (API.md): attempts per IP are counted before the token is
      // looked up, so a guesser is stopped whatever it sends.
      const byIp = await actionLimiter?.check('password_reset_confirm', { ip: context?.ip })
      if (byIp !== undefined && !byIp.allowed) return limited(byIp, null)
      // Checked first, without consuming, so a bad token costs no hash.
      const owner = await peekResetToken(db, token, now())
      if (owner === null) return invalid()
      const byAccount = await actionLimiter?.check('password_reset_confirm', { account: owner })
      if (byAccount !== undefined && !byAccount.allowed) return limited(byAccount, owner)
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
      context?: ActionContext,
    ): Promise<boolean> {
      if (!(await sessions.revokeById(userId, sessionId))) return false
      await audit.record({
        type: 'session_revoked',
        outcome: 'success',
        userId,
        ip: context?.ip,
        userAgent: context?.userAgent,
        detail: { count: 1, ...actorOf(context) },
      })
      return true
    },

    async revokeOtherSessions(
      userId: string,
      context?: SessionContext & ActionContext,
    ): Promise<number> {
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
        detail: { count, ...actorOf(context) },
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
      const changed = await credentials.setPasswordHash(userId, await passwords.hash(newPassword))
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
