import { availableParallelism } from 'node:os'
import { pbkdf2, scrypt, createHash, timingSafeEqual } from 'node:crypto'
import {
  hash as argon2Hash,
  verify as argon2Verify,
  parseOptions as argon2ParseOptions,
  type Algorithm,
  type Options as Argon2Options,
} from '@node-rs/argon2'
import { verify as bcryptVerify } from '@node-rs/bcrypt'
import { TesseraError, isTesseraError } from '../core/errors.js'
import { isWellFormedPassword, normalizePassword } from './password-policy.js'

export {
  checkPasswordPolicy,
  isCommonPassword,
  isWellFormedPassword,
  normalizePassword,
  type PasswordPolicyOptions,
  type PasswordPolicyReason,
  type PasswordPolicyResult,
} from './password-policy.js'

/** argon2id cost parameters of new hashes. */
export interface Argon2Params {
  /**
   * Memory in KiB.
   * @default 19456
   */
  memoryCost?: number
  /**
   * Passes over memory.
   * @default 2
   */
  timeCost?: number
  /**
   * Lanes.
   * @default 1
   */
  parallelism?: number
}

/** Options of {@link createPasswordHasher}. */
export interface PasswordHasherOptions {
  /** Parameters of new argon2id hashes (OWASP's minimum: m=19456 KiB, t=2, p=1). */
  argon2?: Argon2Params
  /**
   * Most hash computations (of any format) running at once; the rest wait in a queue. Each runs on
   * a libuv worker thread, so the event loop stays free; bounding them keeps a login storm from
   * taking every core and every libuv thread (which file and DNS work share) from other requests.
   * @default the number of cores (`os.availableParallelism()`), at most 4 (libuv's default pool)
   */
  concurrency?: number
  /**
   * Most computations waiting for a slot; past it, hashing and verifying throw `overloaded` at
   * once instead of queueing, so that a storm gets fast 503s rather than ever longer waits (at
   * 40 verifications per second, 1000 waiting is 25 s).
   * @default 1000
   */
  maxQueued?: number
}

/** A configured hasher; {@link hashPassword} and friends use one with the default options. */
export interface PasswordHasher {
  /** Hashes a password as an argon2id PHC string (after NFKC normalisation). */
  hash(password: string): Promise<string>
  /**
   * True when `password` matches `storedHash` in any supported format. Never throws on a stored
   * value: a malformed or unknown one is `false`.
   */
  verify(password: string, storedHash: string): Promise<boolean>
  /** True unless `storedHash` is argon2id with this hasher's current parameters. */
  needsRehash(storedHash: string): boolean
  /**
   * Spends the time of a real verification against an argon2id hash with the current parameters
   * and resolves `false`: call it when the account does not exist, so that an unknown e-mail and
   * a wrong password take the same time.
   */
  dummyVerify(password: string): Promise<false>
  /** Hash computations running and waiting right now. */
  load(): { running: number; queued: number }
}

/** Options of {@link hashPassword}, {@link verifyPassword}, {@link needsRehash}, {@link dummyVerify}. */
export interface PasswordCallOptions {
  /**
   * The hasher to use.
   * @default a shared hasher with the default options, made on first use
   */
  hasher?: PasswordHasher
}

const ARGON2ID = 2 as Algorithm
const VERSION_0X13 = 1
const DEFAULT_PARAMS = { memoryCost: 19456, timeCost: 2, parallelism: 1 } as const

// SECURITY: a stored hash is data, and a hostile or corrupt one must not pin a core for minutes or
// exhaust memory. Hashes beyond these costs are refused (false) rather than computed.
const LIMITS = {
  argon2MemoryKiB: 262_144,
  argon2Time: 20,
  argon2Parallelism: 16,
  bcryptCost: 16,
  pbkdf2Iterations: 10_000_000,
  scryptN: 2 ** 20,
  scryptR: 32,
  scryptP: 16,
  passwordBytes: 4096,
} as const

// SECURITY: bcrypt reads at most 72 bytes of the password. A longer password could only match
// by its first 72 bytes, so that any other password sharing them would match too: refuse it.
const BCRYPT_MAX_BYTES = 72

/** A small counting semaphore: at most `limit` tasks run, the rest wait in FIFO order. */
class Semaphore {
  private running = 0
  private readonly waiting: Array<() => void> = []

  constructor(
    private readonly limit: number,
    private readonly maxQueued: number,
  ) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) {
      if (this.waiting.length >= this.maxQueued) {
        throw new TesseraError('overloaded', 'password hashing queue is full (maxQueued)')
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve))
    } else {
      this.running++
    }
    try {
      return await task()
    } finally {
      const next = this.waiting.shift()
      if (next === undefined) this.running--
      else next() // hand the slot over without releasing it
    }
  }

  load(): { running: number; queued: number } {
    return { running: this.running, queued: this.waiting.length }
  }
}

type Parsed =
  | { kind: 'argon2'; phc: string }
  | { kind: 'bcrypt'; hash: string; prehash: 'none' | 'sha256' }
  | {
      kind: 'pbkdf2'
      digest: 'sha256' | 'sha1'
      iterations: number
      salt: Buffer
      expected: Buffer
    }
  | { kind: 'scrypt'; n: number; r: number; p: number; salt: Buffer; expected: Buffer }

const B64 = /^[A-Za-z0-9+/]+={0,2}$/
const B64_NOPAD = /^[A-Za-z0-9+/]+$/
const DIGITS = /^[1-9][0-9]{0,9}$/
const BCRYPT = /^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$/

function decodeBase64(text: string, padded: 'padded' | 'unpadded'): Buffer | null {
  if (!(padded === 'padded' ? B64 : B64_NOPAD).test(text)) return null
  const bytes = Buffer.from(text, 'base64')
  // SECURITY: only the canonical encoding is accepted, so one hash has one spelling.
  const again = bytes.toString('base64')
  return (padded === 'padded' ? again : again.replace(/=+$/, '')) === text ? bytes : null
}

function parseArgon2(phc: string): Parsed | null {
  if (!/^\$argon2(id|i|d)\$/.test(phc)) return null
  try {
    const options = argon2ParseOptions(phc)
    if (
      options.memoryCost > LIMITS.argon2MemoryKiB ||
      options.timeCost > LIMITS.argon2Time ||
      options.parallelism > LIMITS.argon2Parallelism
    ) {
      return null
    }
  } catch {
    return null
  }
  return { kind: 'argon2', phc }
}

function parseBcrypt(hash: string, prehash: 'none' | 'sha256'): Parsed | null {
  const match = BCRYPT.exec(hash)
  if (match === null || Number(match[1]) > LIMITS.bcryptCost) return null
  return { kind: 'bcrypt', hash, prehash }
}

// Django: pbkdf2_sha256$<iterations>$<salt>$<base64 of the derived key>, the salt used as text.
function parseDjangoPbkdf2(stored: string, digest: 'sha256' | 'sha1'): Parsed | null {
  const parts = stored.split('$')
  if (parts.length !== 4) return null
  const [, iterationsText = '', saltText = '', hashText = ''] = parts
  if (!DIGITS.test(iterationsText) || saltText === '') return null
  const iterations = Number(iterationsText)
  const expected = decodeBase64(hashText, 'padded')
  const size = digest === 'sha256' ? 32 : 20
  if (iterations > LIMITS.pbkdf2Iterations || expected === null || expected.length !== size) {
    return null
  }
  return { kind: 'pbkdf2', digest, iterations, salt: Buffer.from(saltText, 'utf8'), expected }
}

// Django: scrypt$<salt>$<n>$<r>$<p>$<base64 of a 64-byte key>, the salt used as text.
function parseDjangoScrypt(stored: string): Parsed | null {
  const parts = stored.split('$')
  if (parts.length !== 6) return null
  const [, saltText = '', nText = '', rText = '', pText = '', hashText = ''] = parts
  if (saltText === '' || ![nText, rText, pText].every((part) => DIGITS.test(part))) return null
  const expected = decodeBase64(hashText, 'padded')
  if (expected === null || expected.length !== 64) return null
  return scryptParams(Number(nText), Number(rText), Number(pText), Buffer.from(saltText), expected)
}

// passlib: $scrypt$ln=<log2 N>,r=<r>,p=<p>$<base64 salt>$<base64 key>, unpadded standard base64.
function parsePasslibScrypt(stored: string): Parsed | null {
  const match =
    /^\$scrypt\$ln=([1-9][0-9]?),r=([1-9][0-9]*),p=([1-9][0-9]*)\$([^$]+)\$([^$]+)$/.exec(stored)
  if (match === null) return null
  const [, lnText = '', rText = '', pText = '', saltText = '', hashText = ''] = match
  const salt = decodeBase64(saltText, 'unpadded')
  const expected = decodeBase64(hashText, 'unpadded')
  if (salt === null || expected === null || expected.length < 16 || expected.length > 64) {
    return null
  }
  const ln = Number(lnText)
  if (ln > 30) return null
  return scryptParams(2 ** ln, Number(rText), Number(pText), salt, expected)
}

function scryptParams(
  n: number,
  r: number,
  p: number,
  salt: Buffer,
  expected: Buffer,
): Parsed | null {
  const powerOfTwo = n > 1 && (n & (n - 1)) === 0
  if (!powerOfTwo || n > LIMITS.scryptN || r > LIMITS.scryptR || p > LIMITS.scryptP) return null
  return { kind: 'scrypt', n, r, p, salt, expected }
}

/** Recognises a stored hash; `null` for anything unknown or malformed. */
function parseStoredHash(stored: unknown): Parsed | null {
  if (typeof stored !== 'string' || stored.length > 1024) return null
  if (stored.startsWith('$argon2')) return parseArgon2(stored)
  if (stored.startsWith('argon2$argon2')) return parseArgon2(stored.slice('argon2'.length))
  if (stored.startsWith('$2')) return parseBcrypt(stored, 'none')
  if (stored.startsWith('bcrypt$$2')) return parseBcrypt(stored.slice('bcrypt$'.length), 'none')
  if (stored.startsWith('bcrypt_sha256$$2')) {
    return parseBcrypt(stored.slice('bcrypt_sha256$'.length), 'sha256')
  }
  if (stored.startsWith('pbkdf2_sha256$')) return parseDjangoPbkdf2(stored, 'sha256')
  if (stored.startsWith('pbkdf2_sha1$')) return parseDjangoPbkdf2(stored, 'sha1')
  if (stored.startsWith('scrypt$')) return parseDjangoScrypt(stored)
  if (stored.startsWith('$scrypt$')) return parsePasslibScrypt(stored)
  return null
}

function pbkdf2Async(
  password: Buffer,
  salt: Buffer,
  iterations: number,
  length: number,
  digest: string,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    pbkdf2(password, salt, iterations, length, digest, (error, key) => {
      if (error === null) resolve(key)
      else reject(error)
    })
  })
}

function scryptAsync(
  password: Buffer,
  parsed: { n: number; r: number; p: number; salt: Buffer; expected: Buffer },
): Promise<Buffer> {
  const { n, r, p, salt, expected } = parsed
  return new Promise((resolve, reject) => {
    const maxmem = 128 * n * r * 2 + 1024 * 1024
    scrypt(password, salt, expected.length, { N: n, r, p, maxmem }, (error, key) => {
      if (error === null) resolve(key)
      else reject(error)
    })
  })
}

function equalBytes(a: Buffer, b: Buffer): boolean {
  // SECURITY: constant-time comparison of derived keys; the lengths are public (from the hash).
  return a.length === b.length && timingSafeEqual(a, b)
}

async function verifyParsed(parsed: Parsed, password: Buffer): Promise<boolean> {
  switch (parsed.kind) {
    case 'argon2':
      return argon2Verify(parsed.phc, password)
    case 'bcrypt': {
      if (parsed.prehash === 'sha256') {
        // Django's bcrypt_sha256: bcrypt over the hex SHA-256 of the password (64 bytes).
        const hex = Buffer.from(createHash('sha256').update(password).digest('hex'), 'ascii')
        return bcryptVerify(hex, parsed.hash)
      }
      // SECURITY: no login is decided by the first 72 bytes only (see BCRYPT_MAX_BYTES); a NUL
      // byte ends the password in C implementations of bcrypt, so it is refused too.
      if (password.length > BCRYPT_MAX_BYTES || password.includes(0)) return false
      return bcryptVerify(password, parsed.hash)
    }
    case 'pbkdf2': {
      const key = await pbkdf2Async(
        password,
        parsed.salt,
        parsed.iterations,
        parsed.expected.length,
        parsed.digest,
      )
      return equalBytes(key, parsed.expected)
    }
    case 'scrypt':
      return equalBytes(await scryptAsync(password, parsed), parsed.expected)
  }
}

/**
 * The byte strings a typed password is checked as: its NFKC form (what tessera hashes), and, when
 * different, the text exactly as typed (what Django, Rails, Laravel and PHP hashed).
 */
function candidates(password: string): Buffer[] {
  const normalized = normalizePassword(password)
  const list = [Buffer.from(normalized, 'utf8')]
  if (normalized !== password) list.push(Buffer.from(password, 'utf8'))
  return list
}

function usablePassword(password: unknown): password is string {
  return (
    typeof password === 'string' &&
    isWellFormedPassword(password) &&
    Buffer.byteLength(password, 'utf8') <= LIMITS.passwordBytes
  )
}

function positiveInteger(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new TesseraError('config_invalid', `${name} must be an integer from 1 to ${max}`)
  }
  return value
}

/**
 * Makes a password hasher: argon2id for new hashes, many formats for verification, and a bounded
 * number of computations in flight.
 *
 * @throws TesseraError `config_invalid` when a parameter is out of range.
 * @example
 * ```ts
 * const hasher = createPasswordHasher({ concurrency: 4 })
 * const stored = await hasher.hash('correct horse battery staple')
 * await hasher.verify('correct horse battery staple', stored) // true
 * ```
 */
export function createPasswordHasher(options: PasswordHasherOptions = {}): PasswordHasher {
  const params = {
    memoryCost: positiveInteger(
      'argon2.memoryCost',
      options.argon2?.memoryCost ?? DEFAULT_PARAMS.memoryCost,
      LIMITS.argon2MemoryKiB,
    ),
    timeCost: positiveInteger(
      'argon2.timeCost',
      options.argon2?.timeCost ?? DEFAULT_PARAMS.timeCost,
      LIMITS.argon2Time,
    ),
    parallelism: positiveInteger(
      'argon2.parallelism',
      options.argon2?.parallelism ?? DEFAULT_PARAMS.parallelism,
      LIMITS.argon2Parallelism,
    ),
  }
  if (params.memoryCost < 8 * params.parallelism) {
    throw new TesseraError('config_invalid', 'argon2.memoryCost must be at least 8 × parallelism')
  }
  const concurrency = positiveInteger(
    'concurrency',
    options.concurrency ?? Math.min(availableParallelism(), 4),
    256,
  )
  const maxQueued = options.maxQueued ?? 1000
  if (!Number.isInteger(maxQueued) || maxQueued < 0) {
    throw new TesseraError('config_invalid', 'maxQueued must be a non-negative integer')
  }
  const argon2Options: Argon2Options = { ...params, algorithm: ARGON2ID, outputLen: 32 }
  const semaphore = new Semaphore(concurrency, maxQueued)
  let dummy: Promise<string> | undefined

  const hasher: PasswordHasher = {
    async hash(password: string): Promise<string> {
      if (typeof password !== 'string' || !isWellFormedPassword(password)) {
        throw new TesseraError('invalid_argument', 'password must be a well-formed string')
      }
      const bytes = Buffer.from(normalizePassword(password), 'utf8')
      return semaphore.run(() => argon2Hash(bytes, argon2Options))
    },

    async verify(password: string, storedHash: string): Promise<boolean> {
      const parsed = parseStoredHash(storedHash)
      if (parsed === null || !usablePassword(password)) return false
      for (const candidate of candidates(password)) {
        try {
          if (await semaphore.run(() => verifyParsed(parsed, candidate))) return true
        } catch (error) {
          // SECURITY: an overloaded hasher is not a wrong password (it must not count as a failed
          // login); anything else is a stored value the library cannot read: a non-match.
          if (isTesseraError(error, 'overloaded')) throw error
          return false
        }
      }
      return false
    },

    needsRehash(storedHash: string): boolean {
      if (typeof storedHash !== 'string' || !storedHash.startsWith('$argon2id$')) return true
      try {
        const parsed = argon2ParseOptions(storedHash)
        return !(
          parsed.algorithm === ARGON2ID &&
          (parsed.version as number) === VERSION_0X13 &&
          parsed.memoryCost === params.memoryCost &&
          parsed.timeCost === params.timeCost &&
          parsed.parallelism === params.parallelism &&
          parsed.outputLen === 32 &&
          parsed.saltLen >= 16
        )
      } catch {
        return true
      }
    },

    async dummyVerify(password: string): Promise<false> {
      // SECURITY: the same work as a real argon2id verification (ASVS V2.2 / account enumeration):
      // one computation per candidate, like verify() on an account with a current hash.
      // The dummy hash is made once per hasher, outside the queue (a slot waiting on it could
      // otherwise wait on itself).
      const stored = (dummy ??= argon2Hash('tessera dummy password', argon2Options))
      if (!usablePassword(password)) return false
      for (const candidate of candidates(password)) {
        await semaphore.run(async () => argon2Verify(await stored, candidate))
      }
      return false
    },

    load(): { running: number; queued: number } {
      return semaphore.load()
    },
  }
  return hasher
}

let defaultHasher: PasswordHasher | undefined

function pick(options: PasswordCallOptions | undefined): PasswordHasher {
  if (options?.hasher !== undefined) return options.hasher
  defaultHasher ??= createPasswordHasher()
  return defaultHasher
}

/**
 * Hashes a password as an argon2id PHC string (m=19456 KiB, t=2, p=1, 16-byte salt, 32-byte key)
 * off the event loop. The password is NFKC-normalised first and never truncated; check it with
 * {@link checkPasswordPolicy} before.
 *
 * @throws TesseraError `invalid_argument` when `password` is not a well-formed string;
 *   `overloaded` when more than `maxQueued` computations are waiting.
 * @example
 * ```ts
 * import { hashPassword, verifyPassword } from 'tessera-auth/password'
 * const stored = await hashPassword('correct horse battery staple')
 * ```
 */
export function hashPassword(password: string, options?: PasswordCallOptions): Promise<string> {
  return pick(options).hash(password)
}

/**
 * True when `password` matches `storedHash`. Accepts argon2id/argon2i/argon2d PHC strings,
 * bcrypt `$2a$`/`$2b$`/`$2y$`, Django's `pbkdf2_sha256$`, `pbkdf2_sha1$`, `argon2$`, `bcrypt$`,
 * `bcrypt_sha256$` and `scrypt$`, and passlib's `$scrypt$`. Unknown or malformed stored values
 * give `false`, never an exception. bcrypt hashes never match a password over 72 bytes.
 *
 * @throws TesseraError `overloaded` when more than `maxQueued` computations are waiting (never
 *   because of the stored value).
 * @example
 * ```ts
 * if (await verifyPassword(password, user.passwordHash) && needsRehash(user.passwordHash)) {
 *   await saveHash(user.id, await hashPassword(password))
 * }
 * ```
 */
export function verifyPassword(
  password: string,
  storedHash: string,
  options?: PasswordCallOptions,
): Promise<boolean> {
  return pick(options).verify(password, storedHash)
}

/** True unless `storedHash` is argon2id with the current parameters: rehash it after a login. */
export function needsRehash(storedHash: string, options?: PasswordCallOptions): boolean {
  return pick(options).needsRehash(storedHash)
}

/**
 * Costs what {@link verifyPassword} costs on a current hash, and resolves `false`: call it when
 * no account matches, so that response time does not tell which e-mails exist.
 */
export function dummyVerify(password: string, options?: PasswordCallOptions): Promise<false> {
  return pick(options).dummyVerify(password)
}
