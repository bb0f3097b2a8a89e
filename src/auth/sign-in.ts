import { TesseraError } from '../core/errors.js'
import {
  AUTH_METHODS,
  type AuthMethod,
  type IssuedSession,
  type Session,
  type SessionManager,
} from '../core/session-manager.js'
import type { JSONValue, SessionMeta } from '../core/session-store.js'
import type { Accounts } from './accounts.js'
import type { AuditDetailValue, AuditLog, RequestContext } from './audit.js'
import type { Credentials } from './credentials.js'
import { parseEmail } from './email.js'
import type { PasswordHasher } from './passwords.js'
import { userHasPermission, type UserWithPermissions } from './permissions.js'
import type { LoginLimiter, LoginTicket } from './rate-limit.js'
import { failure, INVALID_CREDENTIALS, type AuthFailure } from './results.js'

/** A second factor an account can have (API.md "Second factors and step-up"). */
export type SecondFactorMethod = 'totp' | 'recovery_code' | 'passkey'

/** What a credential proved: recorded on the session as `authTime`, `aal` and `amr`. */
export interface AuthProof {
  /** When it was proved, epoch ms. */
  time: number
  /** 1 for one factor; 2 for two, or a passkey with user verification. */
  aal: 1 | 2
  /** RFC 8176 methods: a password sign-in proves `['pwd']`. */
  amr: readonly AuthMethod[]
}

/** The e-mail and password of a password sign-in. */
export interface PasswordInput {
  email: string
  password: string
}

/**
 * One sign-in attempt: where it came from, and what the caller (the API, the admin panel, an
 * embedding app) wants different from the defaults.
 */
export interface SignInOptions extends RequestContext {
  /**
   * The session the request already carried, from the same session manager as `sessions`: it
   * is ended when the new one is issued, never promoted (session fixation).
   */
  session?: Session | undefined
  /**
   * The session manager the new session is issued (and `session` ended) through; the admin
   * panel passes its own, shorter-lived one. @default the pipeline's `sessions`
   */
  sessions?: SessionManager | undefined
  /**
   * Once the first factor is right, refuse an account without this permission (an active
   * administrator has every permission, Django's rule): `forbidden`, audited as `denied` with
   * `reason`. The admin panel passes `{ permission: 'admin.access', reason: 'not_admin' }`.
   */
  require?: { permission: string; reason: string } | undefined
  /** What the audit events of this attempt say beyond the defaults. */
  audit?:
    | {
        /** `action` of a `rate_limited` event. @default 'login' */
        action?: string
        /** Added to every event of the attempt, e.g. `{ panel: 'admin' }`. */
        detail?: Readonly<Record<string, AuditDetailValue>>
      }
    | undefined
  /** Data of the new session. @default {} */
  data?: Record<string, JSONValue> | undefined
  /**
   * Overrides the pipeline's `emailVerification` for this attempt: the admin panel passes
   * `'optional'` (its own rule is the `admin.access` right). @default the pipeline's
   */
  emailVerification?: 'optional' | 'required' | undefined
}

/** A user signed in: the new session, its token and the `Set-Cookie` value for it. */
export interface SignInSuccess extends IssuedSession {
  ok: true
  user: UserWithPermissions
}

/**
 * What the first factor of a sign-in that needs a second one leaves behind: JSON, to be stored
 * server-side by the second-factor step (the 5-minute, single-use challenge of API.md) and
 * handed back to {@link SignIn.complete}. Treat it as opaque and never send it to a client.
 */
export interface SignInContinuation {
  readonly userId: string
  readonly firstFactor: AuthProof
  /** The limiter's attempt, declared successful only when the whole sign-in succeeds. */
  readonly ticket: { readonly accountKey?: string; readonly ipKey?: string } | null
}

/**
 * The first factor was right and the account has a second factor: no session was issued.
 * `ok` is false so that code that does not know about second factors signs nobody in.
 */
export interface SecondFactorRequired {
  ok: false
  code: 'second_factor_required'
  message: string
  /** The account's second factors (the challenge answer's `methods`). */
  methods: readonly SecondFactorMethod[]
  continuation: SignInContinuation
}

/** Why a sign-in was refused. `rate_limited` carries `retryAfterSeconds` (the limiter refused). */
export type SignInRefusal = AuthFailure<
  'invalid_request' | 'invalid_credentials' | 'rate_limited' | 'forbidden' | 'email_unverified'
>

/** The outcome of a sign-in: a session, a second factor to ask for, or a refusal. */
export type SignInResult = SignInSuccess | SecondFactorRequired | SignInRefusal

/** The credentials are right; no session was made (see {@link SignIn.verifyPassword}). */
export interface PasswordVerified {
  ok: true
  user: UserWithPermissions
  /** What to record on the session the caller makes: `{ time, aal: 1, amr: ['pwd'] }`. */
  auth: AuthProof
}

/** The outcome of {@link SignIn.verifyPassword}. */
export type PasswordVerification = PasswordVerified | SecondFactorRequired | SignInRefusal

/** What {@link createSignIn} is built on. */
export interface SignInDeps {
  accounts: Pick<Accounts, 'getUserWithPermissions' | 'recordLogin'>
  credentials: Pick<
    Credentials,
    'findCredentialsByEmail' | 'getPasswordHash' | 'upgradePasswordHash'
  >
  passwords: PasswordHasher
  /** Where sessions are issued unless an attempt names another manager. */
  sessions: SessionManager
  audit: AuditLog
  /**
   * Login throttling, checked before any hash is computed. Without it nothing is throttled:
   * use that only behind another limiter.
   */
  limiter?: LoginLimiter | undefined
  /**
   * The second factors an account has; a sign-in whose first factor is right stops with
   * {@link SecondFactorRequired} when it names any. The MFA step (TOTP, recovery codes,
   * passkeys) provides it. @default none: no account has a second factor
   */
  secondFactors?:
    ((user: UserWithPermissions) => Promise<readonly SecondFactorMethod[]>) | undefined
  /**
   * `required`: once the first factor is right, an account whose address is not verified is
   * refused with `email_unverified` (API.md `TESSERA_EMAIL_VERIFICATION`). @default 'optional'
   */
  emailVerification?: 'optional' | 'required' | undefined
  /** @default Date.now */
  now?: () => number
}

/**
 * The one sign-in pipeline: first factor, then a second factor when the account has one, then
 * the session. Every way in (the API's login and token grant, the admin panel, an embedding app,
 * later passkeys, identity providers and e-mailed codes) goes through it.
 */
export interface SignIn {
  /**
   * The whole password sign-in: the limiter before any hash, one credentials query whether or
   * not the e-mail is known, a dummy verification for unknown e-mails, the input length cap,
   * one answer (`invalid_credentials`) for unknown e-mail, wrong password and disabled account,
   * a rehash of an outdated hash, the audit log; then the second-factor check and a new session
   * recording `amr: ['pwd']`, `aal: 1`.
   * @throws TesseraError `store_unavailable` when the limiter, database or session store fails
   */
  password(input: PasswordInput, options?: SignInOptions): Promise<SignInResult>
  /**
   * The same first factor with the same protections, but no session: for an application that
   * makes its own (an adapter's `signIn(..., { auth: result.auth })`). The success is audited
   * and recorded as a login.
   */
  verifyPassword(input: PasswordInput, options?: SignInOptions): Promise<PasswordVerification>
  /**
   * The password of a user already known by id (the current password of a password change, a
   * re-authentication): the same limiter (same account key as a sign-in), the cap and one
   * verification, a rehash. No session and no `login` event: a wrong password is audited by
   * the caller, which knows what it was for; `options.audit.action` names it in a
   * `rate_limited` event. A disabled or unknown user gets `invalid_credentials`.
   */
  verifyUserPassword(
    userId: string,
    password: string,
    options?: SignInOptions,
  ): Promise<PasswordVerified | SignInRefusal>
  /**
   * Where every other first factor (a passkey, an identity provider, an e-mailed code) joins:
   * the account must be active and pass `require`; then a second factor is asked for when the
   * account has one (unless `proof.aal` is already 2), else the session is issued.
   */
  afterFirstFactor(
    userId: string,
    proof: { amr: readonly AuthMethod[]; aal?: 1 | 2; time?: number },
    options?: SignInOptions,
  ): Promise<SignInResult>
  /**
   * After the second factor was verified: the session for a continuation, at `aal: 2`, with the
   * methods of both factors and `mfa`. The account is checked again (active, `require`).
   */
  complete(
    continuation: SignInContinuation,
    secondFactor: { amr: readonly AuthMethod[] },
    options?: SignInOptions,
  ): Promise<SignInSuccess | SignInRefusal>
}

// A password this long is refused before any hashing (a cheap request must not buy an
// expensive hash); the policy's own maximum for new passwords is smaller.
export const MAX_PASSWORD_INPUT = 4096

const SECOND_FACTOR_MESSAGE = 'a second factor is required'
const FORBIDDEN_MESSAGE = 'this account may not sign in here'
const UNVERIFIED_MESSAGE =
  'confirm your e-mail address first: open the link we sent you, or ask for a new one with POST /auth/email/verification'

/** A credential proved in this attempt, and the limiter's attempt to settle when it ends. */
interface Proved {
  user: UserWithPermissions
  proof: AuthProof
  ticket: LoginTicket | undefined
}

function metaOf(options: SignInOptions): SessionMeta {
  const meta: SessionMeta = {}
  if (options.ip !== undefined) meta.ip = options.ip
  if (options.userAgent !== undefined) meta.userAgent = options.userAgent
  return meta
}

function isMethodList(value: unknown): value is readonly AuthMethod[] {
  return (
    Array.isArray(value) && value.every((method) => AUTH_METHODS.includes(method as AuthMethod))
  )
}

function uniqueMethods(methods: readonly AuthMethod[]): AuthMethod[] {
  return [...new Set(methods)]
}

/**
 * Builds the sign-in pipeline. `createAuthService` builds one over its own parts and exposes it
 * as `auth.signIn`.
 *
 * @example
 * ```ts
 * const result = await auth.signIn.password({ email, password }, { ip, userAgent, session })
 * if (result.ok) response.headers.append('Set-Cookie', result.setCookie)
 * else if (result.code === 'second_factor_required') askForSecondFactor(result.methods)
 * else reply(result.code === 'rate_limited' ? 429 : 401, result)
 * ```
 */
export function createSignIn(deps: SignInDeps): SignIn {
  const { accounts, credentials, passwords, audit, limiter } = deps
  const now = deps.now ?? Date.now

  function detail(
    options: SignInOptions,
    extra: Record<string, AuditDetailValue>,
  ): Record<string, AuditDetailValue> {
    return { ...(options.audit?.detail ?? {}), ...extra }
  }

  async function refuse(
    options: SignInOptions,
    ticket: LoginTicket | undefined,
    userId: string | null,
    reason: Record<string, AuditDetailValue>,
  ): Promise<SignInRefusal> {
    if (ticket !== undefined) await limiter?.failed(ticket)
    await audit.record({
      type: 'login',
      outcome: 'failure',
      userId,
      ip: options.ip,
      userAgent: options.userAgent,
      detail: detail(options, reason),
    })
    // SECURITY: one answer for unknown e-mail, wrong password and disabled account (ASVS 2.2.x).
    return failure('invalid_credentials', INVALID_CREDENTIALS)
  }

  /**
   * SECURITY: the limiter counts the attempt and decides before any hash is computed; a locked
   * account is refused even with the right password (ASVS 2.2.1).
   */
  async function admit(
    account: string,
    userId: string | null,
    options: SignInOptions,
  ): Promise<{ ticket: LoginTicket | undefined } | SignInRefusal> {
    if (limiter === undefined) return { ticket: undefined }
    const check = await limiter.check({
      account,
      ...(options.ip === undefined ? {} : { ip: options.ip }),
    })
    if (check.allowed) return { ticket: check.ticket }
    await audit.record({
      type: 'rate_limited',
      outcome: 'denied',
      userId,
      ip: options.ip,
      userAgent: options.userAgent,
      detail: detail(options, {
        action: options.audit?.action ?? 'login',
        scope: check.scope,
        retryAfterSeconds: check.retryAfter,
      }),
    })
    return failure('rate_limited', 'too many attempts; try again later', check.retryAfter)
  }

  /** The password first factor: everything up to "the password is right", nothing after. */
  async function checkPassword(
    input: PasswordInput,
    options: SignInOptions,
  ): Promise<Proved | SignInRefusal> {
    // Typed for TypeScript callers; checked for JavaScript ones.
    const given = input as Partial<PasswordInput> | null | undefined
    const rawEmail: unknown = given?.email
    const password: unknown = given?.password
    if (typeof rawEmail !== 'string' || typeof password !== 'string') {
      return failure('invalid_request', 'email and password are required')
    }
    const email = parseEmail(rawEmail)

    const admitted = await admit(email ?? rawEmail.slice(0, 320), null, options)
    if ('ok' in admitted) return admitted
    const { ticket } = admitted

    // SECURITY: an over-long password buys no hash (CPU exhaustion); the answer is the one for a
    // wrong password, given before any lookup, so it says nothing about the account.
    if (password.length > MAX_PASSWORD_INPUT) {
      return refuse(options, ticket, null, { reason: 'password_too_long' })
    }

    // SECURITY: one query whether or not the e-mail is known, then exactly one verification:
    // against the stored hash, or a dummy one for an unknown account, so neither the query
    // count nor the time tells which e-mails have accounts (OWASP authentication cheat sheet).
    const found = email === null ? null : await credentials.findCredentialsByEmail(email)
    const hash = found?.passwordHash ?? null
    if (found === null || hash === null) {
      await passwords.dummyVerify(password)
      return refuse(options, ticket, found?.user.id ?? null, {
        reason: found === null ? 'unknown_account' : 'wrong_password',
        ...(found === null && email !== null ? { email } : {}),
      })
    }
    if (!(await passwords.verify(password, hash))) {
      return refuse(options, ticket, found.user.id, { reason: 'wrong_password' })
    }
    if (!found.user.isActive) return refuse(options, ticket, found.user.id, { reason: 'inactive' })

    if (passwords.needsRehash(hash)) {
      await credentials.upgradePasswordHash(found.user.id, hash, await passwords.hash(password))
    }
    const user = await accounts.getUserWithPermissions(found.user.id)
    // Deleted or disabled between the two reads: the same answer as for any unknown account.
    if (user === null || !user.isActive) {
      return refuse(options, ticket, found.user.id, { reason: 'inactive' })
    }
    return { user, proof: { time: now(), aal: 1, amr: ['pwd'] }, ticket }
  }

  /**
   * After a first factor: `require`, then the second-factor question. `undefined` means go on
   * to the session.
   */
  async function gate(
    proved: Proved,
    options: SignInOptions,
  ): Promise<SecondFactorRequired | SignInRefusal | undefined> {
    const refused = await authorize(proved, options)
    if (refused !== undefined) return refused
    if (proved.proof.aal === 2 || deps.secondFactors === undefined) return undefined
    const methods = await deps.secondFactors(proved.user)
    if (methods.length === 0) return undefined
    // SECURITY: the limiter's attempt stays counted until the second factor is right too, so a
    // known password cannot reset the backoff between guesses at the second factor.
    const ticket = proved.ticket
    return {
      ok: false,
      code: 'second_factor_required',
      message: SECOND_FACTOR_MESSAGE,
      methods: [...methods],
      continuation: {
        userId: proved.user.id,
        firstFactor: { ...proved.proof, amr: [...proved.proof.amr] },
        ticket:
          ticket === undefined
            ? null
            : {
                ...(ticket.accountKey === undefined ? {} : { accountKey: ticket.accountKey }),
                ...(ticket.ipKey === undefined ? {} : { ipKey: ticket.ipKey }),
              },
      },
    }
  }

  async function authorize(
    proved: Proved,
    options: SignInOptions,
  ): Promise<SignInRefusal | undefined> {
    const verification = options.emailVerification ?? deps.emailVerification ?? 'optional'
    // SECURITY: asked only once the first factor is right, so the answer says nothing about an
    // account to someone who does not know its credential.
    if (verification === 'required' && proved.user.emailVerifiedAt === null) {
      if (proved.ticket !== undefined) await limiter?.succeeded(proved.ticket)
      await audit.record({
        type: 'login',
        outcome: 'denied',
        userId: proved.user.id,
        ip: options.ip,
        userAgent: options.userAgent,
        detail: detail(options, { reason: 'email_unverified' }),
      })
      return failure('email_unverified', UNVERIFIED_MESSAGE)
    }
    const required = options.require
    if (required === undefined || userHasPermission(proved.user, required.permission)) {
      return undefined
    }
    // The credential was right: the account's failures are forgotten as on any right password.
    if (proved.ticket !== undefined) await limiter?.succeeded(proved.ticket)
    await audit.record({
      type: 'login',
      outcome: 'denied',
      userId: proved.user.id,
      ip: options.ip,
      userAgent: options.userAgent,
      detail: detail(options, { reason: required.reason }),
    })
    return failure('forbidden', FORBIDDEN_MESSAGE)
  }

  /** A successful sign-in, with or without a session of ours: limiter, last login, audit. */
  async function succeeded(
    proved: Proved,
    options: SignInOptions,
    extra: Record<string, AuditDetailValue>,
  ): Promise<void> {
    if (proved.ticket !== undefined) await limiter?.succeeded(proved.ticket)
    await accounts.recordLogin(proved.user.id)
    await audit.record({
      type: 'login',
      outcome: 'success',
      userId: proved.user.id,
      ip: options.ip,
      userAgent: options.userAgent,
      detail: detail(options, { amr: proved.proof.amr.join(' '), ...extra }),
    })
  }

  /** The one session-issuing step of every sign-in. */
  async function issue(proved: Proved, options: SignInOptions): Promise<SignInSuccess> {
    const manager = options.sessions ?? deps.sessions
    const issued = await manager.create(proved.user.id, {
      meta: metaOf(options),
      auth: proved.proof,
      ...(options.data === undefined ? {} : { data: options.data }),
    })
    // SECURITY: a session presented with the sign-in is never promoted (session fixation,
    // ASVS 3.2.1): the new one replaces it.
    if (options.session !== undefined) await manager.revoke(options.session)
    await succeeded(proved, options, {})
    return { ok: true, user: proved.user, ...issued }
  }

  /** Reads the account a first factor named; inactive and unknown accounts are refused alike. */
  async function activeUser(
    userId: string,
    options: SignInOptions,
  ): Promise<UserWithPermissions | SignInRefusal> {
    const user = await accounts.getUserWithPermissions(userId)
    if (user !== null && user.isActive) return user
    return refuse(options, undefined, user === null ? null : userId, {
      reason: user === null ? 'unknown_account' : 'inactive',
    })
  }

  return {
    async password(input, options = {}): Promise<SignInResult> {
      const proved = await checkPassword(input, options)
      if (!('user' in proved)) return proved
      return (await gate(proved, options)) ?? issue(proved, options)
    },

    async verifyPassword(input, options = {}): Promise<PasswordVerification> {
      const proved = await checkPassword(input, options)
      if (!('user' in proved)) return proved
      const stopped = await gate(proved, options)
      if (stopped !== undefined) return stopped
      await succeeded(proved, options, { session: 'external' })
      return { ok: true, user: proved.user, auth: proved.proof }
    },

    async verifyUserPassword(
      userId,
      password,
      options = {},
    ): Promise<PasswordVerified | SignInRefusal> {
      const user = await accounts.getUserWithPermissions(userId)
      if (user === null || !user.isActive || typeof password !== 'string') {
        return failure('invalid_credentials', INVALID_CREDENTIALS)
      }
      // The same account key as a sign-in: a guess at the current password is a guess.
      const admitted = await admit(user.email, user.id, options)
      if ('ok' in admitted) return admitted
      const hash = await credentials.getPasswordHash(user.id)
      // SECURITY: an over-long guess buys no hash, as at sign-in.
      const verified =
        hash !== null &&
        password.length <= MAX_PASSWORD_INPUT &&
        (await passwords.verify(password, hash))
      if (!verified || hash === null) {
        if (admitted.ticket !== undefined) await limiter?.failed(admitted.ticket)
        return failure('invalid_credentials', INVALID_CREDENTIALS)
      }
      if (passwords.needsRehash(hash)) {
        await credentials.upgradePasswordHash(user.id, hash, await passwords.hash(password))
      }
      if (admitted.ticket !== undefined) await limiter?.succeeded(admitted.ticket)
      return { ok: true, user, auth: { time: now(), aal: 1, amr: ['pwd'] } }
    },

    async afterFirstFactor(userId, proof, options = {}): Promise<SignInResult> {
      const user = await activeUser(userId, options)
      if (!('id' in user)) return user
      const proved: Proved = {
        user,
        proof: { time: proof.time ?? now(), aal: proof.aal ?? 1, amr: uniqueMethods(proof.amr) },
        ticket: undefined,
      }
      return (await gate(proved, options)) ?? issue(proved, options)
    },

    async complete(
      continuation,
      secondFactor,
      options = {},
    ): Promise<SignInSuccess | SignInRefusal> {
      if (
        typeof continuation?.userId !== 'string' ||
        !isMethodList(continuation.firstFactor?.amr) ||
        !isMethodList(secondFactor?.amr) ||
        secondFactor.amr.length === 0
      ) {
        throw new TesseraError(
          'invalid_argument',
          'complete: pass the continuation of a second_factor_required result and the methods of the second factor',
        )
      }
      const user = await activeUser(continuation.userId, options)
      if (!('id' in user)) return user
      const proved: Proved = {
        user,
        proof: {
          time: now(),
          aal: 2,
          amr: uniqueMethods([...continuation.firstFactor.amr, ...secondFactor.amr, 'mfa']),
        },
        ticket:
          continuation.ticket === null
            ? undefined
            : {
                accountKey: continuation.ticket.accountKey,
                ipKey: continuation.ticket.ipKey,
              },
      }
      return (await authorize(proved, options)) ?? issue(proved, options)
    },
  }
}
