/** express-session's `Session`, bound to the request context the middleware provides. */
import { TesseraError } from '../../core/errors.js'
import { Cookie } from './cookie.js'
import type { CookieData, SessionData, SessionRequest, StoreCallback } from './types.js'

export const CONTEXT = Symbol('tessera.express-session')

export interface RequestContext {
  save(session: Session, callback: StoreCallback): void
  reload(session: Session, callback: StoreCallback): void
  destroy(session: Session, callback: StoreCallback): void
  regenerate(callback: StoreCallback): void
}

/**
 * express-session's `Session`: the session data as own properties, plus `id`, `cookie` and the
 * methods `regenerate`, `destroy`, `reload`, `save`, `touch` and `resetMaxAge`.
 */
export class Session {
  declare readonly id: string
  declare readonly req: SessionRequest
  declare cookie: Cookie;
  [key: string]: unknown

  constructor(req: SessionRequest, data?: object | null) {
    Object.defineProperty(this, 'req', { value: req })
    Object.defineProperty(this, 'id', { value: req.sessionID })
    if (typeof data === 'object' && data !== null) {
      for (const prop in data) {
        if (!(prop in this)) this[prop] = (data as Record<string, unknown>)[prop]
      }
    }
  }

  /** Resets the cookie's `maxAge` (done for you at the end of every request). */
  touch(): this {
    return this.resetMaxAge()
  }

  resetMaxAge(): this {
    this.cookie.maxAge = this.cookie.originalMaxAge
    return this
  }

  /** Saves the session now (done for you at the end of a request when it changed). */
  save(callback?: StoreCallback): this {
    contextOf(this).save(this, callback ?? noop)
    return this
  }

  /** Re-reads the session from the store. */
  reload(callback: StoreCallback): this {
    contextOf(this).reload(this, callback)
    return this
  }

  /** Deletes the session and unsets `req.session`. */
  destroy(callback?: StoreCallback): this {
    contextOf(this).destroy(this, callback ?? noop)
    return this
  }

  /** Replaces the session with a new, empty one under a new id (call it on login). */
  regenerate(callback: StoreCallback): this {
    contextOf(this).regenerate(callback)
    return this
  }
}

for (const name of ['touch', 'resetMaxAge', 'save', 'reload', 'destroy', 'regenerate']) {
  const descriptor = Object.getOwnPropertyDescriptor(Session.prototype, name)
  if (descriptor !== undefined) {
    Object.defineProperty(Session.prototype, name, { ...descriptor, enumerable: false })
  }
}

function contextOf(session: Session): RequestContext {
  const context = (session.req as unknown as Record<symbol, RequestContext | undefined>)[CONTEXT]
  if (context === undefined) {
    throw new TesseraError(
      'invalid_argument',
      'express-session: this session was not created by the session middleware',
    )
  }
  return context
}

/** express-session's `Store#createSession`: a `Session` with a live `Cookie` from stored data. */
export function createSession(
  req: SessionRequest,
  data: SessionData,
  now: () => number = Date.now,
): Session {
  // As in express-session, a stored session without `cookie` is an error (a TypeError passed to
  // `next`), not a fresh cookie: the store holds something this middleware did not write.
  const stored = data.cookie as CookieData
  const expires = stored.expires
  const originalMaxAge = stored.originalMaxAge
  const cookie = new Cookie(stored, now)
  if (typeof expires === 'string') cookie.expires = new Date(expires)
  cookie.originalMaxAge = originalMaxAge
  const sess = new Session(req, { ...data, cookie })
  req.session = sess
  return sess
}

export function noop(): void {}
