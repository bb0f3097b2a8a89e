import { createHash, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto'
import { TesseraError } from './errors.js'

/**
 * A purpose separates keys: a value made for one purpose never verifies for another.
 * The named ones are those tessera uses itself; any other non-empty string is allowed.
 */
export type KeyPurpose =
  'session' | 'csrf' | 'seal' | 'reset' | 'jwt-hs256' | 'admin-session' | (string & {})

/** One derived key of a keyring, for one purpose. */
export interface PurposeKey {
  /** Short id of the secret this key was derived from (8 base64url characters). */
  readonly kid: string
  /** The 32 derived key bytes. */
  readonly bytes: Uint8Array
  /** The same bytes as a KeyObject, for `createHmac` and ciphers without a copy per call. */
  readonly keyObject: KeyObject
  /** True for the key of the current secret; false for a fallback. */
  readonly current: boolean
}

/** Options of {@link createKeyring}. */
export interface KeyringOptions {
  /** Older secrets that still verify (rotation). The current secret always signs. @default [] */
  fallbacks?: readonly string[]
  /**
   * `strict` refuses short, repeated or sample secrets. `weak` accepts them with a warning, for
   * development and tests only; the server and adapters choose it only when `NODE_ENV` is
   * `development` or `test`. @default 'strict'
   */
  policy?: 'strict' | 'weak'
  /** Receives the warning of the `weak` policy. @default console.warn */
  onWarning?: (message: string) => void
}

/** A current secret and its fallbacks, with one derived key per purpose. */
export interface Keyring {
  /** Key id of the current secret. */
  readonly currentKid: string
  /** Key ids of all secrets, current first. */
  readonly kids: readonly string[]
  /** The current key for a purpose: the one that signs, seals and encrypts. */
  key(purpose: KeyPurpose): PurposeKey
  /** All keys for a purpose, current first, then fallbacks in the order given. */
  keys(purpose: KeyPurpose): readonly PurposeKey[]
  /** The key for a purpose whose id is `kid`, or `undefined` (never a linear search). */
  find(purpose: KeyPurpose, kid: string): PurposeKey | undefined
}

/** The smallest accepted secret, in bytes (UTF-8). */
export const MIN_SECRET_BYTES = 32

const HOW_TO_GENERATE =
  "generate one with `npx tessera-auth secret` (or `node -e \"console.log(require('node:crypto').randomBytes(32).toString('base64url'))\"`)"

// Secrets copied from tutorials, READMEs and framework defaults. A secret is refused when it is
// one of them in disguise (see `sampleVariant`); a strong secret that merely contains a short one
// (`test`, `cats`) is not.
const SAMPLE_SECRETS = new Set([
  'keyboard cat',
  'keyboard-cat',
  'change-this-secret-key',
  'change-this-secret',
  'change-me',
  'changeme',
  'change_me',
  'changethis',
  'secret',
  'secretkey',
  'secret-key',
  'secret_key',
  'my-secret',
  'mysecret',
  'my_secret',
  'mysecretkey',
  'my-secret-key',
  'my_secret_key',
  'your-secret-key',
  'your_secret_key',
  'yoursecretkey',
  'your-256-bit-secret',
  'your-jwt-secret',
  'jwt-secret',
  'jwt_secret',
  'jwtsecret',
  'session-secret',
  'session_secret',
  'sessionsecret',
  'super-secret',
  'supersecret',
  'super_secret',
  'supersecretkey',
  'super-secret-key',
  'password',
  'test',
  'development',
  'default',
  'shhhhh',
  'shhhhhhared-secret',
  'cats',
  'a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t0u1v2w3x4y5z6',
  'your-super-secret-jwt-token-with-at-least-32-characters-long',
  'super-secret-jwt-token-with-at-least-32-characters-long',
  'complex_password_at_least_32_characters_long',
  'this-is-a-very-long-secret-key-for-development',
  'replace-with-a-long-random-secret',
  'please-change-this-secret-in-production',
  'insecure-secret-change-me-in-production-please',
  'django-insecure-change-me',
  'thisisasecretkeythatshouldbechanged',
  'some-secret-string-at-least-32-characters-long',
  'complex-password-at-least-32-characters-long',
])

/** Lower case, NFKC, letters and digits only: `Change_This-Secret.KEY` is `changethissecretkey`. */
function canonicalSecret(value: string): string {
  return value
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, '')
}

const CANONICAL_SAMPLES = [...new Set([...SAMPLE_SECRETS].map(canonicalSecret))]
  .filter((sample) => sample.length >= 4)
  // Longest first, so that `changethissecretkey` is removed before `changethissecret`.
  .sort((a, b) => b.length - a.length)

/** The shortest unit whose repetition (a partial last copy allowed) makes `value`. */
function period(value: string): string {
  for (let size = 1; size <= value.length / 2; size++) {
    let repeats = true
    for (let i = size; i < value.length && repeats; i++) repeats = value[i] === value[i - size]
    if (repeats) return value.slice(0, size)
  }
  return value
}

/**
 * True when what is left around a sample is filler: nothing, digits, a few characters, or a
 * piece of the sample itself (a repetition cut short).
 */
function isFiller(rest: string, sample: string): boolean {
  return rest === '' || /^\p{N}+$/u.test(rest) || new Set(rest).size < 6 || sample.includes(rest)
}

/**
 * True when `secret` is a published sample in disguise: in any case, with separators or spaces
 * added or removed, repeated, or padded with filler (digits, a repeated character, a few
 * characters). Compared on the canonical form (letters and digits, lower case).
 */
function sampleVariant(secret: string): boolean {
  const canonical = canonicalSecret(secret)
  if (canonical === '') return false
  for (const sample of CANONICAL_SAMPLES) {
    if (!canonical.includes(sample)) continue
    // SECURITY: `change-this-secret-key` passed once padded or repeated past 32 bytes (issue
    // 12): whatever surrounds the sample must itself carry entropy for the secret to count.
    if (isFiller(canonical.split(sample).join(''), sample)) return true
  }
  return false
}

/**
 * Why `secret` is weak, or `null` when it is acceptable. Checks length (UTF-8 bytes), a single
 * repeated character or short repeated pattern, and a list of sample secrets from popular
 * tutorials and templates, also in disguise (case, separators, padding, repetition).
 */
export function secretWeakness(secret: string): string | null {
  const trimmed = secret.trim()
  if (trimmed.length === 0) return 'is empty'
  if (SAMPLE_SECRETS.has(trimmed.toLowerCase()) || sampleVariant(trimmed)) {
    return 'is a published sample secret (or one in disguise)'
  }
  if (new Set(trimmed).size === 1) return 'is one repeated character'
  // SECURITY: a short pattern repeated to length (`abcdabcd…`, `secretsecret…`) has the
  // entropy of the pattern, not of its length.
  const canonical = canonicalSecret(trimmed)
  if (canonical.length >= 8 && period(canonical).length <= 16 && period(canonical) !== canonical) {
    return 'is a short pattern repeated'
  }
  const bytes = Buffer.byteLength(secret, 'utf8')
  if (bytes < MIN_SECRET_BYTES)
    return `is ${bytes} bytes long; at least ${MIN_SECRET_BYTES} are needed`
  return null
}

/**
 * Builds a keyring from one current secret and any number of fallbacks.
 *
 * Each purpose gets its own 32-byte key through HKDF-SHA256, so a value made for one purpose
 * never verifies for another, and each secret has a short key id that travels with signed and
 * sealed values so a verifier picks the right key at once.
 *
 * @throws TesseraError `config_invalid` when a secret is missing or weak (under the strict policy)
 * @example
 * ```ts
 * const keyring = createKeyring(process.env.TESSERA_SECRET!, {
 *   fallbacks: (process.env.TESSERA_SECRET_FALLBACKS ?? '').split(',').filter(Boolean),
 * })
 * const signed = signValue(keyring, 'session', token)
 * ```
 */
export function createKeyring(secret: string, options: KeyringOptions = {}): Keyring {
  const policy = options.policy ?? 'strict'
  if (policy !== 'strict' && policy !== 'weak') {
    throw new TesseraError('config_invalid', 'keyring policy must be "strict" or "weak"')
  }
  const secrets = [secret, ...(options.fallbacks ?? [])]
  const warn = options.onWarning ?? ((message: string) => console.warn(message))
  secrets.forEach((candidate, index) => {
    const label = index === 0 ? 'the secret' : `fallback secret #${index}`
    if (typeof candidate !== 'string' || candidate.trim().length === 0) {
      throw new TesseraError('config_invalid', `${label} is missing; ${HOW_TO_GENERATE}`)
    }
    const weakness = secretWeakness(candidate)
    if (weakness === null) return
    // SECURITY: a guessable secret lets anyone forge sessions (OWASP ASVS 6.4.1); refuse it
    // unless the caller explicitly chose the development policy.
    if (policy === 'strict') {
      throw new TesseraError('config_invalid', `${label} ${weakness}; ${HOW_TO_GENERATE}`)
    }
    warn(`tessera: ${label} ${weakness}; acceptable only in development and tests`)
  })

  const sources = dedupe(secrets).map((value) => Buffer.from(value, 'utf8'))
  const kids = sources.map(keyId)
  const cache = new Map<string, { list: PurposeKey[]; byKid: Map<string, PurposeKey> }>()

  function entry(purpose: KeyPurpose): { list: PurposeKey[]; byKid: Map<string, PurposeKey> } {
    let found = cache.get(purpose)
    if (found !== undefined) return found
    if (typeof purpose !== 'string' || purpose.length === 0) {
      throw new TesseraError('invalid_argument', 'key purpose must be a non-empty string')
    }
    const list = sources.map((ikm, index): PurposeKey => {
      const bytes = derive(ikm, `purpose:${purpose}`)
      return {
        kid: kids[index] as string,
        bytes,
        keyObject: createSecretKey(bytes),
        current: index === 0,
      }
    })
    const byKid = new Map<string, PurposeKey>()
    // Two secrets with one id would be a 48-bit collision; the first (newest) wins.
    for (const key of list) if (!byKid.has(key.kid)) byKid.set(key.kid, key)
    found = { list, byKid }
    cache.set(purpose, found)
    return found
  }

  return {
    currentKid: kids[0] as string,
    kids,
    key: (purpose) => entry(purpose).list[0] as PurposeKey,
    keys: (purpose) => entry(purpose).list,
    find: (purpose, kid) => entry(purpose).byKid.get(kid),
  }
}

function derive(ikm: Uint8Array, info: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, 'tessera/v1', info, 32))
}

function keyId(ikm: Uint8Array): string {
  // The id is a hash of an HKDF output, so it reveals nothing usable about the secret.
  return createHash('sha256').update(derive(ikm, 'key-id')).digest('base64url').slice(0, 8)
}

function dedupe(values: readonly string[]): string[] {
  return [...new Set(values)]
}
