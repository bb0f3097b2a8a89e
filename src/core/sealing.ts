import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { TesseraError } from './errors.js'
import type { KeyPurpose, Keyring, PurposeKey } from './keyring.js'

/** Options of {@link sealValue}. */
export interface SealOptions {
  /** Seconds until the sealed value stops opening. The expiry travels inside the ciphertext. */
  ttl?: number
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number
}

/** Options of {@link unsealValue}. */
export interface UnsealOptions {
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number
}

/** A sealed value that opened. */
export interface UnsealedValue {
  /** The original plaintext. */
  value: string
  /** When it stops opening, in epoch milliseconds, or `null` when it was sealed without a ttl. */
  expiresAt: number | null
  /** The id of the secret that sealed it. */
  kid: string
  /** True when a fallback secret sealed it: seal it again so the fallback can be retired. */
  needsReseal: boolean
}

// Wire format v1 (frozen by test/vectors/sealing.json):
//   "s1." <kid: 8 base64url chars> "." <base64url, no padding: nonce(12) | ciphertext | tag(16)>
// Associated data: "tessera-seal/v1." <kid> "." <purpose>  (UTF-8)
// Plaintext: flags(1) [expiry(6): big-endian epoch milliseconds when flags = 1] | UTF-8 value
const PREFIX = 's1.'
const AAD_PREFIX = 'tessera-seal/v1.'
const KID_LENGTH = 8
const HEADER_LENGTH = PREFIX.length + KID_LENGTH + 1
const NONCE_BYTES = 12
const TAG_BYTES = 16
const FLAG_NONE = 0
const FLAG_EXPIRY = 1
const EXPIRY_BYTES = 6
/** Expiries must fit in 48 bits (year 10889); anything later is a programming error. */
const MAX_EXPIRY = 2 ** 48 - 1
/** The sealing key purpose: only AES-GCM ever uses it, never an HMAC. */
const SEAL_PURPOSE = 'seal'

// String.prototype.isWellFormed exists in Node 20 but its type is in lib ES2024, which also
// declares APIs Node 20 lacks; declare just this one.
const isWellFormed = (value: string): boolean =>
  (value as unknown as { isWellFormed(): boolean }).isWellFormed()

// Associated data per (key, purpose), built once: no string building on the hot path.
const aadCache = new WeakMap<PurposeKey, Map<string, Buffer>>()

function associatedData(key: PurposeKey, purpose: string): Buffer {
  let byPurpose = aadCache.get(key)
  if (byPurpose === undefined) {
    byPurpose = new Map()
    aadCache.set(key, byPurpose)
  }
  let aad = byPurpose.get(purpose)
  if (aad === undefined) {
    aad = Buffer.from(`${AAD_PREFIX}${key.kid}.${purpose}`, 'utf8')
    // Purposes come from code, not requests, so this map stays small.
    byPurpose.set(purpose, aad)
  }
  return aad
}

/**
 * Encrypts and authenticates `plaintext` for `purpose` with AES-256-GCM under the keyring's
 * current sealing key: the result is opaque, cookie-safe text that only {@link unsealValue} with
 * the same purpose and a keyring holding the same secret can open.
 *
 * Every call draws a fresh random 96-bit nonce, so sealing the same value twice gives two
 * different strings. Stay under 2^32 seals per secret (NIST SP 800-38D 8.3); rotating the secret
 * starts a new key (see docs/decisions.md).
 *
 * @throws TesseraError `invalid_argument` when `plaintext` is not a well-formed string, `purpose`
 *   is empty, or `ttl` is not a positive finite number of seconds
 * @example
 * ```ts
 * const cookieValue = sealValue(keyring, 'cart', JSON.stringify(cart), { ttl: 3600 })
 * ```
 */
export function sealValue(
  keyring: Keyring,
  purpose: KeyPurpose,
  plaintext: string,
  options: SealOptions = {},
): string {
  if (typeof plaintext !== 'string' || !isWellFormed(plaintext)) {
    // A lone surrogate would not survive UTF-8 and unseal as a different string.
    throw new TesseraError('invalid_argument', 'sealValue: plaintext must be a well-formed string')
  }
  if (typeof purpose !== 'string' || purpose.length === 0) {
    throw new TesseraError('invalid_argument', 'sealValue: purpose must be a non-empty string')
  }
  let header: Buffer
  if (options.ttl === undefined) {
    header = Buffer.of(FLAG_NONE)
  } else {
    const { ttl } = options
    if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) {
      throw new TesseraError(
        'invalid_argument',
        'sealValue: ttl must be a positive number of seconds',
      )
    }
    const expiresAt = Math.floor((options.now ?? Date.now)() + ttl * 1000)
    if (!Number.isSafeInteger(expiresAt) || expiresAt < 0 || expiresAt > MAX_EXPIRY) {
      throw new TesseraError('invalid_argument', 'sealValue: ttl puts the expiry out of range')
    }
    header = Buffer.allocUnsafe(1 + EXPIRY_BYTES)
    header[0] = FLAG_EXPIRY
    header.writeUIntBE(expiresAt, 1, EXPIRY_BYTES)
  }
  const key = keyring.key(SEAL_PURPOSE)
  // SECURITY: a fresh random 96-bit nonce per seal; GCM loses confidentiality and integrity if a
  // nonce ever repeats under one key (NIST SP 800-38D 8.3).
  const nonce = randomBytes(NONCE_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key.keyObject, nonce, { authTagLength: TAG_BYTES })
  // SECURITY: purpose, version and key id are authenticated, so a value sealed for one purpose
  // (or rewritten to name another key) never opens for another.
  cipher.setAAD(associatedData(key, purpose))
  const first = cipher.update(header)
  const body = cipher.update(plaintext, 'utf8')
  const last = cipher.final()
  const blob = Buffer.concat([nonce, first, body, last, cipher.getAuthTag()])
  return `${PREFIX}${key.kid}.${blob.toString('base64url')}`
}

/**
 * Opens a value made by {@link sealValue} for the same purpose.
 *
 * Returns `null` for anything that is not a valid, unexpired value sealed by a key of the keyring
 * for this purpose; it never throws on untrusted input. A value sealed with a fallback secret
 * opens and says `needsReseal`.
 *
 * @example
 * ```ts
 * const opened = unsealValue(keyring, 'cart', cookies.cart)
 * const cart = opened === null ? emptyCart() : JSON.parse(opened.value)
 * ```
 */
export function unsealValue(
  keyring: Keyring,
  purpose: KeyPurpose,
  sealed: unknown,
  options: UnsealOptions = {},
): UnsealedValue | null {
  if (typeof sealed !== 'string') return null
  if (
    sealed.length < HEADER_LENGTH + 38 || // 12 + 1 + 16 bytes is at least 39 base64url chars
    !sealed.startsWith(PREFIX) ||
    sealed.charCodeAt(HEADER_LENGTH - 1) !== 46 /* . */
  ) {
    return null
  }
  const key = keyring.find(SEAL_PURPOSE, sealed.slice(PREFIX.length, HEADER_LENGTH - 1))
  if (key === undefined) return null
  const encoded = sealed.slice(HEADER_LENGTH)
  const blob = Buffer.from(encoded, 'base64url')
  if (blob.length < NONCE_BYTES + 1 + TAG_BYTES) return null
  // Node's decoder skips stray characters and ignores the last character's spare bits; only the
  // canonical encoding is accepted, so one sealed value has exactly one accepted spelling.
  if (blob.toString('base64url') !== encoded) return null

  let plain: Buffer
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.keyObject, blob.subarray(0, NONCE_BYTES), {
      authTagLength: TAG_BYTES,
    })
    decipher.setAAD(associatedData(key, purpose))
    decipher.setAuthTag(blob.subarray(blob.length - TAG_BYTES))
    const head = decipher.update(blob.subarray(NONCE_BYTES, blob.length - TAG_BYTES))
    // SECURITY: final() throws unless the tag authenticates nonce, ciphertext and associated
    // data; nothing decrypted is used before it passes.
    const tail = decipher.final()
    plain = tail.length === 0 ? head : Buffer.concat([head, tail])
  } catch {
    return null
  }

  let expiresAt: number | null = null
  let offset = 1
  const flags = plain[0]
  if (flags === FLAG_EXPIRY) {
    if (plain.length < 1 + EXPIRY_BYTES) return null
    expiresAt = plain.readUIntBE(1, EXPIRY_BYTES)
    offset += EXPIRY_BYTES
    if ((options.now ?? Date.now)() >= expiresAt) return null
  } else if (flags !== FLAG_NONE) {
    return null
  }
  return {
    value: plain.toString('utf8', offset),
    expiresAt,
    kid: key.kid,
    needsReseal: !key.current,
  }
}
