import { ZxcvbnFactory } from '@zxcvbn-ts/core'
import * as zxcvbnCommon from '@zxcvbn-ts/language-common'
import * as zxcvbnEnglish from '@zxcvbn-ts/language-en'
import { COMMON_PASSWORDS_TEXT } from './data/common-passwords.js'
import { TesseraError } from '../core/errors.js'

/**
 * Why a password was refused by {@link checkPasswordPolicy}: its length, a list of common
 * (`common`) or breached (`breached`) passwords, the strength estimator (`guessable`: a
 * dictionary word with digits, a keyboard walk, a date, the user's own e-mail), or lone
 * surrogates (`malformed`).
 */
export type PasswordPolicyReason =
  'too_short' | 'too_long' | 'common' | 'breached' | 'guessable' | 'malformed'

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
  /**
   * Refuse passwords on the breached-password list of `@zxcvbn-ts/language-common` (49,233
   * passwords seen in breaches), the entries of the allowed lengths, case-insensitively.
   * @default true
   */
  breachedList?: boolean
  /**
   * Lowest strength score accepted from the zxcvbn estimator (`@zxcvbn-ts/core` with the common
   * and English dictionaries): 0 to 4, where 3 is "safely unguessable" (about 10^8 guesses or
   * more, enough behind a slow hash) and 0 turns the estimator off.
   * @default 3
   */
  minStrength?: number
  /**
   * What the person is known by (their e-mail address, name, the site's name): a password built
   * from them is rated as easy to guess. An e-mail is also split into its local part and the
   * labels of its domain.
   * @default []
   */
  userInputs?: readonly string[]
}

// The estimator looks at this many characters: its run time grows fast with length (a repeated
// l33t pattern of 128 characters took over a second), and a password whose first 48 characters
// are strong is strong. Fewer l33t substitutions for the same reason.
const ESTIMATOR_MAX_LENGTH = 48
const ESTIMATOR_MAX_L33T = 4

let estimator: ZxcvbnFactory | undefined

function strengthEstimator(): ZxcvbnFactory {
  // Built on first use (about a quarter of a second): a process that never checks a new
  // password never pays for the dictionaries.
  estimator ??= new ZxcvbnFactory({
    translations: zxcvbnEnglish.translations,
    graphs: zxcvbnCommon.adjacencyGraphs,
    dictionary: { ...zxcvbnCommon.dictionary, ...zxcvbnEnglish.dictionary },
    maxLength: ESTIMATOR_MAX_LENGTH,
    l33tMaxSubstitutions: ESTIMATOR_MAX_L33T,
  })
  return estimator
}

const breachedSets = new Map<string, Set<string>>()

/** The breached list's entries of `minLength` to `maxLength` code points, folded, once each. */
function breachedPasswords(minLength: number, maxLength: number): Set<string> {
  const key = `${minLength}:${maxLength}`
  let set = breachedSets.get(key)
  if (set === undefined) {
    const list = (zxcvbnCommon.dictionary as Record<string, unknown>)['passwords-common']
    set = new Set<string>()
    for (const entry of Array.isArray(list) ? list : []) {
      if (typeof entry !== 'string') continue
      const folded = normalizePassword(entry).toLowerCase()
      const length = countCodePoints(folded)
      if (length >= minLength && length <= maxLength) set.add(folded)
    }
    breachedSets.set(key, set)
  }
  return set
}

/** The user inputs the estimator gets: each as given, and an e-mail's parts too. */
function estimatorInputs(inputs: readonly string[]): string[] {
  const out = new Set<string>()
  for (const input of inputs) {
    const value = normalizePassword(input).toLowerCase().trim()
    if (value === '') continue
    out.add(value)
    const at = value.lastIndexOf('@')
    if (at > 0) {
      const local = value.slice(0, at)
      out.add(local)
      for (const part of local.split(/[._+-]+/)) if (part.length >= 3) out.add(part)
      for (const label of value.slice(at + 1).split('.')) if (label.length >= 3) out.add(label)
    }
  }
  return [...out]
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

const ADVICE = 'Four or more unrelated words make a strong password that is easy to remember.'

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
  const minStrength = options.minStrength ?? 3
  if (!Number.isInteger(minStrength) || minStrength < 0 || minStrength > 4) {
    throw new TesseraError('invalid_argument', 'minStrength must be an integer from 0 to 4')
  }
  const folded = normalized.toLowerCase()
  const extra = (options.extraWords ?? []).some(
    (word) => word !== '' && normalizePassword(word).toLowerCase() === folded,
  )
  if (extra || ((options.commonList ?? true) && commonPasswords().has(folded))) {
    return {
      ok: false,
      reason: 'common',
      message: `This password is too common: attackers try it first. Choose another. ${ADVICE}`,
    }
  }
  // SECURITY: a password seen in breaches is tried first by every attacker (NIST SP 800-63B
  // 5.1.1.2); only the entries of lengths the policy allows can match, so only those are kept.
  if ((options.breachedList ?? true) && breachedPasswords(minLength, maxLength).has(folded)) {
    return {
      ok: false,
      reason: 'breached',
      message: `This password appears in lists of breached passwords, which attackers try first. Choose another. ${ADVICE}`,
    }
  }
  if (minStrength > 0) {
    // SECURITY: length alone does not make a password strong (`password1234`): the estimator
    // knows dictionaries, keyboard walks, dates, repetitions and the user's own e-mail.
    const rated = strengthEstimator().check(normalized, estimatorInputs(options.userInputs ?? []))
    if (rated.score < minStrength) {
      const warning = rated.feedback.warning
      return {
        ok: false,
        reason: 'guessable',
        message: `This password is too easy to guess${warning === null || warning === '' ? '.' : `: ${warning.replace(/\.$/, '')}.`} Avoid words with a few digits, keyboard patterns, dates and your e-mail address. ${ADVICE}`,
      }
    }
  }
  return { ok: true }
}
