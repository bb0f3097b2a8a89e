/** express-session's abstract `Store`, and how the middleware tells the two kinds of store apart. */
import { EventEmitter } from 'node:events'
import type { SessionStore } from '../../core/session-store.js'
import { createSession } from './session.js'
import type { Session } from './session.js'
import type { ConnectStore, SessionData, SessionRequest, StoreCallback } from './types.js'

/**
 * express-session's abstract `Store`: an EventEmitter with `regenerate`, `load` and
 * `createSession`. Connect-style stores written for express-session extend this.
 */
export class Store extends EventEmitter {
  /** Set by express-session's middleware; kept for stores that call it. */
  declare generate?: (req: SessionRequest) => void

  regenerate(req: SessionRequest, callback: StoreCallback): void {
    const self = this as unknown as ConnectStore & Store
    self.destroy(req.sessionID ?? '', (error) => {
      self.generate?.(req)
      callback(error)
    })
  }

  load(sid: string, callback: StoreCallback<Session | undefined>): void {
    const self = this as unknown as ConnectStore & Store
    self.get(sid, (error, data) => {
      if (error !== undefined && error !== null) return callback(error)
      if (data === null || data === undefined) return callback()
      const req = { sessionID: sid, sessionStore: self } as unknown as SessionRequest
      callback(null, this.createSession(req, data))
    })
  }

  createSession(req: SessionRequest, data: SessionData): Session {
    return createSession(req, data)
  }
}

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
