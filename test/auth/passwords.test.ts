import { createHash, pbkdf2Sync, randomBytes, scryptSync } from 'node:crypto'
import bcrypt from 'bcryptjs'
import {
  hashSync as argon2HashSync,
  parseOptions,
  type Algorithm,
  type Version,
} from '@node-rs/argon2'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  createPasswordHasher,
  dummyVerify,
  hashPassword,
  needsRehash,
  verifyPassword,
  type PasswordHasher,
} from '../../src/auth/passwords.js'

// Cheap argon2id parameters for cases that are not about the defaults (the suite runs on 2 cores).
function fastHasher(): PasswordHasher {
  return createPasswordHasher({ argon2: { memoryCost: 1024, timeCost: 1 } })
}

const ARGON2I = 1 as Algorithm
const ARGON2D = 0 as Algorithm

/** Django's PBKDF2PasswordHasher.encode, from its public algorithm. */
function djangoPbkdf2(
  password: string,
  salt: string,
  iterations: number,
  digest = 'sha256',
): string {
  const size = digest === 'sha256' ? 32 : 20
  const key = pbkdf2Sync(Buffer.from(password, 'utf8'), Buffer.from(salt), iterations, size, digest)
  return `pbkdf2_${digest}$${iterations}$${salt}$${key.toString('base64')}`
}

/** Django's ScryptPasswordHasher.encode (dklen 64). */
function djangoScrypt(password: string, salt: string, n: number, r: number, p: number): string {
  const key = scryptSync(Buffer.from(password, 'utf8'), Buffer.from(salt), 64, {
    N: n,
    r,
    p,
    maxmem: 256 * n * r + 1024 * 1024,
  })
  return `scrypt$${salt}$${n}$${r}$${p}$${key.toString('base64')}`
}

/** passlib's scrypt format: $scrypt$ln=…,r=…,p=…$<b64 salt>$<b64 key>, unpadded. */
function passlibScrypt(password: string, ln: number, r: number, p: number): string {
  const salt = randomBytes(16)
  const key = scryptSync(password, salt, 32, { N: 2 ** ln, r, p })
  const b64 = (bytes: Buffer): string => bytes.toString('base64').replace(/=+$/, '')
  return `$scrypt$ln=${ln},r=${r},p=${p}$${b64(salt)}$${b64(key)}`
}

describe('hashPassword (defaults)', () => {
  it('makes argon2id v19 with m=19456, t=2, p=1 and a 16-byte salt, and verifies it', async () => {
    const stored = await hashPassword('correct horse battery staple')
    expect(stored.startsWith('$argon2id$v=19$m=19456,t=2,p=1$')).toBe(true)
    const options = parseOptions(stored)
    expect(options.saltLen).toBe(16)
    expect(options.outputLen).toBe(32)
    expect(await verifyPassword('correct horse battery staple', stored)).toBe(true)
    expect(await verifyPassword('correct horse battery stapl', stored)).toBe(false)
    expect(needsRehash(stored)).toBe(false)
  })

  it('uses a new salt each time', async () => {
    const hasher = fastHasher()
    expect(await hasher.hash('same password')).not.toBe(await hasher.hash('same password'))
  })

  it('refuses a password with a lone surrogate instead of hashing it as U+FFFD', async () => {
    await expect(fastHasher().hash('abc\uD800def')).rejects.toMatchObject({
      code: 'invalid_argument',
    })
  })
})

describe('verifyPassword: hashes made by other systems', () => {
  it('Django pbkdf2_sha256 and pbkdf2_sha1, computed from the algorithm', async () => {
    const hasher = fastHasher()
    const stored = djangoPbkdf2('lètmein', 'seasalt', 1000)
    expect(await hasher.verify('lètmein', stored)).toBe(true)
    expect(await hasher.verify('letmein', stored)).toBe(false)
    const sha1 = djangoPbkdf2('lètmein', 'seasalt2', 1000, 'sha1')
    expect(await hasher.verify('lètmein', sha1)).toBe(true)
    expect(await hasher.verify('lètmeiN', sha1)).toBe(false)
  })

  it('PBKDF2-HMAC-SHA256 known answer (RFC 7914 §11) in Django format', async () => {
    const key = Buffer.from(
      '55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc',
      'hex',
    )
    const stored = `pbkdf2_sha256$1$salt$${key.toString('base64')}`
    expect(await fastHasher().verify('passwd', stored)).toBe(true)
    expect(await fastHasher().verify('passwd ', stored)).toBe(false)
  })

  it('bcrypt $2a$, $2b$, $2y$ from bcryptjs (a second implementation)', async () => {
    const hasher = fastHasher()
    for (const minor of ['a', 'b'] as const) {
      // bcryptjs writes $2b$; $2a$ is the same computation for passwords under 256 bytes.
      const stored = bcrypt.hashSync('Tr0ub4dor&3', 4).replace(/^\$2b\$/, `$2${minor}$`)
      expect(stored.startsWith(`$2${minor}$04$`)).toBe(true)
      expect(await hasher.verify('Tr0ub4dor&3', stored)).toBe(true)
      expect(await hasher.verify('Tr0ub4dor&4', stored)).toBe(false)
    }
    const y = bcrypt.hashSync('laravel secret', 4).replace(/^\$2b\$/, '$2y$')
    expect(await hasher.verify('laravel secret', y)).toBe(true)
  })

  it('bcrypt known answer from the PHP manual (password_verify)', async () => {
    const stored = '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a'
    expect(await fastHasher().verify('rasmuslerdorf', stored)).toBe(true)
    expect(await fastHasher().verify('rasmuslerdorF', stored)).toBe(false)
  })

  it('Django bcrypt$ and bcrypt_sha256$ (SHA-256 hex pre-hash, so long passwords work)', async () => {
    const hasher = fastHasher()
    const plain = `bcrypt$${bcrypt.hashSync('django bcrypt', 4)}`
    expect(await hasher.verify('django bcrypt', plain)).toBe(true)
    const long = 'ß'.repeat(100) // 200 bytes
    const hex = createHash('sha256').update(long, 'utf8').digest('hex')
    const sha = `bcrypt_sha256$${bcrypt.hashSync(hex, 4)}`
    expect(await hasher.verify(long, sha)).toBe(true)
    expect(await hasher.verify(`${long}x`, sha)).toBe(false)
  })

  it('scrypt known answer (RFC 7914 §12) in Django format, and Django scrypt from node:crypto', async () => {
    const hasher = fastHasher()
    const rfc = Buffer.from(
      'fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640',
      'hex',
    )
    expect(await hasher.verify('password', `scrypt$NaCl$1024$8$16$${rfc.toString('base64')}`)).toBe(
      true,
    )
    const stored = djangoScrypt('scrypt me', 'abcdefgh', 2 ** 14, 8, 1)
    expect(await hasher.verify('scrypt me', stored)).toBe(true)
    expect(await hasher.verify('scrypt mE', stored)).toBe(false)
  })

  it('passlib $scrypt$ format', async () => {
    const stored = passlibScrypt('passlib pw', 12, 8, 1)
    expect(await fastHasher().verify('passlib pw', stored)).toBe(true)
    expect(await fastHasher().verify('passlib pW', stored)).toBe(false)
  })

  it('argon2i known answer from the reference implementation README', async () => {
    const stored = '$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG'
    expect(await fastHasher().verify('password', stored)).toBe(true)
    expect(await fastHasher().verify('Password', stored)).toBe(false)
  })

  it('argon2i, argon2d and argon2id with other parameters, and Django argon2$', async () => {
    const hasher = fastHasher()
    const i = argon2HashSync('other params', { algorithm: ARGON2I, memoryCost: 2048, timeCost: 3 })
    const d = argon2HashSync('other params', {
      algorithm: ARGON2D,
      memoryCost: 4096,
      parallelism: 2,
    })
    const id = argon2HashSync('other params', { memoryCost: 8192, timeCost: 1, parallelism: 2 })
    // Argon2 1.0 (v=16), and Django 1.10's argon2$ format, which wrote no version field.
    const v16 = argon2HashSync('other params', {
      algorithm: ARGON2I,
      version: 0 as Version,
      memoryCost: 512,
      parallelism: 2,
    })
    expect(v16).toContain('$v=16$')
    const django110 = `argon2${v16.replace('$v=16', '')}`
    for (const stored of [i, d, id, `argon2${id}`, `argon2${i}`, v16, django110]) {
      expect(await hasher.verify('other params', stored)).toBe(true)
      expect(await hasher.verify('other param', stored)).toBe(false)
    }
  })
})

describe('verifyPassword: bcrypt never decides on the first 72 bytes', () => {
  it('refuses a longer password that shares the first 72 bytes (which bcryptjs accepts)', async () => {
    const hasher = fastHasher()
    const exact = 'a'.repeat(72)
    const stored = bcrypt.hashSync(exact, 4)
    expect(await hasher.verify(exact, stored)).toBe(true)
    const longer = `${exact}anything after byte 72`
    expect(bcrypt.compareSync(longer, stored)).toBe(true) // the danger, shown by bcryptjs
    expect(await hasher.verify(longer, stored)).toBe(false)
  })

  it('counts bytes, not characters: 36 two-byte characters fit, 37 do not', async () => {
    const hasher = fastHasher()
    const fits = 'é'.repeat(36)
    expect(await hasher.verify(fits, bcrypt.hashSync(fits, 4))).toBe(true)
    const over = 'é'.repeat(37)
    expect(await hasher.verify(over, bcrypt.hashSync(over, 4))).toBe(false)
  })

  it('refuses a password with a NUL byte against bcrypt', async () => {
    const stored = bcrypt.hashSync('abc\u0000def', 4)
    expect(await fastHasher().verify('abc\u0000def', stored)).toBe(false)
  })
})

describe('verifyPassword: normalisation', () => {
  it('NFKC: the full-width and the ASCII spelling are one password', async () => {
    const hasher = fastHasher()
    const stored = await hasher.hash('ｐａｓｓｗｏｒｄ１２３４ｘ')
    expect(await hasher.verify('password1234x', stored)).toBe(true)
    const composed = await hasher.hash('caf\u00e9 au lait!!')
    expect(await hasher.verify('cafe\u0301 au lait!!', composed)).toBe(true)
  })

  it('checks legacy hashes against the text as typed too (Django does not normalise)', async () => {
    const hasher = fastHasher()
    const typed = 'ﬁnance ｐａｓｓ'
    const stored = djangoPbkdf2(typed, 'salt1234', 1000)
    expect(await hasher.verify(typed, stored)).toBe(true)
    expect(await hasher.verify('finance pass', stored)).toBe(false)
  })
})

describe('verifyPassword: never throws on a stored value', () => {
  it('unknown and malformed values are false', async () => {
    const hasher = fastHasher()
    const good = djangoPbkdf2('pw', 'salt', 1000)
    const cases: unknown[] = [
      '',
      'plaintext',
      'md5$salt$abc',
      '$2x$04$abcdefghijklmnopqrstuuNwHB9Q0pXf3tSx1XkHHSCO5Y6h0f8hNq',
      '$2b$04$short',
      '$2b$32$' + 'a'.repeat(53),
      '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ',
      '$argon2id$v=19$m=999999999,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG',
      good.replace('$1000$', '$01000$'),
      good.replace('$1000$', '$99999999999$'),
      good.slice(0, -2),
      `${good}$extra`,
      'scrypt$salt$1000$8$1$' + 'A'.repeat(88),
      '$scrypt$ln=40,r=8,p=1$c2FsdA$' + 'A'.repeat(43),
      null,
      undefined,
      42,
      { toString: () => good },
    ]
    for (const stored of cases) {
      await expect(hasher.verify('pw', stored as string)).resolves.toBe(false)
    }
    expect(await hasher.verify('pw', good)).toBe(true)
  })

  it('accepts only the canonical base64 of a key (one hash, one spelling)', async () => {
    const hasher = fastHasher()
    const stored = djangoPbkdf2('pw', 'salt', 1000)
    const b64 = stored.split('$')[3]!
    // 32 bytes leave 2 unused bits in the last character: setting them decodes to the same bytes.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
    const last = b64[42]!
    const twin = alphabet[alphabet.indexOf(last) | 1]!
    expect(twin).not.toBe(last)
    const forged = stored.slice(0, -2) + twin + '='
    expect(Buffer.from(forged.split('$')[3]!, 'base64')).toEqual(Buffer.from(b64, 'base64'))
    expect(await hasher.verify('pw', stored)).toBe(true)
    expect(await hasher.verify('pw', forged)).toBe(false)
  })

  it('property: random stored values behind known prefixes are false and never throw', async () => {
    const hasher = fastHasher()
    const prefixes = [
      '$argon2id$',
      '$argon2i$v=19$',
      'argon2$argon2id$',
      '$2b$04$',
      'bcrypt$$2b$',
      'bcrypt_sha256$$2b$04$',
      'pbkdf2_sha256$1$',
      'pbkdf2_sha1$1$s$',
      'scrypt$s$16$1$1$',
      '$scrypt$ln=4,r=1,p=1$',
      '',
    ]
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...prefixes),
        fc.string({ maxLength: 80 }),
        fc.string({ maxLength: 20 }),
        async (prefix, tail, password) => {
          expect(await hasher.verify(password, prefix + tail)).toBe(false)
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe('needsRehash', () => {
  it('is false only for argon2id with the current parameters', async () => {
    const current = await hashPassword('x'.repeat(12))
    expect(needsRehash(current)).toBe(false)
    const cases = [
      argon2HashSync('x', { memoryCost: 8192, timeCost: 2 }),
      argon2HashSync('x', { memoryCost: 19456, timeCost: 3 }),
      argon2HashSync('x', { memoryCost: 19456, timeCost: 2, parallelism: 2 }),
      argon2HashSync('x', { algorithm: ARGON2I, memoryCost: 19456, timeCost: 2 }),
      argon2HashSync('x', { memoryCost: 19456, timeCost: 2, outputLen: 16 }),
      `argon2${current}`,
      bcrypt.hashSync('x', 4),
      djangoPbkdf2('x', 'salt', 1000),
      'garbage',
      '$argon2id$garbage',
    ]
    for (const stored of cases) expect(needsRehash(stored)).toBe(true)
  })

  it("follows the hasher's own parameters", async () => {
    const hasher = fastHasher()
    const own = await hasher.hash('x'.repeat(12))
    expect(hasher.needsRehash(own)).toBe(false)
    expect(needsRehash(own)).toBe(true)
    expect(hasher.needsRehash(await hashPassword('x'.repeat(12)))).toBe(true)
  })
})

describe('dummyVerify and bounded concurrency', () => {
  it('dummyVerify resolves false after an argon2id verification through the same queue', async () => {
    const hasher = createPasswordHasher({
      argon2: { memoryCost: 1024, timeCost: 1 },
      concurrency: 1,
    })
    expect(await hasher.dummyVerify('anything')).toBe(false)
    const pending = hasher.dummyVerify('anything')
    // The dummy work takes a slot like a real verification does.
    expect(hasher.load().running).toBe(1)
    expect(await pending).toBe(false)
    expect(await dummyVerify('wrong')).toBe(false)
  })

  it('never runs more computations than `concurrency`; the rest queue', async () => {
    const hasher = createPasswordHasher({
      argon2: { memoryCost: 1024, timeCost: 1 },
      concurrency: 2,
    })
    const stored = await hasher.hash('queued password')
    let maxRunning = 0
    let sawQueue = false
    const all = Array.from({ length: 12 }, () => hasher.verify('queued password', stored))
    const timer = setInterval(() => {
      const { running, queued } = hasher.load()
      maxRunning = Math.max(maxRunning, running)
      if (queued > 0) sawQueue = true
    }, 0)
    const first = hasher.load()
    const results = await Promise.all(all)
    clearInterval(timer)
    expect(first).toEqual({ running: 2, queued: 10 })
    expect(maxRunning).toBeLessThanOrEqual(2)
    expect(sawQueue).toBe(true)
    expect(results.every((ok) => ok)).toBe(true)
    expect(hasher.load()).toEqual({ running: 0, queued: 0 })
  })

  it('past maxQueued, throws overloaded at once (never a silent false)', async () => {
    const hasher = createPasswordHasher({
      argon2: { memoryCost: 1024, timeCost: 1 },
      concurrency: 1,
      maxQueued: 2,
    })
    const stored = await hasher.hash('queued password')
    const admitted = [1, 2, 3].map(() => hasher.verify('queued password', stored))
    expect(hasher.load()).toEqual({ running: 1, queued: 2 })
    await expect(hasher.verify('queued password', stored)).rejects.toMatchObject({
      code: 'overloaded',
    })
    await expect(hasher.hash('another password')).rejects.toMatchObject({ code: 'overloaded' })
    await expect(hasher.dummyVerify('x')).rejects.toMatchObject({ code: 'overloaded' })
    expect(await Promise.all(admitted)).toEqual([true, true, true])
  })

  it('refuses out-of-range settings at construction', () => {
    expect(() => createPasswordHasher({ concurrency: 0 })).toThrow(/concurrency/)
    expect(() => createPasswordHasher({ maxQueued: -1 })).toThrow(/maxQueued/)
    expect(() => createPasswordHasher({ argon2: { memoryCost: 10_000_000 } })).toThrow(/memoryCost/)
  })
})
