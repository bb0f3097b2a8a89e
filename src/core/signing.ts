import { createHmac } from 'node:crypto'
import { TesseraError } from './errors.js'
import type { KeyPurpose, Keyring } from './keyring.js'

/** Options of {@link signValue}. */
export interface SignOptions {
  /** Embed the signing time so {@link verifyValue} can enforce a `maxAge`. @default false */
  timestamp?: boolean
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number
}

/** Options of {@link verifyValue}. */
export interface VerifyOptions {
  /** Reject values signed more than this many seconds ago (they must carry a timestamp). */
  maxAge?: number
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number
}

/** A value whose signature verified. */
export interface VerifiedValue {
  /** The original value. */
  value: string
  /** When it was signed, in epoch seconds, if it carries a timestamp. */
  timestamp: number | null
  /** The id of the secret that signed it. */
  kid: string
  /** True when a fallback secret signed it: sign it again so the fallback can be retired. */
  needsResign: boolean
}

/**
 * Purposes whose keys belong to one construction only and are never used by signValue:
 * `seal` keys AES-256-GCM (sealing.ts) and `csrf` keys the CSRF token HMAC (csrf.ts).
 */
const RESERVED_PURPOSES: ReadonlySet<string> = new Set(['seal', 'csrf'])

/** Length of the base64url HMAC-SHA256 tag. */
const TAG_LENGTH = 43
/** Length of a key id. */
const KID_LENGTH = 8
/** Timestamps more than this far in the future are refused (clock skew allowance). */
const FUTURE_SKEW_SECONDS = 60

/**
 * Signs `value` for `purpose` with the keyring's current key.
 *
 * Format: `<value>.<kid>[<timestamp base36>].<tag>` where the tag is the base64url
 * HMAC-SHA256 of everything before its dot. The value may contain dots; the two trailing
 * fields are parsed from the right.
 *
 * @throws TesseraError `invalid_argument` when `value` is not a string, or `purpose` is one of
 *   the reserved purposes `seal` and `csrf`
 * @example
 * ```ts
 * const cookieValue = signValue(keyring, 'session', token)
 * ```
 */
export function signValue(
  keyring: Keyring,
  purpose: KeyPurpose,
  value: string,
  options: SignOptions = {},
): string {
  if (typeof value !== 'string') {
    throw new TesseraError('invalid_argument', 'signValue: value must be a string')
  }
  // SECURITY: one key, one algorithm: the sealing key is never used as an HMAC key, and CSRF
  // tokens cannot be minted through signValue (key separation, NIST SP 800-57 5.2).
  if (RESERVED_PURPOSES.has(purpose)) {
    throw new TesseraError(
      'invalid_argument',
      `signValue: purpose "${purpose}" is reserved (use sealValue or createCSRFToken)`,
    )
  }
  const key = keyring.key(purpose)
  let meta = key.kid
  if (options.timestamp === true) {
    meta += Math.floor((options.now ?? Date.now)() / 1000).toString(36)
  }
  const payload = `${value}.${meta}`
  const tag = createHmac('sha256', key.keyObject).update(payload).digest('base64url')
  return `${payload}.${tag}`
}

/**
 * Verifies a value made by {@link signValue} for the same purpose.
 *
 * Returns `null` for anything that is not a valid, unexpired value signed by a key of the
 * keyring; it never throws on untrusted input. A value signed with a fallback key verifies and
 * says `needsResign`.
 *
 * @example
 * ```ts
 * const verified = verifyValue(keyring, 'session', cookieValue)
 * if (verified === null) return unauthenticated()
 * ```
 */
export function verifyValue(
  keyring: Keyring,
  purpose: KeyPurpose,
  signed: unknown,
  options: VerifyOptions = {},
): VerifiedValue | null {
  if (typeof signed !== 'string' || RESERVED_PURPOSES.has(purpose)) return null
  const tagStart = signed.length - TAG_LENGTH
  const tagDot = tagStart - 1
  if (tagDot < KID_LENGTH + 1 || signed.charCodeAt(tagDot) !== 46 /* . */) return null
  const metaDot = signed.lastIndexOf('.', tagDot - 1)
  if (metaDot < 0) return null
  const metaLength = tagDot - metaDot - 1
  if (metaLength < KID_LENGTH || metaLength > KID_LENGTH + 12) return null
  const key = keyring.find(purpose, signed.slice(metaDot + 1, metaDot + 1 + KID_LENGTH))
  if (key === undefined) return null

  // Comparing the base64url text (not decoded bytes) is faster than decoding the given tag, and
  // it accepts only the canonical encoding: one signature, one accepted string.
  const expected = createHmac('sha256', key.keyObject)
    .update(signed.slice(0, tagDot))
    .digest('base64url')
  // SECURITY: constant-time comparison (no early exit; both are 43 characters), so timing
  // reveals nothing about the expected tag (OWASP ASVS 11.2.3). A test fails if a tag that
  // differs only in its last character verifies.
  let difference = 0
  for (let index = 0; index < TAG_LENGTH; index++) {
    difference |= expected.charCodeAt(index) ^ signed.charCodeAt(tagStart + index)
  }
  if (difference !== 0) return null

  const meta = signed.slice(metaDot + 1, tagDot)
  let timestamp: number | null = null
  if (meta.length > KID_LENGTH) {
    const encoded = meta.slice(KID_LENGTH)
    if (!/^[0-9a-z]+$/.test(encoded)) return null
    timestamp = parseInt(encoded, 36)
  }
  if (options.maxAge !== undefined) {
    if (timestamp === null) return null
    const nowSeconds = Math.floor((options.now ?? Date.now)() / 1000)
    if (nowSeconds - timestamp > options.maxAge) return null
    if (timestamp - nowSeconds > FUTURE_SKEW_SECONDS) return null
  }
  return { value: signed.slice(0, metaDot), timestamp, kid: key.kid, needsResign: !key.current }
}
