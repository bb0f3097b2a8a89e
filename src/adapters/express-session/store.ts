/** express-session's abstract `Store`, and how the middleware tells the two kinds of store apart. */
import { EventEmitter } from 'node:events'
import type { SessionStore } from '../../core/session-store.js'
import { createSession } from './session.js'
import type { Session } from './session.js'
import type { ConnectStore, SessionData, SessionRequest, StoreCallback } from './types.js'

/** The methods every store gets from {@link Store}. */
export interface Store extends EventEmitter {
  /** Set by express-session's middleware; kept for stores that call it. */
  generate?: ((req: SessionRequest) => void) | undefined
  /** Destroys `req.sessionID` in the store, then calls `generate` (express-session's). */
  regenerate(req: SessionRequest, callback: StoreCallback): void
  /** Gets the session stored under `sid` as a `Session`, or nothing. */
  load(sid: string, callback: StoreCallback<Session | undefined>): void
  /** A `Session` with a live `Cookie` from stored data. */
  createSession(req: SessionRequest, data: SessionData): Session
}

/** `Store` is callable as well as constructible: `Store.call(this)` in a classic store. */
export interface StoreConstructor {
  new (): Store
  (this: Store): void
  readonly prototype: Store
}

/**
 * express-session's abstract `Store`: an EventEmitter with `regenerate`, `load` and
 * `createSession`. Connect-style stores extend it either way it can be extended: `class X
 * extends Store` (connect-redis) or the classic `function X() { Store.call(this) }` with
 * `util.inherits(X, Store)` (connect-pg-simple, session-file-store, memorystore), which a class
 * cannot support (a class constructor cannot be called without `new`). So it is a function,
 * as in express-session.
 */
export const Store = function Store(this: Store): void {
  EventEmitter.call(this)
} as unknown as StoreConstructor

// What util.inherits(Store, EventEmitter) does, without the deprecated helper.
Object.setPrototypeOf(Store.prototype, EventEmitter.prototype)
Object.setPrototypeOf(Store, EventEmitter)

Object.defineProperties(Store.prototype, {
  regenerate: {
    configurable: true,
    writable: true,
    value: function regenerate(this: Store, req: SessionRequest, callback: StoreCallback): void {
      const self = this as ConnectStore & Store
      self.destroy(req.sessionID ?? '', (error) => {
        self.generate?.(req)
        callback(error)
      })
    },
  },
  load: {
    configurable: true,
    writable: true,
    value: function load(
      this: Store,
      sid: string,
      callback: StoreCallback<Session | undefined>,
    ): void {
      const self = this as ConnectStore & Store
      self.get(sid, (error, data) => {
        if (error !== undefined && error !== null) return callback(error)
        if (data === null || data === undefined) return callback()
        const req = { sessionID: sid, sessionStore: self } as unknown as SessionRequest
        callback(null, self.createSession(req, data))
      })
    },
  },
  createSession: {
    configurable: true,
    writable: true,
    value: function createStoredSession(
      this: Store,
      req: SessionRequest,
      data: SessionData,
    ): Session {
      return createSession(req, data)
    },
  },
})

export function isSessionStore(store: unknown): store is SessionStore {
  const candidate = store as Partial<Record<keyof SessionStore, unknown>> | null
  return (
    candidate !== null &&
    typeof candidate === 'object' &&
    typeof candidate.get === 'function' &&
    typeof candidate.create === 'function' &&
    typeof candidate.update === 'function' &&
    typeof candidate.delete === 'function' &&
    typeof candidate.listByUser === 'function'
  )
}

export function isConnectStore(store: unknown): store is ConnectStore {
  const candidate = store as Partial<Record<keyof ConnectStore, unknown>> | null
  return (
    candidate !== null &&
    typeof candidate === 'object' &&
    typeof candidate.get === 'function' &&
    typeof candidate.set === 'function' &&
    typeof candidate.destroy === 'function'
  )
}
