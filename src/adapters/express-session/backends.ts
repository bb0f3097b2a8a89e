/**
 * The two backends behind the middleware: a tessera `SessionStore` through the session manager
 * (merged writes, expiry, throttled touch), or a connect-style store called as express-session
 * calls it, with hashed keys.
 */
import type { Session as ManagedSession, SessionManager } from '../../core/session-manager.js'
import type { JSONValue, SessionRecord, SessionStore } from '../../core/session-store.js'
import { TesseraError } from '../../core/errors.js'
import type { Session } from './session.js'
import type { ConnectStore, CookieData, SessionData, StoreCallback } from './types.js'

const CREATED_FIELD = '__tesseraCreatedAt'

/** What one request knows about its session in the backend. */
export interface Entry {
  /** `req.sessionID`: SHA-256 of the token, the store key. */
  sid: string
  /** The cookie's bearer secret; unknown for a session the middleware did not make. */
  token: string | undefined
  /** The session manager's handle (tessera stores), once the session exists in the store. */
  managed?: ManagedSession | undefined
  /** JSON of each top-level key as last read or written (tessera stores). */
  snapshot: Map<string, string>
  /** Creation time, for the absolute lifetime on connect-style stores. */
  createdAt: number
  /** Read from an express-session cookie under the raw id: move it on this request. */
  legacy: boolean
}

export interface Loaded {
  data: SessionData
  entry: Entry
}

export interface Backend {
  load(id: { sid: string; token: string | undefined; legacy: boolean }): Promise<Loaded | null>
  save(entry: Entry, session: Session): Promise<void>
  touch(entry: Entry, session: Session): Promise<void>
  destroy(entry: Entry): Promise<void>
  readonly touchesOnEnd: boolean
}

export function tesseraBackend(manager: SessionManager, store: SessionStore): Backend {
  return {
    touchesOnEnd: false,

    async load({ sid, token }) {
      if (token === undefined) return null
      // The manager checks expiry (idle from the cookie's maxAge, absolute) and extends the idle
      // expiry at most once per tenth of the window: this replaces express-session's touch.
      const found = await manager.validateToken(token)
      if (found === null) return null
      const managed = found.session
      const data = { ...managed.data } as Record<string, unknown>
      const cookie = {
        ...((data.cookie ?? {}) as Record<string, unknown>),
      } as unknown as CookieData
      cookie.expires = cookie.originalMaxAge === null ? null : new Date(managed.expiresAt)
      data.cookie = cookie
      const snapshot = new Map<string, string>()
      for (const [key, value] of Object.entries(managed.data))
        snapshot.set(key, JSON.stringify(value))
      return {
        data: data as SessionData,
        entry: { sid, token, managed, snapshot, createdAt: managed.createdAt, legacy: false },
      }
    },

    async save(entry, sess) {
      const current = toStoredData(sess)
      if (entry.managed === undefined) {
        if (entry.token === undefined) {
          throw new TesseraError(
            'invalid_argument',
            'express-session: req.session is not a session this middleware made (on a tessera store a session is created by the middleware)',
          )
        }
        const issued = await manager.create(null, { data: current, token: entry.token })
        entry.managed = issued.session
        entry.snapshot = snapshotOf(current)
        return
      }
      // SECURITY (and correctness): only the keys this request changed are written, merged with
      // compare-and-set, so concurrent requests keep each other's writes, and a session that was
      // destroyed meanwhile is not written back (logout wins).
      const changes: Record<string, JSONValue | undefined> = {}
      let changed = false
      for (const [key, value] of Object.entries(current)) {
        if (entry.snapshot.get(key) !== JSON.stringify(value)) {
          changes[key] = value
          changed = true
        }
      }
      for (const key of entry.snapshot.keys()) {
        if (!Object.hasOwn(current, key)) {
          changes[key] = undefined
          changed = true
        }
      }
      if (!changed) return
      const updated = await manager.update(entry.managed, changes)
      if (updated === null) return
      entry.managed = updated
      entry.snapshot = snapshotOf(current)
    },

    touch() {
      return Promise.resolve()
    },

    async destroy(entry) {
      if (entry.managed !== undefined) await manager.revoke(entry.managed)
      // The record's id is the sid (SHA-256 of the token), so no token is needed to delete it.
      else await store.delete(entry.sid)
      entry.managed = undefined
    },
  }
}

/** The session as JSON data for a tessera store: the cookie without its moving `expires`. */
function toStoredData(sess: Session): Record<string, JSONValue> {
  const data = JSON.parse(JSON.stringify(sess)) as Record<string, JSONValue>
  const cookie = data.cookie
  if (cookie !== null && typeof cookie === 'object' && !Array.isArray(cookie)) delete cookie.expires
  return data
}

function snapshotOf(data: Record<string, JSONValue>): Map<string, string> {
  const snapshot = new Map<string, string>()
  for (const [key, value] of Object.entries(data)) snapshot.set(key, JSON.stringify(value))
  return snapshot
}

/** The idle window of a stored session: its cookie's `originalMaxAge`, in seconds. */
export function cookieIdleSeconds(record: SessionRecord): number | undefined {
  const cookie = record.data.cookie
  if (cookie === null || typeof cookie !== 'object' || Array.isArray(cookie)) return undefined
  const maxAge = cookie.originalMaxAge
  return typeof maxAge === 'number' && maxAge > 0 ? maxAge / 1000 : undefined
}

export function connectBackend(
  store: ConnectStore,
  options: { legacyIds: boolean; absoluteSeconds: number | undefined; now: () => number },
): Backend {
  const call = <T>(run: (callback: StoreCallback<T>) => void): Promise<T | undefined> =>
    new Promise((resolve, reject) => {
      run((error, result) => {
        if (error !== undefined && error !== null)
          reject(
            error instanceof Error ? error : new Error('session store failed', { cause: error }),
          )
        else resolve(result)
      })
    })
  const storedForm = (entry: Entry, sess: Session): SessionData => {
    const data: SessionData = { ...sess, cookie: sess.cookie }
    if (options.absoluteSeconds !== undefined) data[CREATED_FIELD] = entry.createdAt
    return data
  }
  return {
    touchesOnEnd: typeof store.touch === 'function',

    async load({ sid, token, legacy }) {
      // SECURITY: the store key is the sid, SHA-256 of the cookie's token, so whoever reads the
      // store (a backup, a replica, `KEYS *`) finds no usable session (OWASP ASVS 3.2.2). Only
      // express-session's own sessions (legacyIds) sit under their raw id until moved.
      const key = legacy && token !== undefined ? token : sid
      let data: SessionData | null | undefined
      try {
        data = await call<SessionData | null | undefined>((callback) => store.get(key, callback))
      } catch (error) {
        if ((error as { code?: unknown }).code === 'ENOENT') return null
        throw error
      }
      if (data === null || data === undefined) return null
      let createdAt = options.now()
      const stamp = data[CREATED_FIELD]
      if (typeof stamp === 'number') createdAt = stamp
      const copy = { ...data }
      delete copy[CREATED_FIELD]
      if (
        options.absoluteSeconds !== undefined &&
        options.now() >= createdAt + options.absoluteSeconds * 1000
      ) {
        // SECURITY: the absolute limit ends a session however active it is (OWASP ASVS 3.3.2).
        await call((callback) => store.destroy(key, callback))
        return null
      }
      return { data: copy, entry: { sid, token, snapshot: new Map(), createdAt, legacy } }
    },

    async save(entry, sess) {
      await call((callback) => store.set(entry.sid, storedForm(entry, sess), callback))
      const legacyKey = entry.legacy ? entry.token : undefined
      if (legacyKey !== undefined) {
        // Moved to the hashed key: the raw-id copy goes, so the id is no longer in the store.
        await call((callback) => store.destroy(legacyKey, callback))
        entry.legacy = false
      }
    },

    async touch(entry, sess) {
      if (typeof store.touch !== 'function') return
      const touch = store.touch.bind(store)
      await call((callback) => touch(entry.sid, storedForm(entry, sess), callback))
    },

    async destroy(entry) {
      await call((callback) => store.destroy(entry.sid, callback))
      const legacyKey = entry.legacy ? entry.token : undefined
      if (legacyKey !== undefined) await call((callback) => store.destroy(legacyKey, callback))
    },
  }
}
