import { TesseraError } from '../core/errors.js'
import { PUBLIC_ID_LENGTH } from '../core/session-store.js'
import type { JSONValue, SessionRecord, SessionStore } from '../core/session-store.js'

/** Options of {@link createMemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * The most records kept. When a new record would pass it, expired records are swept and, if
   * the store is still full, the least recently written record (the oldest idle one) is evicted.
   * @default 100_000
   */
  maxSessions?: number
  /** Clock in epoch milliseconds; the same one the session manager uses. @default Date.now */
  now?: () => number
  /**
   * Seconds between background sweeps of expired records. The timer is `unref`'d, so it never
   * keeps a process alive, and {@link MemoryStore.close} stops it. `0` turns the timer off
   * (expired records are then removed when read, or when the store is full).
   * @default 60
   */
  sweepInterval?: number
}

/** The memory store: a {@link SessionStore} plus a few introspection helpers. */
export interface MemoryStore extends SessionStore {
  /** How many records are held, expired ones not yet swept included. */
  readonly size: number
  /** Removes every expired record now; returns how many. */
  sweep(): number
  /** Stops the sweep timer. The records stay readable. */
  close(): Promise<void>
}

/**
 * A session store in this process's memory: a bounded `Map` with a per-user index.
 *
 * **Single process only.** Sessions vanish on restart and are not shared between processes or
 * machines; use it for development, tests and single-instance apps. Every other tessera store
 * (SQLite, Redis, PostgreSQL) is shared.
 *
 * Records are copied in and out, so a caller mutating a record it passed or received never
 * changes what the store holds. Expired records (past `expiresAt` or `absoluteExpiresAt`) are
 * hidden from reads and swept in the background.
 *
 * @throws TesseraError `config_invalid` for a `maxSessions` or `sweepInterval` that is not a
 * positive whole number
 * @example
 * ```ts
 * import { createMemoryStore } from 'tessera-auth/stores/memory'
 * const sessions = createSessionManager(createMemoryStore(), keyring)
 * ```
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  const maxSessions = options.maxSessions ?? 100_000
  if (!Number.isSafeInteger(maxSessions) || maxSessions < 1) {
    throw new TesseraError(
      'config_invalid',
      'memory store: maxSessions must be a whole number >= 1',
    )
  }
  const sweepInterval = options.sweepInterval ?? 60
  if (!Number.isFinite(sweepInterval) || sweepInterval < 0) {
    throw new TesseraError('config_invalid', 'memory store: sweepInterval must be seconds >= 0')
  }
  const now = options.now ?? Date.now

  // Map iteration order is insertion order; every write deletes and re-inserts, so the first
  // entry is always the least recently written record: the eviction candidate, found in O(1).
  const records = new Map<string, SessionRecord>()
  const byUser = new Map<string, Set<string>>()
  // Public id (the first 22 characters of a stored id) to stored id, for getByPublicId.
  const byPublicId = new Map<string, string>()

  function isExpired(record: SessionRecord, at: number): boolean {
    return at >= record.expiresAt || at >= record.absoluteExpiresAt
  }

  function index(record: SessionRecord): void {
    if (record.userId === null) return
    byPublicId.set(record.id.slice(0, PUBLIC_ID_LENGTH), record.id)
    let ids = byUser.get(record.userId)
    if (ids === undefined) {
      ids = new Set()
      byUser.set(record.userId, ids)
    }
    ids.add(record.id)
  }

  function unindex(record: SessionRecord): void {
    if (record.userId === null) return
    const publicId = record.id.slice(0, PUBLIC_ID_LENGTH)
    if (byPublicId.get(publicId) === record.id) byPublicId.delete(publicId)
    const ids = byUser.get(record.userId)
    if (ids === undefined) return
    ids.delete(record.id)
    if (ids.size === 0) byUser.delete(record.userId)
  }

  function remove(id: string): boolean {
    const record = records.get(id)
    if (record === undefined) return false
    records.delete(id)
    unindex(record)
    return true
  }

  function sweep(): number {
    const at = now()
    let removed = 0
    for (const [id, record] of records) {
      if (isExpired(record, at) && remove(id)) removed++
    }
    return removed
  }

  function makeRoom(): void {
    if (records.size < maxSessions) return
    sweep()
    while (records.size >= maxSessions) {
      const oldest = records.keys().next()
      if (oldest.done === true) return
      remove(oldest.value)
    }
  }

  let timer: ReturnType<typeof setInterval> | undefined
  if (sweepInterval > 0) {
    timer = setInterval(sweep, sweepInterval * 1000)
    timer.unref()
  }

  return {
    get size(): number {
      return records.size
    },
    sweep,

    get(id: string): Promise<SessionRecord | null> {
      const record = records.get(id)
      if (record === undefined) return Promise.resolve(null)
      if (isExpired(record, now())) {
        remove(id)
        return Promise.resolve(null)
      }
      return Promise.resolve(copyRecord(record))
    },

    create(record: SessionRecord): Promise<void> {
      const existing = records.get(record.id)
      if (existing !== undefined) remove(record.id)
      else makeRoom()
      const stored = copyRecord(record)
      records.set(stored.id, stored)
      index(stored)
      return Promise.resolve()
    },

    update(record: SessionRecord, expectedVersion: number): Promise<boolean> {
      const existing = records.get(record.id)
      // SECURITY: a record that is gone (logged out, expired) is never written again, so a
      // request racing a logout cannot bring the session back.
      if (existing === undefined || isExpired(existing, now())) return Promise.resolve(false)
      if (existing.version !== expectedVersion) return Promise.resolve(false)
      remove(record.id)
      const stored = copyRecord(record)
      records.set(stored.id, stored)
      index(stored)
      return Promise.resolve(true)
    },

    delete(id: string): Promise<void> {
      remove(id)
      return Promise.resolve()
    },

    listByUser(userId: string): Promise<SessionRecord[]> {
      const ids = byUser.get(userId)
      if (ids === undefined) return Promise.resolve([])
      const at = now()
      const list: SessionRecord[] = []
      for (const id of [...ids]) {
        const record = records.get(id)
        if (record === undefined) continue
        if (isExpired(record, at)) remove(id)
        else list.push(copyRecord(record))
      }
      return Promise.resolve(list)
    },

    getByPublicId(userId: string, publicId: string): Promise<SessionRecord | null> {
      const id = byPublicId.get(publicId)
      const record = id === undefined ? undefined : records.get(id)
      if (record === undefined || record.userId !== userId) return Promise.resolve(null)
      if (isExpired(record, now())) {
        remove(record.id)
        return Promise.resolve(null)
      }
      return Promise.resolve(copyRecord(record))
    },

    deleteByUser(userId: string, deleteOptions: { except?: string } = {}): Promise<number> {
      const ids = byUser.get(userId)
      if (ids === undefined) return Promise.resolve(0)
      let removed = 0
      for (const id of [...ids]) {
        if (id !== deleteOptions.except && remove(id)) removed++
      }
      return Promise.resolve(removed)
    },

    close(): Promise<void> {
      if (timer !== undefined) clearInterval(timer)
      timer = undefined
      return Promise.resolve()
    },
  }
}

function copyRecord(record: SessionRecord): SessionRecord {
  return {
    id: record.id,
    userId: record.userId,
    version: record.version,
    createdAt: record.createdAt,
    lastSeenAt: record.lastSeenAt,
    expiresAt: record.expiresAt,
    absoluteExpiresAt: record.absoluteExpiresAt,
    data: cloneObject(record.data),
    meta: { ...record.meta },
  }
}

// A JSON-only deep copy: several times faster than structuredClone for the small objects
// sessions hold, which matters on the validate path.
function cloneObject(value: Record<string, JSONValue>): Record<string, JSONValue> {
  const out: Record<string, JSONValue> = {}
  for (const key of Object.keys(value)) {
    const copy = cloneValue(value[key] as JSONValue)
    // An own "__proto__" key (JSON.parse makes one) must stay data, not become a prototype.
    if (key === '__proto__') {
      Object.defineProperty(out, key, {
        value: copy,
        enumerable: true,
        writable: true,
        configurable: true,
      })
    } else out[key] = copy
  }
  return out
}

function cloneValue(value: JSONValue): JSONValue {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map(cloneValue)
  return cloneObject(value)
}
