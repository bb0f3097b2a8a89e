import { createHmac, timingSafeEqual, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import { TesseraError } from '../core/errors.js'

/** The signature algorithms tessera issues and verifies. Nothing else is ever accepted. */
export type JWSAlgorithm = 'EdDSA' | 'ES256' | 'RS256' | 'HS256'

/** The algorithms of {@link JWSAlgorithm}, for checks on untrusted input. */
export const JWS_ALGORITHMS: readonly JWSAlgorithm[] = ['EdDSA', 'ES256', 'RS256', 'HS256']

/**
 * A verification key pinned to exactly one algorithm. A token is checked only with the key its
 * `kid` names, and only when its `alg` equals the key's `alg`.
 */
export interface PinnedKey {
  readonly kid: string
  readonly alg: JWSAlgorithm
  /** A public key (EdDSA, ES256, RS256) or a secret key (HS256). */
  readonly key: KeyObject
  /** Exact signature length in bytes for this key. */
  readonly signatureLength: number
}

/** Why a token was refused. Stable strings, safe to log (they never contain the token). */
export type TokenRejection =
  | 'malformed'
  | 'header_rejected'
  | 'type_mismatch'
  | 'unknown_key'
  | 'algorithm_mismatch'
  | 'bad_signature'
  | 'claims_invalid'
  | 'expired'
  | 'not_yet_valid'
  | 'issuer_mismatch'
  | 'audience_mismatch'
  | 'session_revoked'
  | 'jwks_unavailable'

/** The protected header fields tessera reads. */
export interface JWSHeader {
  alg: string
  kid?: string
  typ?: string
  [name: string]: unknown
}

/** The outcome of a signature check: the decoded header and payload bytes, or a rejection. */
export type JWSResult =
  | { ok: true; header: JWSHeader; key: PinnedKey; payload: Buffer }
  | { ok: false; reason: TokenRejection }

/** How {@link verifyCompactJWS} finds a key. */
export interface JWSVerifyOptions {
  /** The key named by `kid`, or `undefined`. Called with `undefined` when the header has none. */
  resolveKey: (kid: string | undefined) => PinnedKey | undefined
  /**
   * Required `typ` (compared case-insensitively, `application/` prefix optional, RFC 7515 4.1.9),
   * or `null` to accept any or none.
   */
  typ: string | null
}

/** Longest token accepted, in characters; a longer one is refused before any parsing. */
export const MAX_TOKEN_LENGTH = 8192

const BASE64URL = /^[A-Za-z0-9_-]+$/

// SECURITY: header parameters that would let the token choose its own key or its own
// verification rules (RFC 8725 3.1, 3.10): refused outright, never fetched, never trusted.
const FORBIDDEN_HEADERS = ['jwk', 'jku', 'x5u', 'x5c', 'crit', 'zip', 'enc', 'epk'] as const

/** A checked header: the parsed object and its normalised `typ`, or why it was refused. */
type CheckedHeader = { header: JWSHeader; typ: string | null } | TokenRejection

/** Headers already checked, keyed by their encoded form; tokens of one issuer share a header. */
const headerCache = new Map<string, CheckedHeader>()
const HEADER_CACHE_LIMIT = 256

/**
 * Builds a {@link PinnedKey}, checking that the key material fits the algorithm (an Ed25519
 * public key for EdDSA, a P-256 public key for ES256, an RSA public key of 2048 bits or more for
 * RS256, a secret of 32 bytes or more for HS256).
 *
 * @throws TesseraError `config_invalid` when the key does not fit the algorithm
 */
export function pinKey(kid: string, alg: JWSAlgorithm, key: KeyObject): PinnedKey {
  if (typeof kid !== 'string' || kid.length === 0 || kid.length > 256) {
    throw new TesseraError(
      'config_invalid',
      'a key id (kid) must be a string of 1 to 256 characters',
    )
  }
  const fail = (what: string): never => {
    throw new TesseraError('config_invalid', `key "${kid}" for ${alg} must be ${what}`)
  }
  switch (alg) {
    case 'HS256': {
      // SECURITY: an HMAC key must be a secret; a public key here is the classic
      // RS256 -> HS256 confusion (RFC 8725 2.1).
      if (key.type !== 'secret') fail('a secret key')
      const length = key.symmetricKeySize ?? 0
      if (length < 32) fail('a secret of at least 32 bytes')
      return Object.freeze({ kid, alg, key, signatureLength: 32 })
    }
    case 'EdDSA':
      if (key.type !== 'public' || key.asymmetricKeyType !== 'ed25519')
        fail('an Ed25519 public key')
      return Object.freeze({ kid, alg, key, signatureLength: 64 })
    case 'ES256':
      if (
        key.type !== 'public' ||
        key.asymmetricKeyType !== 'ec' ||
        key.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
      ) {
        fail('a P-256 public key')
      }
      return Object.freeze({ kid, alg, key, signatureLength: 64 })
    case 'RS256': {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0
      if (key.type !== 'public' || key.asymmetricKeyType !== 'rsa' || bits < 2048) {
        fail('an RSA public key of at least 2048 bits')
      }
      return Object.freeze({ kid, alg, key, signatureLength: Math.ceil(bits / 8) })
    }
    default:
      throw new TesseraError('config_invalid', `unsupported algorithm for key "${kid}"`)
  }
}

function parseHeader(encoded: string): CheckedHeader {
  const cached = headerCache.get(encoded)
  if (cached !== undefined) return cached
  const result = checkHeader(encoded)
  if (headerCache.size >= HEADER_CACHE_LIMIT) headerCache.clear()
  headerCache.set(encoded, result)
  return result
}

function checkHeader(encoded: string): CheckedHeader {
  const header = parseJSONObject(encoded)
  if (header === null) return 'malformed'
  if (typeof header.alg !== 'string') return 'malformed'
  if (header.kid !== undefined && typeof header.kid !== 'string') return 'malformed'
  if (header.typ !== undefined && typeof header.typ !== 'string') return 'malformed'
  for (const name of FORBIDDEN_HEADERS) {
    if (Object.hasOwn(header, name)) return 'header_rejected'
  }
  // RFC 7797: an unencoded payload changes what is signed; tessera never produces one.
  if (Object.hasOwn(header, 'b64')) return 'header_rejected'
  const typ = typeof header.typ === 'string' ? normalizeType(header.typ) : null
  return Object.freeze({ header: Object.freeze(header) as JWSHeader, typ })
}

function normalizeType(value: string): string {
  const lower = value.toLowerCase()
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower
}

const SPARE_BITS_MASK = [0, 0x0f, 0x03] as const

/**
 * True when `segment` is the one unpadded base64url spelling of `length` bytes: right length,
 * right alphabet, and the spare low bits of the last character zero (RFC 4648 3.5).
 */
function isCanonicalEncoding(segment: string, length: number): boolean {
  if (segment.length !== Math.ceil((length * 4) / 3) || !BASE64URL.test(segment)) return false
  const mask = SPARE_BITS_MASK[length % 3] as number
  if (mask === 0) return true
  const last = BASE64URL_VALUE[segment.charCodeAt(segment.length - 1)] as number
  return (last & mask) === 0
}

const BASE64URL_VALUE = (() => {
  const table = new Uint8Array(128)
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  for (let index = 0; index < alphabet.length; index += 1) table[alphabet.charCodeAt(index)] = index
  return table
})()

function decode(segment: string): Buffer | null {
  if (segment.length === 0 || segment.length % 4 === 1 || !BASE64URL.test(segment)) return null
  return Buffer.from(segment, 'base64url')
}

/** Parses a base64url segment holding a JSON object; `null` for anything else. */
export function parseJSONObject(segment: string): Record<string, unknown> | null {
  const bytes = decode(segment)
  if (bytes === null) return null
  let value: unknown
  try {
    value = JSON.parse(bytes.toString('utf8'))
  } catch {
    return null
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null
  return value as Record<string, unknown>
}

/**
 * Verifies a JWS in compact serialization against a pinned key. Never throws for untrusted
 * input, never fetches anything: the key comes only from `resolveKey`.
 */
export function verifyCompactJWS(token: unknown, options: JWSVerifyOptions): JWSResult {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
    return { ok: false, reason: 'malformed' }
  }
  const first = token.indexOf('.')
  const last = token.lastIndexOf('.')
  if (first <= 0 || last === first || token.indexOf('.', first + 1) !== last) {
    return { ok: false, reason: 'malformed' }
  }
  const checked = parseHeader(token.slice(0, first))
  if (typeof checked === 'string') return { ok: false, reason: checked }
  if (options.typ !== null && checked.typ !== normalizeType(options.typ)) {
    return { ok: false, reason: 'type_mismatch' }
  }
  const { header } = checked

  const key = options.resolveKey(header.kid)
  if (key === undefined) return { ok: false, reason: 'unknown_key' }
  // SECURITY: the algorithm is the key's, never the token's: `none` in any spelling, HS256
  // against a public key, or any other swap fails here (RFC 8725 3.1).
  if (header.alg !== key.alg) return { ok: false, reason: 'algorithm_mismatch' }

  const encodedSignature = token.slice(last + 1)
  // Only the canonical encoding of a signature of the exact length is accepted, so one
  // signature has one spelling (no malleable trailing bits, no truncation, no extension).
  if (!isCanonicalEncoding(encodedSignature, key.signatureLength)) {
    return { ok: false, reason: 'bad_signature' }
  }
  const signature = Buffer.from(encodedSignature, 'base64url')
  const signingInput = token.slice(0, last)
  if (!checkSignature(key, signingInput, signature)) return { ok: false, reason: 'bad_signature' }

  // The signature covers the encoded payload exactly as sent: whatever its spelling, the key
  // holder wrote it, so it is decoded without a second syntax pass.
  if (last === first + 1) return { ok: false, reason: 'malformed' }
  const payload = Buffer.from(token.slice(first + 1, last), 'base64url')
  return { ok: true, header, key, payload }
}

function checkSignature(key: PinnedKey, signingInput: string, signature: Buffer): boolean {
  try {
    switch (key.alg) {
      case 'HS256': {
        const expected = createHmac('sha256', key.key).update(signingInput, 'latin1').digest()
        return timingSafeEqual(expected, signature)
      }
      case 'EdDSA':
        return cryptoVerify(null, Buffer.from(signingInput, 'latin1'), key.key, signature)
      case 'ES256':
        return cryptoVerify(
          'sha256',
          Buffer.from(signingInput, 'latin1'),
          { key: key.key, dsaEncoding: 'ieee-p1363' },
          signature,
        )
      case 'RS256':
        return cryptoVerify('sha256', Buffer.from(signingInput, 'latin1'), key.key, signature)
      default:
        return false
    }
  } catch {
    return false
  }
}

/** The registered claims tessera checks, plus any others the issuer put in. */
export interface JWTClaims {
  iss?: string
  sub?: string
  aud?: string | string[]
  exp: number
  nbf?: number
  iat?: number
  jti?: string
  [name: string]: unknown
}

/** Claim rules of {@link checkClaims}. */
export interface ClaimRules {
  /** Required `iss`, or `null` to skip (test vectors only). */
  issuer: string | null
  /** Accepted audiences (one must appear in `aud`), or `null` to skip (test vectors only). */
  audience: readonly string[] | null
  /** Clock skew allowance in seconds, 0 to 60. */
  leeway: number
  /** Now, epoch milliseconds. */
  now: number
}

/** Largest leeway tessera accepts, in seconds. */
export const MAX_LEEWAY = 60

/**
 * Checks a JWT payload: `exp` required, `nbf` and `iat` honoured, `iss` and `aud` matched.
 * A token is expired from `exp + leeway` on (inclusive) and not yet valid before `nbf - leeway`.
 */
export function checkClaims(
  payload: Buffer,
  rules: ClaimRules,
): { ok: true; claims: JWTClaims } | { ok: false; reason: TokenRejection } {
  let value: unknown
  try {
    value = JSON.parse(payload.toString('utf8'))
  } catch {
    return { ok: false, reason: 'malformed' }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'malformed' }
  }
  const claims = value as Record<string, unknown>
  const { exp, nbf, iat, iss, aud, sub, jti } = claims
  // SECURITY: a token without an expiry would be valid forever (RFC 8725 3.10 / ASVS 3.5.3).
  if (!isNumericDate(exp)) return { ok: false, reason: 'claims_invalid' }
  if (nbf !== undefined && !isNumericDate(nbf)) return { ok: false, reason: 'claims_invalid' }
  if (iat !== undefined && !isNumericDate(iat)) return { ok: false, reason: 'claims_invalid' }
  if (sub !== undefined && typeof sub !== 'string') return { ok: false, reason: 'claims_invalid' }
  if (jti !== undefined && typeof jti !== 'string') return { ok: false, reason: 'claims_invalid' }
  const leewayMs = rules.leeway * 1000
  if (rules.now >= exp * 1000 + leewayMs) return { ok: false, reason: 'expired' }
  if (nbf !== undefined && rules.now < nbf * 1000 - leewayMs) {
    return { ok: false, reason: 'not_yet_valid' }
  }
  if (iat !== undefined && rules.now < iat * 1000 - leewayMs) {
    return { ok: false, reason: 'not_yet_valid' }
  }
  if (rules.issuer !== null && iss !== rules.issuer) return { ok: false, reason: 'issuer_mismatch' }
  if (rules.audience !== null) {
    const accepted = rules.audience
    const matches =
      typeof aud === 'string'
        ? accepted.includes(aud)
        : Array.isArray(aud) &&
          aud.every((entry) => typeof entry === 'string') &&
          aud.some((entry) => accepted.includes(entry))
    if (!matches) return { ok: false, reason: 'audience_mismatch' }
  }
  return { ok: true, claims: claims as JWTClaims }
}

/**
 * Normalises an audience option to a non-empty list.
 *
 * @throws TesseraError `config_invalid` when it is empty or not strings
 */
export function audienceList(value: unknown): string[] {
  const list: unknown[] = typeof value === 'string' ? [value] : Array.isArray(value) ? value : []
  if (list.length === 0 || !list.every((entry) => typeof entry === 'string' && entry.length > 0)) {
    throw new TesseraError('config_invalid', 'audience must be a non-empty string or list')
  }
  return list as string[]
}

function isNumericDate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

/**
 * Validates a leeway option.
 *
 * @throws TesseraError `config_invalid` when it is not a number from 0 to {@link MAX_LEEWAY}
 */
export function checkLeeway(leeway: number): number {
  if (typeof leeway !== 'number' || !Number.isFinite(leeway) || leeway < 0 || leeway > MAX_LEEWAY) {
    throw new TesseraError('config_invalid', `leeway must be 0 to ${MAX_LEEWAY} seconds`)
  }
  return leeway
}
