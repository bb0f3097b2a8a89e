import { createHash, randomBytes } from 'node:crypto'
import type { Accounts } from './accounts.js'
import type { AuditLog, RequestContext } from './audit.js'
import type { TesseraDB } from './db/database.js'
import { toMillis } from './db/schema.js'
import type { LoginLimiter } from './rate-limit.js'
import { failure, type AuthFailure } from './results.js'
import type { SecondFactorProof, SecondFactorRegistry } from './second-factor-methods.js'
import type {
  SecondFactorMethod,
  SecondFactorRequired,
  SignIn,
  SignInContinuation,
  SignInOptions,
  SignInSuccess,
} from './sign-in.js'

/*
 * The second step of a sign-in (API.md "Second factors and step-up"): a right first factor of an
 * account with a second factor leaves a continuation; it is stored here behind an opaque,
 * single-use challenge that lives 5 minutes, and a right second factor turns it into the session
 * through the pipeline's `complete`.
 */

/** Seconds a challenge lives. */
export const CHALLENGE_TTL_SECONDS = 300
/** Wrong codes one challenge takes before it dies (the account's backoff counts them too). */
export const CHALLENGE_MAX_ATTEMPTS = 5
// A claim older than this is from a request that died mid-verification; it may be taken again.
const STALE_CLAIM_MS = 30_000
const CHALLENGE_SHAPE = /^[A-Za-z0-9_-]{43}$/
const INVALID_CHALLENGE = 'the sign-in challenge is unknown, used or expired; sign in again'
const WRONG_CODE = 'the code is not correct'

/**
 * What the first step would have given: `login` (a session cookie), `token` (a token pair),
 * `admin` (the admin panel's session). A challenge verifies only where its purpose is accepted.
 */
export type ChallengePurpose = 'login' | 'token' | 'admin'

/** The answer of a first step that needs a second factor (API.md's `200 {mfaRequired, ...}`). */
export interface IssuedChallenge {
  challenge: string
  methods: readonly SecondFactorMethod[]
  /** Epoch ms. */
  expiresAt: number
}

/** What `POST /auth/mfa/verify` sends. */
export interface SecondStepInput extends SecondFactorProof {
  challenge: unknown
  method: unknown
}

/** Options of {@link SecondStep.verify}: the pipeline's, plus where the challenge may be used. */
export interface SecondStepOptions extends SignInOptions {
  /** The purposes accepted here. @default ['login', 'token'] */
  purposes?: readonly ChallengePurpose[]
}

/** A right second factor: the pipeline's session, and what the first step was for. */
export interface SecondStepSuccess {
  ok: true
  purpose: ChallengePurpose
  result: SignInSuccess
}

export type SecondStepResult =
  | SecondStepSuccess
  | AuthFailure<
      'invalid_request' | 'invalid_token' | 'invalid_credentials' | 'rate_limited' | 'forbidden'
    >

/** What {@link createSecondStep} is built on. */
export interface SecondStepDeps {
  db: TesseraDB
  signIn: SignIn
  registry: SecondFactorRegistry
  accounts: Pick<Accounts, 'findUserById'>
  audit: AuditLog
  /** The login limiter: every code is an attempt against the account. */
  limiter?: LoginLimiter | undefined
  /** @default Date.now */
  now?: () => number
}

/** The second step of every sign-in. */
export interface SecondStep {
  /** Stores the continuation behind a new challenge. */
  begin(required: SecondFactorRequired, purpose: ChallengePurpose): Promise<IssuedChallenge>
  /** The user of a live challenge, without using it (passkey options), or `null`. */
  peek(
    challenge: unknown,
    purposes?: readonly ChallengePurpose[],
  ): Promise<{ userId: string; purpose: ChallengePurpose } | null>
  /**
   * Checks the second factor against the challenge's user and completes the sign-in.
   * `invalid_token` for an unknown, used, expired or foreign-purpose challenge;
   * `invalid_credentials` for a wrong code (counted by the limiter; the challenge stays usable
   * for {@link CHALLENGE_MAX_ATTEMPTS} wrong codes); `rate_limited` when the account is locked.
   * @throws TesseraError `store_unavailable`
   */
  verify(input: SecondStepInput, options?: SecondStepOptions): Promise<SecondStepResult>
  /** Deletes expired challenges; returns how many. */
  prune(): Promise<number>
}

function hashChallenge(challenge: string): string {
  return createHash('sha256').update(challenge, 'utf8').digest('base64url')
}

function parseContinuation(text: string): SignInContinuation | null {
  try {
    const value = JSON.parse(text) as SignInContinuation
    return typeof value === 'object' && value !== null ? value : null
  } catch {
    return null
  }
}

function context(options: RequestContext): RequestContext {
  return { ip: options.ip, userAgent: options.userAgent }
}

/**
 * Builds the second step over the accounts database, the pipeline and the method registry.
 * @example
 * ```ts
 * const result = await auth.signIn.password({ email, password })
 * if (!result.ok && result.code === 'second_factor_required') {
 *   return json(200, { mfaRequired: true, ...(await secondStep.begin(result, 'login')) })
 * }
 * // later, POST /auth/mfa/verify:
 * const verified = await secondStep.verify({ challenge, method: 'totp', code }, { ip })
 * ```
 */
export function createSecondStep(deps: SecondStepDeps): SecondStep {
  const { db, signIn, registry, audit, limiter } = deps
  const now = deps.now ?? Date.now

  async function release(idHash: string, claimedAt: number, wrong: boolean): Promise<void> {
    await db
      .updateTable('mfa_challenges')
      .set((eb) => ({
        claimed_at: null,
        attempts: wrong ? eb('attempts', '+', 1) : eb.ref('attempts'),
      }))
      .where('id_hash', '=', idHash)
      .where('claimed_at', '=', claimedAt)
      .execute()
  }

  return {
    async begin(required, purpose): Promise<IssuedChallenge> {
      // SECURITY: 256 random bits, stored only as SHA-256; bound to the user and to this first
      // step (its continuation), single use, 5 minutes (API.md).
      const challenge = randomBytes(32).toString('base64url')
      const at = now()
      const expiresAt = at + CHALLENGE_TTL_SECONDS * 1000
      await db
        .insertInto('mfa_challenges')
        .values({
          id_hash: hashChallenge(challenge),
          user_id: required.continuation.userId,
          purpose,
          continuation: JSON.stringify(required.continuation),
          created_at: at,
          expires_at: expiresAt,
          attempts: 0,
          claimed_at: null,
          used_at: null,
        })
        .execute()
      return { challenge, methods: required.methods, expiresAt }
    },

    async peek(challenge, purposes = ['login', 'token']) {
      if (typeof challenge !== 'string' || !CHALLENGE_SHAPE.test(challenge)) return null
      const row = await db
        .selectFrom('mfa_challenges')
        .select(['user_id', 'purpose'])
        .where('id_hash', '=', hashChallenge(challenge))
        .where('used_at', 'is', null)
        .where('expires_at', '>', now())
        .where('attempts', '<', CHALLENGE_MAX_ATTEMPTS)
        .executeTakeFirst()
      if (row === undefined || !purposes.includes(row.purpose as ChallengePurpose)) return null
      return { userId: row.user_id, purpose: row.purpose as ChallengePurpose }
    },

    async verify(input, options = {}): Promise<SecondStepResult> {
      const purposes = options.purposes ?? ['login', 'token']
      const { challenge, method } = input
      if (typeof method !== 'string' || registry.find(method) === undefined) {
        return failure('invalid_request', "method must be one of the challenge's methods")
      }
      if (typeof challenge !== 'string' || !CHALLENGE_SHAPE.test(challenge)) {
        return failure('invalid_token', INVALID_CHALLENGE)
      }
      const idHash = hashChallenge(challenge)
      const at = now()
      // SECURITY: one request at a time verifies with a challenge (compare-and-set on
      // claimed_at), so parallel guesses cannot exceed its attempts, and it is used once.
      const claimed = await db
        .updateTable('mfa_challenges')
        .set({ claimed_at: at })
        .where('id_hash', '=', idHash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', at)
        .where('attempts', '<', CHALLENGE_MAX_ATTEMPTS)
        .where((eb) =>
          eb.or([eb('claimed_at', 'is', null), eb('claimed_at', '<', at - STALE_CLAIM_MS)]),
        )
        .executeTakeFirst()
      if (Number(claimed.numUpdatedRows) !== 1) return failure('invalid_token', INVALID_CHALLENGE)
      const row = await db
        .selectFrom('mfa_challenges')
        .select(['user_id', 'purpose', 'continuation', 'expires_at'])
        .where('id_hash', '=', idHash)
        .executeTakeFirst()
      const continuation = row === undefined ? null : parseContinuation(row.continuation)
      if (
        row === undefined ||
        continuation === null ||
        continuation.userId !== row.user_id ||
        !purposes.includes(row.purpose as ChallengePurpose) ||
        toMillis(row.expires_at) <= at
      ) {
        await release(idHash, at, false)
        return failure('invalid_token', INVALID_CHALLENGE)
      }
      const userId = row.user_id
      const user = await deps.accounts.findUserById(userId)
      if (user === null || !user.isActive) {
        await release(idHash, at, true)
        return failure('invalid_credentials', WRONG_CODE)
      }

      // SECURITY: every code is an attempt against the account's login backoff (API.md), so a
      // known password does not buy unlimited guesses at the second factor (ASVS 2.2.1).
      let ticket
      if (limiter !== undefined) {
        const check = await limiter.check({
          account: user.email,
          ...(options.ip === undefined ? {} : { ip: options.ip }),
        })
        if (!check.allowed) {
          await release(idHash, at, false)
          await audit.record({
            type: 'rate_limited',
            outcome: 'denied',
            userId,
            ...context(options),
            detail: {
              action: 'mfa_verify',
              scope: check.scope,
              retryAfterSeconds: check.retryAfter,
            },
          })
          return failure('rate_limited', 'too many attempts; try again later', check.retryAfter)
        }
        ticket = check.ticket
      }

      const proof: SecondFactorProof = { code: input.code, response: input.response }
      const verified = await registry.verify(userId, method, proof, {
        ...context(options),
        challenge,
      })
      if (verified === null) {
        if (ticket !== undefined) await limiter?.failed(ticket)
        await release(idHash, at, true)
        await audit.record({
          type: 'mfa_failed',
          outcome: 'failure',
          userId,
          ...context(options),
          detail: { method, stage: 'sign_in' },
        })
        return failure('invalid_credentials', WRONG_CODE)
      }
      if (ticket !== undefined) await limiter?.succeeded(ticket)
      const used = await db
        .updateTable('mfa_challenges')
        .set({ used_at: now(), claimed_at: null })
        .where('id_hash', '=', idHash)
        .where('claimed_at', '=', at)
        .where('used_at', 'is', null)
        .executeTakeFirst()
      if (Number(used.numUpdatedRows) !== 1) return failure('invalid_token', INVALID_CHALLENGE)
      const result = await signIn.complete(continuation, { amr: verified.amr }, options)
      if (!result.ok) return result
      return { ok: true, purpose: row.purpose as ChallengePurpose, result }
    },

    async prune(): Promise<number> {
      const result = await db
        .deleteFrom('mfa_challenges')
        .where('expires_at', '<=', now())
        .executeTakeFirst()
      return Number(result.numDeletedRows)
    },
  }
}
