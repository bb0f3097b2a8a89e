import { TesseraError } from '../core/errors.js'
import { PUBLIC_ID_LENGTH } from '../core/session-store.js'
import type { SessionRecord, SessionStore } from '../core/session-store.js'
import type { RedisInvalidation } from './redis-invalidation.js'

/** Options of {@link createNearCacheStore} and {@link createNearCache}. */
export interface NearCacheOptions {
  /** The most entries kept; the oldest is dropped past it. @default 10_000 */
  maxEntries?: number
  /**
   * Milliseconds an entry is served at most, invalidations or not: the bound on a stale entry
   * when a process changed a record and died before it could publish. @default 5000
   */
  maxAge?: number
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number
}

/** A small in-process cache of values by key, kept honest by an invalidation channel. */
export interface NearCache<T> {
  /**
   * The value of `key`: from the cache while the channel is healthy and the entry is younger
   * than `maxAge`, else from `load` (kept when no invalidation arrived meanwhile). The entry is
   * also dropped when any key `dependsOn(value)` names is invalidated.
   */
  read(key: string, load: () => Promise<T>, dependsOn?: (value: T) => readonly string[]): Promise<T>
  /** Drops `keys` here and on every other process. @throws TesseraError `store_unavailable` */
  invalidate(keys: readonly string[]): Promise<void>
  /** Entries held now. */
  readonly size: number
}

interface Entry<T> {
  value: T
  at: number
  dependsOn: readonly string[]
}

/**
 * An in-process cache over a {@link RedisInvalidation} channel. Off by default in the library:
 * build one only where a bounded delay between a change and its effect on other processes is
 * acceptable (docs/scaling.md: one pub/sub hop when the channel works, never beyond `maxAge`,
 * and bypassed while the channel is down).
 */
export function createNearCache<T>(
  invalidation: RedisInvalidation,
  options: NearCacheOptions = {},
): NearCache<T> {
  const maxEntries = options.maxEntries ?? 10_000
  const maxAge = options.maxAge ?? 5000
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1 || !(maxAge > 0)) {
    throw new TesseraError(
      'config_invalid',
      'near-cache: maxEntries must be a whole number >= 1 and maxAge positive milliseconds',
    )
  }
  const now = options.now ?? Date.now
  const entries = new Map<string, Entry<T>>()
  // Key -> the entries to drop with it (their own key and their dependencies).
  const dependents = new Map<string, Set<string>>()

  function drop(key: string): void {
    const entry = entries.get(key)
    if (entry === undefined) return
    entries.delete(key)
    for (const on of entry.dependsOn) {
      const set = dependents.get(on)
      set?.delete(key)
      if (set?.size === 0) dependents.delete(on)
    }
  }

  invalidation.onInvalidate((keys) => {
    if (keys.includes('*')) {
      entries.clear()
      dependents.clear()
      return
    }
    for (const key of keys) {
      drop(key)
      const set = dependents.get(key)
      if (set !== undefined) for (const dependent of [...set]) drop(dependent)
    }
  })

  return {
    get size(): number {
      return entries.size
    },
    async read(key, load, dependsOn): Promise<T> {
      // SECURITY: an entry is served only while the invalidation channel is known to work;
      // while it is down, every read goes to the store (a revocation is never missed).
      if (!invalidation.healthy()) return load()
      const found = entries.get(key)
      if (found !== undefined) {
        if (now() - found.at < maxAge) return found.value
        drop(key)
      }
      const epoch = invalidation.epoch()
      const at = now()
      const value = await load()
      // SECURITY: kept only if nothing was invalidated during the read (and the channel is
      // still up): a read that raced a revocation may return the old record once, never keep it.
      if (invalidation.healthy() && invalidation.epoch() === epoch) {
        drop(key)
        if (entries.size >= maxEntries) {
          const oldest = entries.keys().next()
          if (oldest.done !== true) drop(oldest.value)
        }
        const on = dependsOn?.(value) ?? []
        entries.set(key, { value, at, dependsOn: on })
        for (const dependency of on) {
          let set = dependents.get(dependency)
          if (set === undefined) {
            set = new Set()
            dependents.set(dependency, set)
          }
          set.add(key)
        }
      }
      return value
    },
    invalidate(keys): Promise<void> {
      return invalidation.publish(keys)
    },
  }
}

/**
 * A {@link SessionStore} whose reads (`get`, `getByPublicId`) are served from an in-process
 * near-cache, so an authenticated request normally makes no round trip, and whose writes
 * (`create`, `update`, `delete`, `deleteByUser`) publish an invalidation on `invalidation`
 * after the store's write, to every process. Records are kept as JSON and parsed per read, so
 * a caller never shares an object with the cache. A missing record is cached too (a revoked
 * cookie replayed costs no round trip); `create` invalidates its id.
 *
 * @throws TesseraError `config_invalid` for bad options; the writes `store_unavailable` when the
 *   store or the channel cannot be reached (the write may have landed: the caller retries)
 */
export function createNearCacheStore(
  store: SessionStore,
  invalidation: RedisInvalidation,
  options: NearCacheOptions = {},
): SessionStore {
  const cache = createNearCache<string | null>(invalidation, options)
  const idKey = (id: string): string => `s:${id}`
  const userKey = (userId: string): string => `u:${userId}`
  const encode = (record: SessionRecord | null): string | null =>
    record === null ? null : JSON.stringify(record)
  const decode = (json: string | null): SessionRecord | null =>
    json === null ? null : (JSON.parse(json) as SessionRecord)
  // An entry goes with its record's id and with its user ("log out everywhere").
  const dependencies = (json: string | null): string[] => {
    const record = decode(json)
    if (record === null) return []
    return record.userId === null ? [idKey(record.id)] : [idKey(record.id), userKey(record.userId)]
  }

  async function changed(record: { id: string; userId: string | null }): Promise<void> {
    const keys = [idKey(record.id)]
    if (record.userId !== null) keys.push(userKey(record.userId))
    await cache.invalidate(keys)
  }

  const wrapped: SessionStore = {
    async get(id): Promise<SessionRecord | null> {
      return decode(
        await cache.read(idKey(id), async () => encode(await store.get(id)), dependencies),
      )
    },
    async create(record): Promise<void> {
      await store.create(record)
      await changed(record)
    },
    async update(record, expectedVersion): Promise<boolean> {
      const won = await store.update(record, expectedVersion)
      // A session moved to another user: the id's key drops every entry of it.
      if (won) await changed(record)
      return won
    },
    async delete(id): Promise<void> {
      await store.delete(id)
      await cache.invalidate([idKey(id)])
    },
    listByUser: (userId) => store.listByUser(userId),
    async deleteByUser(userId, deleteOptions): Promise<number> {
      const count = await store.deleteByUser(userId, deleteOptions)
      await cache.invalidate([userKey(userId)])
      return count
    },
  }
  const getByPublicId = store.getByPublicId?.bind(store)
  if (getByPublicId !== undefined) {
    wrapped.getByPublicId = async (userId, publicId): Promise<SessionRecord | null> => {
      if (publicId.length !== PUBLIC_ID_LENGTH) return null
      const json = await cache.read(
        `p:${userId}\u0000${publicId}`,
        async () => encode(await getByPublicId(userId, publicId)),
        // A miss goes with the user: a new session of the user may take this public id.
        (value) => (value === null ? [userKey(userId)] : dependencies(value)),
      )
      return decode(json)
    }
  }
  if (store.close !== undefined) wrapped.close = store.close.bind(store)
  return wrapped
}
