/*
 * Stand-ins used until the real modules are merged into this branch: a scrypt password hasher
 * (real hashing, small cost), an in-memory session issuer and a counting login limiter. They
 * implement the same small interfaces the service declares, so swapping in `tessera/password`
 * and the session manager changes only this file.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'
import type { SessionMeta, SessionRecord } from '../../src/core/session-store.js'
import type {
  LimitDecision,
  LoginAttempt,
  LoginLimiter,
  PasswordHasher,
  SessionIssuer,
} from '../../src/auth/service.js'

const scrypt = promisify(scryptCb) as (
  password: string,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number },
) => Promise<Buffer>

/** Counts what the hasher did, so tests can see that no hash was computed. */
export interface CountingHasher extends PasswordHasher {
  calls: { hash: number; verify: number; dummy: number }
}

async function derive(password: string, salt: Buffer, n: number): Promise<Buffer> {
  return scrypt(password.normalize('NFC'), salt, 32, { N: n, r: 8, p: 1 })
}

/** `$scrypt$n=<N>$<salt>$<hash>`; hashes with a smaller N than current `need rehash`. */
export function createTestHasher(options: { n?: number } = {}): CountingHasher {
  const currentN = options.n ?? 1024
  const calls = { hash: 0, verify: 0, dummy: 0 }
  const hashWith = async (password: string, n: number): Promise<string> => {
    const salt = randomBytes(16)
    const key = await derive(password, salt, n)
    return `$scrypt$n=${n}$${salt.toString('base64url')}$${key.toString('base64url')}`
  }
  const hasher: CountingHasher = {
    calls,
    async hashPassword(password: string): Promise<string> {
      calls.hash += 1
      return hashWith(password, currentN)
    },
    async verifyPassword(password: string, hash: string): Promise<boolean> {
      calls.verify += 1
      const match = /^\$scrypt\$n=(\d+)\$([^$]+)\$([^$]+)$/.exec(hash)
      if (match === null) return false
      const expected = Buffer.from(match[3] ?? '', 'base64url')
      const key = await derive(password, Buffer.from(match[2] ?? '', 'base64url'), Number(match[1]))
      return key.length === expected.length && timingSafeEqual(key, expected)
    },
    needsRehash(hash: string): boolean {
      return !hash.startsWith(`$scrypt$n=${currentN}$`)
    },
    checkPasswordPolicy(password: string) {
      if ([...password].length < 12) return { ok: false, message: 'password is too short' }
      if ([...password].length > 128) return { ok: false, message: 'password is too long' }
      if (password === 'password1234') return { ok: false, message: 'password is too common' }
      return { ok: true }
    },
    async verifyDummy(password: string): Promise<void> {
      calls.dummy += 1
      await derive(password, Buffer.alloc(16), currentN)
    },
  }
  return hasher
}

/** Makes a legacy-format hash (smaller N) the test hasher verifies and wants to upgrade. */
export async function legacyHash(password: string): Promise<string> {
  return createTestHasher({ n: 256 }).hashPassword(password)
}

/** In-memory sessions keyed by SHA-256 of the token, like the real store. */
export interface TestSessions extends SessionIssuer {
  records: Map<string, SessionRecord>
}

export function createTestSessions(now: () => number = Date.now): TestSessions {
  const records = new Map<string, SessionRecord>()
  return {
    records,
    create(userId: string, options: { meta: SessionMeta }) {
      const token = randomBytes(32).toString('base64url')
      const id = createHash('sha256').update(token).digest('base64url')
      const at = now()
      const session: SessionRecord = {
        id,
        userId,
        version: 0,
        createdAt: at,
        lastSeenAt: at,
        expiresAt: at + 7 * 86400_000,
        absoluteExpiresAt: at + 30 * 86400_000,
        data: {},
        meta: options.meta,
      }
      records.set(id, session)
      return Promise.resolve({ token, session })
    },
    revoke(sessionId: string) {
      records.delete(sessionId)
      return Promise.resolve()
    },
    list(userId: string) {
      return Promise.resolve([...records.values()].filter((r) => r.userId === userId))
    },
    revokeAll(userId: string, options?: { except?: string }) {
      let n = 0
      for (const [id, r] of records) {
        if (r.userId === userId && id !== options?.except) {
          records.delete(id)
          n += 1
        }
      }
      return Promise.resolve(n)
    },
  }
}

/** Blocks an account after `budget` failures until a success; counts checks. */
export function createTestLimiter(budget = 5): LoginLimiter & { failures: Map<string, number> } {
  const failures = new Map<string, number>()
  return {
    failures,
    check(attempt: LoginAttempt): Promise<LimitDecision> {
      const n = failures.get(attempt.account) ?? 0
      return Promise.resolve(
        n >= budget ? { allowed: false, retryAfterSeconds: 2 ** (n - budget) } : { allowed: true },
      )
    },
    recordFailure(attempt: LoginAttempt): Promise<void> {
      failures.set(attempt.account, (failures.get(attempt.account) ?? 0) + 1)
      return Promise.resolve()
    },
    recordSuccess(attempt: LoginAttempt): Promise<void> {
      failures.delete(attempt.account)
      return Promise.resolve()
    },
  }
}
