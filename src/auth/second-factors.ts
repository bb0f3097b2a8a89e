import { createHash, randomBytes } from 'node:crypto'
import { TesseraError } from '../core/errors.js'
import type { Keyring } from '../core/keyring.js'
import { sealValue, unsealValue } from '../core/sealing.js'
import type { AuditDetailValue, AuditLog } from './audit.js'
import type { TesseraDB } from './db/database.js'
import { toMillis, toMillisOrNull } from './db/schema.js'
import { failure, type AuthFailure } from './results.js'
import type { SecondFactorVerifier } from './second-factor-methods.js'
import type { ActionContext } from './users.js'
import { generateTOTPSecret, totpQRCodeSVG, totpURI, verifyTOTPCode, TOTP_WINDOW } from './totp.js'

/** The keyring purpose TOTP secrets are sealed with; a key of its own (no other value opens). */
export const TOTP_SEAL_PURPOSE = 'mfa-totp'
/** Codes in a recovery set. */
export const RECOVERY_CODE_COUNT = 10

// Crockford base32 without I, L, O, U: 16 characters are 80 bits, shown as xxxx-xxxx-xxxx-xxxx.
const RECOVERY_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'
const RECOVERY_INPUT = /^[0-9a-z]{16}$/
const MAX_CODE_INPUT = 64

/** Options of {@link createSecondFactors}. */
export interface SecondFactorsOptions {
  /** Seals TOTP secrets (purpose {@link TOTP_SEAL_PURPOSE}). */
  keyring: Keyring
  audit: AuditLog
  /** The issuer shown in authenticator apps, e.g. the public host. @default 'tessera' */
  issuer?: string
  /** Steps of drift accepted either way. @default 1 */
  window?: number
  /** @default Date.now */
  now?: () => number
}

/** What a user sees of their factors (`GET /auth/mfa`). */
export interface MFAStatus {
  totp: { enabled: boolean; createdAt: number } | null
  recoveryCodes: { remaining: number }
}

/** A TOTP enrolment waiting for a code: shown once, stored only sealed. */
export interface TOTPEnrolment {
  secret: string
  uri: string
  /** The URI as an inline SVG QR code. */
  qrSvg: string
}

/** The context of a change: the request, and the administrator when one acts for the user. */
export type FactorContext = ActionContext

/** TOTP authenticators and recovery codes over the accounts database. */
export interface SecondFactors {
  status(userId: string): Promise<MFAStatus>
  /** True when the user has an active (confirmed) authenticator. */
  hasTOTP(userId: string): Promise<boolean>
  /** Which of `userIds` have an active authenticator (one query; the admin panel's user list). */
  usersWithTOTP(userIds: readonly string[]): Promise<Set<string>>
  /**
   * Starts (or restarts) an enrolment: a new secret, pending until {@link confirmTOTP}.
   * `conflict` when an active authenticator exists (remove it first).
   */
  startTOTP(
    user: { id: string; email: string },
    context?: FactorContext,
  ): Promise<({ ok: true } & TOTPEnrolment) | AuthFailure<'conflict'>>
  /**
   * Confirms the pending enrolment with a code (its step is recorded, so it cannot be used again
   * to sign in) and issues the first recovery set. `not_found` without a pending enrolment,
   * `invalid_credentials` for a wrong code.
   */
  confirmTOTP(
    userId: string,
    code: unknown,
    context?: FactorContext,
  ): Promise<
    { ok: true; recoveryCodes: string[] } | AuthFailure<'not_found' | 'invalid_credentials'>
  >
  /** Removes the authenticator (pending or active); false when there was none. Audited. */
  removeTOTP(userId: string, context?: FactorContext): Promise<boolean>
  /**
   * Checks a code of the active authenticator and records its step by compare-and-set: of two
   * requests with one code, exactly one gets `true`; an older or equal step is refused.
   */
  verifyTOTP(userId: string, code: unknown): Promise<boolean>
  /** A new set of {@link RECOVERY_CODE_COUNT} codes; the old set stops working. Audited. */
  regenerateRecoveryCodes(userId: string, context?: FactorContext): Promise<string[]>
  /** Consumes one recovery code by compare-and-set (exactly one of parallel uses succeeds). */
  useRecoveryCode(userId: string, code: unknown, context?: FactorContext): Promise<boolean>
  /** Recovery codes not used yet. */
  remainingRecoveryCodes(userId: string): Promise<number>
  /**
   * Removes every second factor of the user (a lost phone): an administrator's action,
   * audited with `context.actorId`. Returns what was removed.
   */
  reset(userId: string, context?: FactorContext): Promise<{ totp: boolean; recoveryCodes: number }>
  /** The `totp` and `recovery_code` methods for {@link createSecondFactorRegistry}. */
  readonly verifiers: readonly SecondFactorVerifier[]
}

/** SHA-256 of a normalised recovery code: 80 random bits need no slow hash. */
function hashRecoveryCode(normalized: string): string {
  return createHash('sha256')
    .update(`tessera-recovery/v1.${normalized}`, 'utf8')
    .digest('base64url')
}

/** Lower case, without spaces and dashes; `null` when it cannot be a recovery code. */
export function normalizeRecoveryCode(code: unknown): string | null {
  if (typeof code !== 'string' || code.length > MAX_CODE_INPUT) return null
  const normalized = code.toLowerCase().replace(/[\s-]/g, '')
  return RECOVERY_INPUT.test(normalized) ? normalized : null
}

function newRecoveryCode(): string {
  const bytes = randomBytes(16)
  let out = ''
  // 256 is a multiple of 32, so `byte & 31` is uniform.
  for (const byte of bytes) out += RECOVERY_ALPHABET[byte & 31] ?? ''
  return `${out.slice(0, 4)}-${out.slice(4, 8)}-${out.slice(8, 12)}-${out.slice(12, 16)}`
}

function actor(context: FactorContext | undefined): Record<string, AuditDetailValue> {
  return context?.actorId === undefined ? {} : { actorId: context.actorId }
}

/**
 * TOTP (RFC 6238 on otpauth) and recovery codes, stored in the accounts database: secrets
 * sealed with their own keyring purpose, recovery codes as SHA-256, replay and reuse refused by
 * conditional UPDATEs (one row changes, or none), the same on SQLite and PostgreSQL.
 *
 * @example
 * ```ts
 * const factors = createSecondFactors(db, { keyring, audit: auth.audit })
 * const enrolment = await factors.startTOTP(user)      // show enrolment.qrSvg
 * const confirmed = await factors.confirmTOTP(user.id, codeFromTheApp)
 * ```
 */
export function createSecondFactors(db: TesseraDB, options: SecondFactorsOptions): SecondFactors {
  const { keyring, audit } = options
  const now = options.now ?? Date.now
  const issuer = options.issuer ?? 'tessera'
  const window = options.window ?? TOTP_WINDOW

  function unseal(sealed: string): string {
    const opened = unsealValue(keyring, TOTP_SEAL_PURPOSE, sealed)
    if (opened === null) {
      // The server secret changed without the old one as a fallback: the factor cannot be read.
      throw new TesseraError(
        'config_invalid',
        'a TOTP secret cannot be unsealed: keep the old server secret in TESSERA_SECRET_FALLBACKS',
      )
    }
    return opened.value
  }

  async function record(
    type:
      | 'mfa_enrolled'
      | 'mfa_removed'
      | 'mfa_recovery_codes_generated'
      | 'mfa_recovery_code_used'
      | 'mfa_failed'
      | 'mfa_reset',
    outcome: 'success' | 'failure',
    userId: string,
    context: FactorContext | undefined,
    detail: Record<string, AuditDetailValue>,
  ): Promise<void> {
    await audit.record({
      type,
      outcome,
      userId,
      ip: context?.ip,
      userAgent: context?.userAgent,
      detail: { ...detail, ...actor(context) },
    })
  }

  async function activeRow(
    userId: string,
  ): Promise<{ secret: string; lastStep: number | null } | null> {
    const row = await db
      .selectFrom('mfa_totp')
      .select(['secret_sealed', 'last_step'])
      .where('user_id', '=', userId)
      .where('confirmed_at', 'is not', null)
      .executeTakeFirst()
    if (row === undefined) return null
    return { secret: unseal(row.secret_sealed), lastStep: toMillisOrNull(row.last_step) }
  }

  /**
   * SECURITY: a TOTP code works once (RFC 6238 5.2): the step it matched must be later than the
   * last accepted one, and is recorded by one conditional UPDATE, so of two racing requests with
   * the same code exactly one changes the row.
   */
  async function acceptStep(userId: string, step: number, confirm: boolean): Promise<boolean> {
    let query = db
      .updateTable('mfa_totp')
      .set(confirm ? { last_step: step, confirmed_at: now() } : { last_step: step })
      .where('user_id', '=', userId)
      .where((eb) => eb.or([eb('last_step', 'is', null), eb('last_step', '<', step)]))
    query = confirm
      ? query.where('confirmed_at', 'is', null)
      : query.where('confirmed_at', 'is not', null)
    const result = await query.executeTakeFirst()
    return Number(result.numUpdatedRows) === 1
  }

  async function replaceRecoveryCodes(userId: string): Promise<string[]> {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode)
    const at = now()
    await db.transaction().execute(async (trx) => {
      // SECURITY: a new set voids the old one, in the same transaction.
      await trx.deleteFrom('mfa_recovery_codes').where('user_id', '=', userId).execute()
      await trx
        .insertInto('mfa_recovery_codes')
        .values(
          codes.map((code) => ({
            code_hash: hashRecoveryCode(normalizeRecoveryCode(code) ?? code),
            user_id: userId,
            created_at: at,
            used_at: null,
          })),
        )
        .execute()
    })
    return codes
  }

  async function remaining(userId: string): Promise<number> {
    const row = await db
      .selectFrom('mfa_recovery_codes')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .executeTakeFirst()
    return Number(row?.n ?? 0)
  }

  const factors: SecondFactors = {
    async status(userId): Promise<MFAStatus> {
      const row = await db
        .selectFrom('mfa_totp')
        .select(['created_at', 'confirmed_at'])
        .where('user_id', '=', userId)
        .executeTakeFirst()
      return {
        totp:
          row === undefined
            ? null
            : {
                enabled: row.confirmed_at !== null,
                createdAt: toMillis(row.confirmed_at ?? row.created_at),
              },
        recoveryCodes: { remaining: await remaining(userId) },
      }
    },

    async hasTOTP(userId): Promise<boolean> {
      const row = await db
        .selectFrom('mfa_totp')
        .select('user_id')
        .where('user_id', '=', userId)
        .where('confirmed_at', 'is not', null)
        .executeTakeFirst()
      return row !== undefined
    },

    async usersWithTOTP(userIds): Promise<Set<string>> {
      if (userIds.length === 0) return new Set()
      const rows = await db
        .selectFrom('mfa_totp')
        .select('user_id')
        .where('user_id', 'in', [...userIds])
        .where('confirmed_at', 'is not', null)
        .execute()
      return new Set(rows.map((row) => row.user_id))
    },

    async startTOTP(user, context) {
      if (await factors.hasTOTP(user.id)) {
        return failure('conflict', 'an authenticator is already active; remove it first')
      }
      const secret = generateTOTPSecret()
      // SECURITY: the secret is stored sealed (AES-256-GCM, key of its own purpose), so a
      // database dump alone yields no codes (ASVS 2.8.x, 6.4.1).
      const sealed = sealValue(keyring, TOTP_SEAL_PURPOSE, secret)
      const at = now()
      await db.transaction().execute(async (trx) => {
        // A pending enrolment is replaced; an active one (checked above) is kept by the filter.
        await trx
          .deleteFrom('mfa_totp')
          .where('user_id', '=', user.id)
          .where('confirmed_at', 'is', null)
          .execute()
        await trx
          .insertInto('mfa_totp')
          .values({
            user_id: user.id,
            secret_sealed: sealed,
            created_at: at,
            confirmed_at: null,
            last_step: null,
          })
          .onConflict((oc) => oc.column('user_id').doNothing())
          .execute()
      })
      void context
      const uri = totpURI(secret, { issuer, label: user.email })
      return { ok: true, secret, uri, qrSvg: await totpQRCodeSVG(uri) }
    },

    async confirmTOTP(userId, code, context) {
      const row = await db
        .selectFrom('mfa_totp')
        .select('secret_sealed')
        .where('user_id', '=', userId)
        .where('confirmed_at', 'is', null)
        .executeTakeFirst()
      if (row === undefined) return failure('not_found', 'no authenticator enrolment is pending')
      const step = verifyTOTPCode(unseal(row.secret_sealed), code, { now: now(), window })
      if (step === null || !(await acceptStep(userId, step, true))) {
        await record('mfa_failed', 'failure', userId, context, { method: 'totp', stage: 'confirm' })
        return failure('invalid_credentials', 'the code is not correct')
      }
      const recoveryCodes = await replaceRecoveryCodes(userId)
      await record('mfa_enrolled', 'success', userId, context, { method: 'totp' })
      return { ok: true, recoveryCodes }
    },

    async removeTOTP(userId, context): Promise<boolean> {
      const result = await db
        .deleteFrom('mfa_totp')
        .where('user_id', '=', userId)
        .executeTakeFirst()
      const removed = Number(result.numDeletedRows) > 0
      if (removed) await record('mfa_removed', 'success', userId, context, { method: 'totp' })
      return removed
    },

    async verifyTOTP(userId, code): Promise<boolean> {
      if (typeof code !== 'string' || code.length > MAX_CODE_INPUT) return false
      const row = await activeRow(userId)
      if (row === null) return false
      const step = verifyTOTPCode(row.secret, code, { now: now(), window })
      if (step === null) return false
      if (row.lastStep !== null && step <= row.lastStep) return false
      return acceptStep(userId, step, false)
    },

    async regenerateRecoveryCodes(userId, context): Promise<string[]> {
      const codes = await replaceRecoveryCodes(userId)
      await record('mfa_recovery_codes_generated', 'success', userId, context, {
        count: codes.length,
      })
      return codes
    },

    async useRecoveryCode(userId, code, context): Promise<boolean> {
      const normalized = normalizeRecoveryCode(code)
      if (normalized === null) return false
      // SECURITY: each code is consumed once by one conditional UPDATE: of parallel uses of the
      // same code exactly one changes the row.
      const result = await db
        .updateTable('mfa_recovery_codes')
        .set({ used_at: now() })
        .where('user_id', '=', userId)
        .where('code_hash', '=', hashRecoveryCode(normalized))
        .where('used_at', 'is', null)
        .executeTakeFirst()
      if (Number(result.numUpdatedRows) !== 1) return false
      await record('mfa_recovery_code_used', 'success', userId, context, {
        remaining: await remaining(userId),
      })
      return true
    },

    remainingRecoveryCodes: remaining,

    async reset(userId, context) {
      const { totp, codes } = await db.transaction().execute(async (trx) => {
        const t = await trx.deleteFrom('mfa_totp').where('user_id', '=', userId).executeTakeFirst()
        const r = await trx
          .deleteFrom('mfa_recovery_codes')
          .where('user_id', '=', userId)
          .where('used_at', 'is', null)
          .executeTakeFirst()
        await trx.deleteFrom('mfa_recovery_codes').where('user_id', '=', userId).execute()
        return { totp: Number(t.numDeletedRows) > 0, codes: Number(r.numDeletedRows) }
      })
      // `authenticator`, not `totp`: the audit log drops keys that contain "otp".
      await record('mfa_reset', 'success', userId, context, {
        authenticator: totp,
        recoveryCodes: codes,
      })
      return { totp, recoveryCodes: codes }
    },

    verifiers: [],
  }

  const verifiers: SecondFactorVerifier[] = [
    {
      method: 'totp',
      amr: ['otp'],
      primary: true,
      enabled: (userId) => factors.hasTOTP(userId),
      verify: (userId, proof) => factors.verifyTOTP(userId, proof.code),
    },
    {
      method: 'recovery_code',
      amr: ['mca'],
      primary: false,
      enabled: async (userId) => (await remaining(userId)) > 0,
      verify: (userId, proof, context) => factors.useRecoveryCode(userId, proof.code, context),
    },
  ]
  return { ...factors, verifiers }
}
