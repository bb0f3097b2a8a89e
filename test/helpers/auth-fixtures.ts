/*
 * The real collaborators of the auth service, configured for tests: the argon2id hasher with a
 * small cost (so a suite runs in seconds; the format and code paths are the production ones),
 * the session manager over the memory store, and the login limiter over the memory counters.
 * `calls` counts what the hasher was asked to do, so tests can see that no hash was computed.
 */
import { pbkdf2Sync, randomBytes } from 'node:crypto'
import { createKeyring } from '../../src/core/keyring.js'
import { createSessionManager, type SessionManager } from '../../src/core/session-manager.js'
import { createPasswordHasher, type PasswordHasher } from '../../src/auth/passwords.js'
import {
  createLoginLimiter,
  createMemoryRateLimitStore,
  type LoginLimiter,
} from '../../src/auth/rate-limit.js'
import { createMemoryStore } from '../../src/stores/memory.js'

const SECRET = 'tT9wq2LmX7vR4pZc8KsY1dHf6gJb3nQa5eUoIiWrVyE'

/** The real hasher plus counters of each call. */
export interface CountingHasher extends PasswordHasher {
  calls: { hash: number; verify: number; dummy: number }
}

/** argon2id with m=1024 KiB, t=1: the production code path at a test-friendly cost. */
export function createTestHasher(): CountingHasher {
  const real = createPasswordHasher({ argon2: { memoryCost: 1024, timeCost: 1 }, concurrency: 2 })
  const calls = { hash: 0, verify: 0, dummy: 0 }
  return {
    calls,
    hash(password: string): Promise<string> {
      calls.hash += 1
      return real.hash(password)
    },
    verify(password: string, storedHash: string): Promise<boolean> {
      calls.verify += 1
      return real.verify(password, storedHash)
    },
    needsRehash: (storedHash: string): boolean => real.needsRehash(storedHash),
    dummyVerify(password: string): Promise<false> {
      calls.dummy += 1
      return real.dummyVerify(password)
    },
    load: () => real.load(),
  }
}

/**
 * A Django `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` string computed here from the public
 * algorithm (low iteration count for speed): what a user migrating from Django brings along.
 */
export function djangoPbkdf2Hash(password: string, iterations = 1000): string {
  const salt = randomBytes(9).toString('base64url').replace(/[-_]/g, 'x')
  const key = pbkdf2Sync(password, salt, iterations, 32, 'sha256').toString('base64')
  return `pbkdf2_sha256$${iterations}$${salt}$${key}`
}

/** The session manager over a fresh memory store, on the given clock. */
export function createTestSessions(now: () => number): SessionManager {
  return createSessionManager(createMemoryStore({ now }), createKeyring(SECRET), { now })
}

/** The login limiter (5 free failures, then backoff) over fresh memory counters. */
export function createTestLimiter(now: () => number): LoginLimiter {
  return createLoginLimiter({ store: createMemoryRateLimitStore(), now })
}
