import { COMMON_PASSWORDS_TEXT } from './data/common-passwords.js'
import { TesseraError } from '../core/errors.js'

/** Why a password was refused by {@link checkPasswordPolicy}. */
export type PasswordPolicyReason = 'too_short' | 'too_long' | 'common' | 'malformed'

/** The outcome of {@link checkPasswordPolicy}: accepted, or refused with one reason. */
export type PasswordPolicyResult =
  | { ok: true }
  | {
      ok: false
      reason: PasswordPolicyReason
      /** A sentence for the person choosing the password; it never repeats the password. */
      message: string
    }

/** Options of {@link checkPasswordPolicy}. */
export interface PasswordPolicyOptions {
  /**
   * Fewest Unicode code points (after NFKC normalisation).
   * @default 12
   */
  minLength?: number
  /**
   * Most Unicode code points (after NFKC normalisation). Longer passwords are refused, never
   * truncated.
   * @default 128
   */
  maxLength?: number
  /**
   * Refuse passwords on the list of the 10,000 most common passwords (case-insensitive).
   * @default true
   */
  commonList?: boolean
  /**
   * More words to refuse, matched case-insensitively after NFKC normalisation: the site's name,
   * the user's e-mail, and so on.
   * @default []
   */
  extraWords?: readonly string[]
}

// A lone surrogate has no UTF-8 encoding: it would be hashed as U+FFFD and collide with it.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

let commonSet: Set<string> | undefined

function commonPasswords(): Set<string> {
  commonSet ??= new Set(COMMON_PASSWORDS_TEXT.split('\n'))
  return commonSet
}

/**
 * The form of a password that tessera measures and hashes: Unicode NFKC, as NIST SP 800-63B
 * §5.1.1.2 recommends, so that the same password typed through another keyboard or input method
 * (composed or decomposed accents, full-width digits) is the same password. Nothing is trimmed or
 * truncated.
 *
 * @example
 * ```ts
 * normalizePassword('ｐａｓｓ') // 'pass'
 * ```
 */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC')
}

/** True when `password` is well-formed UTF-16 (no lone surrogate), so it has one UTF-8 encoding. */
export function isWellFormedPassword(password: string): boolean {
  return !LONE_SURROGATE.test(password)
}

/** True when `password` is on the shipped list of the 10,000 most common passwords. */
export function isCommonPassword(password: string): boolean {
  return commonPasswords().has(normalizePassword(password).toLowerCase())
}

function countCodePoints(value: string): number {
  let count = 0
  for (const _ of value) count++
  return count
}

function checkLimit(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new TesseraError('invalid_argument', `${name} must be a positive integer`)
  }
}

/**
 * Decides whether a new password is acceptable, before it is hashed. Length is counted in Unicode
 * code points of the NFKC form (the form {@link hashPassword} hashes), so an emoji counts as one
 * character and a password is never cut short. Any Unicode is accepted except lone surrogates,
 * which have no UTF-8 encoding (`malformed`).
 *
 * @throws TesseraError `invalid_argument` when the limits are not positive integers or
 *   `minLength > maxLength`.
 * @example
 * ```ts
 * const result = checkPasswordPolicy(body.password)
 * if (!result.ok) return reply(400, { error: { code: 'weak_password', message: result.message } })
 * ```
 */
export function checkPasswordPolicy(
  password: string,
  options: PasswordPolicyOptions = {},
): PasswordPolicyResult {
  const minLength = options.minLength ?? 12
  const maxLength = options.maxLength ?? 128
  checkLimit('minLength', minLength)
  checkLimit('maxLength', maxLength)
  if (minLength > maxLength) {
    throw new TesseraError('invalid_argument', 'minLength must not be greater than maxLength')
  }
  if (typeof password !== 'string' || !isWellFormedPassword(password)) {
    return { ok: false, reason: 'malformed', message: 'The password contains invalid characters.' }
  }
  const normalized = normalizePassword(password)
  const length = countCodePoints(normalized)
  if (length < minLength) {
    return {
      ok: false,
      reason: 'too_short',
      message: `The password must have at least ${minLength} characters.`,
    }
  }
  if (length > maxLength) {
    return {
      ok: false,
      reason: 'too_long',
      message: `The password must have at most ${maxLength} characters.`,
    }
  }
  const folded = normalized.toLowerCase()
  const extra = (options.extraWords ?? []).some(
    (word) => word !== '' && normalizePassword(word).toLowerCase() === folded,
  )
  if (extra || ((options.commonList ?? true) && commonPasswords().has(folded))) {
    return {
      ok: false,
      reason: 'common',
      message: 'This password is too common; choose one that is harder to guess.',
    }
  }
  return { ok: true }
}
