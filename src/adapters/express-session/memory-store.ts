/** express-session's `MemoryStore`, for tests and code that builds one. */
import { Store } from './store.js'
import type { ConnectStore, CookieData, SessionData, StoreCallback } from './types.js'

/**
 * express-session's `MemoryStore` (callback API, one process, never swept): for tests and code
 * written against it. Without a `store` option the middleware uses tessera's bounded memory
 * store instead, which also merges concurrent writes.
 */
export class MemoryStore extends Store implements ConnectStore {
  sessions: Record<string, string> = Object.create(null) as Record<string, string>
  private readonly now: () => number

  /** `now` is tessera's: the clock expiry is read against. @default Date.now */
  constructor(options: { now?: () => number } = {}) {
    super()
    this.now = options.now ?? Date.now
  }

  all(callback: StoreCallback<Record<string, SessionData>>): void {
    const sessions = Object.create(null) as Record<string, SessionData>
    for (const sid of Object.keys(this.sessions)) {
      const data = this.read(sid)
      if (data !== undefined) sessions[sid] = data
    }
    setImmediate(callback, null, sessions)
  }

  clear(callback?: StoreCallback): void {
    this.sessions = Object.create(null) as Record<string, string>
    if (callback !== undefined) setImmediate(callback)
  }

  destroy(sid: string, callback?: StoreCallback): void {
    delete this.sessions[sid]
    if (callback !== undefined) setImmediate(callback)
  }

  get(sid: string, callback: StoreCallback<SessionData | null | undefined>): void {
    setImmediate(callback, null, this.read(sid))
  }

  set(sid: string, session: SessionData, callback?: StoreCallback): void {
    this.sessions[sid] = JSON.stringify(session)
    if (callback !== undefined) setImmediate(callback)
  }

  length(callback: StoreCallback<number>): void {
    this.all((error, sessions) => {
      if (error !== undefined && error !== null) return callback(error)
      callback(null, Object.keys(sessions ?? {}).length)
    })
  }

  touch(sid: string, session: SessionData, callback?: StoreCallback): void {
    const current = this.read(sid)
    if (current !== undefined) {
      current.cookie = session.cookie
      this.sessions[sid] = JSON.stringify(current)
    }
    if (callback !== undefined) setImmediate(callback)
  }

  private read(sid: string): SessionData | undefined {
    const text = this.sessions[sid]
    if (text === undefined) return undefined
    const data = JSON.parse(text) as SessionData
    const expires = (data.cookie as CookieData | undefined)?.expires
    if (expires !== undefined && expires !== null && new Date(expires).getTime() <= this.now()) {
      delete this.sessions[sid]
      return undefined
    }
    return data
  }
}
