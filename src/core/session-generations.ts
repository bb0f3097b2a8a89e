import { hash } from 'node:crypto'
import { TesseraError } from './errors.js'
import type { SessionRecord, SessionStore } from './session-store.js'

/**
 * A per-user "session generation" number. Stateless cookie sessions carry the generation they
 * were created under; "log out everywhere" bumps it, and every cookie of an older generation
 * stops validating. One read per validate buys the one revocation stateless sessions lack.
 */
export interface SessionGenerationStore {
  /** The user's current generation; 0 when none was recorded. */
  get(userId: string): Promise<number>
  /** Moves the user to a new generation and returns it. */
  bump(userId: string): Promise<number>
}

/**
 * Generations in this process's memory. **Single process only**: a restart forgets every bump
 * (and so signs those users out: see the equality rule in docs/sessions.md), and other processes
 * never see one.
 */
export function createMemoryGenerationStore(): SessionGenerationStore {
  const generations = new Map<string, number>()
  return {
    get: (userId) => Promise.resolve(generations.get(userId) ?? 0),
    bump(userId) {
      const next = (generations.get(userId) ?? 0) + 1
      generations.set(userId, next)
      return Promise.resolve(next)
    },
  }
}

/** Options of {@link createStoreGenerationStore}. */
export interface StoreGenerationOptions {
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number
  /**
   * Seconds a generation record is kept after its last bump; make it at least the absolute
   * lifetime of the cookie sessions. @default 315360000 (10 years)
   */
  retention?: number
  /** Compare-and-set attempts of a bump before `store_conflict`. @default 32 */
  maxAttempts?: number
}

const TEN_YEARS = 10 * 365 * 86_400

/**
 * Generations kept in any {@link SessionStore} (SQLite, Redis, PostgreSQL, memory), so every
 * process sharing the store sees a bump. Each user who was ever bumped has one record, stored
 * under an id derived from the user id and with `userId: null`, so it never shows up in the
 * user's session list and `deleteByUser` never removes it.
 *
 * @throws TesseraError `store_unavailable` from the store; `store_conflict` when a bump keeps
 *   losing its compare-and-set
 */
export function createStoreGenerationStore(
  store: SessionStore,
  options: StoreGenerationOptions = {},
): SessionGenerationStore {
  const now = options.now ?? Date.now
  const retentionMs = (options.retention ?? TEN_YEARS) * 1000
  const maxAttempts = options.maxAttempts ?? 32
  if (!Number.isFinite(retentionMs) || retentionMs <= 0) {
    throw new TesseraError('config_invalid', 'generation store: retention must be positive seconds')
  }

  function idOf(userId: string): string {
    return `generation.${hash('sha256', `tessera-generation:${userId}`, 'base64url')}`
  }

  function readGeneration(record: SessionRecord | null): number {
    const value = record?.data.generation
    return typeof value === 'number' && Number.isSafeInteger(value) ? value : 0
  }

  return {
    async get(userId) {
      return readGeneration(await store.get(idOf(userId)))
    },

    async bump(userId) {
      const id = idOf(userId)
      for (let attempt = 0; attempt < maxAttempts; attempt++) {
        const at = now()
        const current = await store.get(id)
        const next = readGeneration(current) + 1
        const record: SessionRecord = {
          id,
          userId: null,
          version: current === null ? 1 : current.version + 1,
          createdAt: current?.createdAt ?? at,
          lastSeenAt: at,
          expiresAt: at + retentionMs,
          absoluteExpiresAt: at + retentionMs,
          data: { generation: next },
          meta: {},
        }
        if (current === null) {
          await store.create(record)
          return next
        }
        if (await store.update(record, current.version)) return next
      }
      throw new TesseraError(
        'store_conflict',
        `session generation bump lost the compare-and-set ${maxAttempts} times`,
      )
    },
  }
}
