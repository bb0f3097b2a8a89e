/**
 * A drop-in replacement for `express-session`: the same default export, options, `req.session`
 * API, exports (`Store`, `MemoryStore`, `Session`, `Cookie`) and callback store interface, so an
 * app switches by changing one import line. What changes underneath (docs/migrating.md):
 *
 * - the store key is SHA-256 of the session id, never the id (the cookie's bearer secret);
 * - the cookie is signed with tessera's keyring: the first secret signs, every secret verifies,
 *   and a cookie signed with an older secret is re-signed with the first;
 * - weak secrets are refused unless `NODE_ENV` is `development` or `test`;
 * - on a tessera `SessionStore`, a save writes only the keys the request changed, merged with
 *   compare-and-set (the session manager's `update`), so concurrent requests keep each other's
 *   writes, and a destroyed session is never brought back;
 * - an optional absolute lifetime (`absoluteTimeout`).
 *
 * The middleware logic (when to save, touch, set the cookie) is ported from express-session
 * 1.19 (MIT, © 2010 Sencha Inc., 2011 TJ Holowaychuk, 2014-2015 Douglas Christopher Wilson).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { parseCookieHeader, serializeCookie } from '../core/cookie.js'
import type { CookieAttributes } from '../core/cookie.js'
import { TesseraError } from '../core/errors.js'
import { createKeyring, secretWeakness } from '../core/keyring.js'
import type { Keyring } from '../core/keyring.js'
import { createSessionManager, hashToken } from '../core/session-manager.js'
import type { Session as ManagedSession, SessionManager } from '../core/session-manager.js'
import type { JSONValue, SessionRecord, SessionStore } from '../core/session-store.js'
import { signValue, verifyValue } from '../core/signing.js'
import { createMemoryStore } from '../stores/memory.js'

/** Callback of the connect-style store API. */
export type StoreCallback<T = void> = (error?: unknown, result?: T) => void

/** The data of a session as a connect-style store receives and returns it. */
export interface SessionData {
  cookie: CookieData | Cookie
  [key: string]: unknown
}

/** What express-session's `Cookie#data` holds. */
export interface CookieData {
  originalMaxAge: number | null
  expires?: Date | string | null | undefined
  secure?: boolean | undefined
  httpOnly?: boolean | undefined
  domain?: string | undefined
  path?: string | undefined
  sameSite?: boolean | 'lax' | 'strict' | 'none' | undefined
  partitioned?: boolean | undefined
  priority?: 'low' | 'medium' | 'high' | undefined
}

/**
 * The callback store interface of express-session (connect-redis, connect-pg-simple, …).
 * `touch`, `all`, `length` and `clear` are optional, as there.
 */
export interface ConnectStore {
  get(sid: string, callback: StoreCallback<SessionData | null | undefined>): void
  set(sid: string, session: SessionData, callback?: StoreCallback): void
  destroy(sid: string, callback?: StoreCallback): void
  touch?(sid: string, session: SessionData, callback?: StoreCallback): void
  all?(callback: StoreCallback<unknown>): void
  length?(callback: StoreCallback<number>): void
  clear?(callback?: StoreCallback): void
  on?(event: string, listener: () => void): unknown
}

/** Cookie options, as express-session takes them. `maxAge` is milliseconds. */
export interface CookieOptions {
  /** Milliseconds until the cookie (and the session) expires; `null` for a browser-session cookie. @default null */
  maxAge?: number | null
  /** Absolute expiry of the cookie; prefer `maxAge`. */
  expires?: Date | null
  /** @default true */
  httpOnly?: boolean
  /** `'auto'` sets `Secure` when the request came over https (see `proxy`). @default false */
  secure?: boolean | 'auto'
  /** `true` means `Strict`; `'auto'` means `None` on https and `Lax` otherwise. @default 'lax' (sent as `SameSite=Lax`) */
  sameSite?: boolean | 'lax' | 'strict' | 'none' | 'auto'
  /** @default '/' */
  path?: string
  domain?: string
  partitioned?: boolean
  priority?: 'low' | 'medium' | 'high'
}

/** Options of {@link session}: express-session's, plus tessera's own at the end. */
export interface SessionOptions {
  /** One secret, or several: the first signs, every one verifies (rotation). Required. */
  secret: string | readonly string[]
  /** A connect-style store (callback API) or a tessera `SessionStore`. @default a tessera memory store */
  store?: ConnectStore | SessionStore
  /** Cookie name. @default 'connect.sid' */
  name?: string
  /** @deprecated use `name` */
  key?: string
  /** Cookie options, or a function of the request that returns them. */
  cookie?: CookieOptions | ((req: IncomingMessage) => CookieOptions)
  /** Save the session on every request, even unmodified. @default true (with a deprecation note in express-session) */
  resave?: boolean
  /** Save new sessions that were not modified. @default true */
  saveUninitialized?: boolean
  /** Set the cookie (and reset its expiry) on every response. @default false */
  rolling?: boolean
  /** Makes a new session id. @default 32 random bytes, base64url */
  genid?: (req: IncomingMessage) => string
  /** Trust `X-Forwarded-Proto` for `secure` cookies: `true`, `false`, or `undefined` (Express's `trust proxy`). */
  proxy?: boolean
  /** What to do when `req.session` is unset: `'keep'` the stored session or `'destroy'` it. @default 'keep' */
  unset?: 'destroy' | 'keep'
  /**
   * tessera: seconds after which a session ends however active it is (counted from its
   * creation). Unset, sessions live as long as they are used, as in express-session.
   */
  absoluteTimeout?: number
  /**
   * tessera, tessera stores only: idle seconds of a session whose cookie has no `maxAge`.
   * @default cookie.maxAge, or 86400 (a day, connect-redis's default TTL)
   */
  idleTimeout?: number
  /**
   * tessera, connect-style stores only: also read express-session's own `s:<id>.<signature>`
   * cookies and the sessions it stored under the raw id, and move each to the hashed key (and
   * the new cookie format) on its next request. For the switch-over period; see docs/migrating.md.
   * @default false
   */
  legacyIds?: boolean
}

/** What the middleware puts on the request. */
export interface SessionRequest extends IncomingMessage {
  session?: Session | null | undefined
  sessionID?: string | undefined
  sessionStore?: ConnectStore | SessionStore
  originalUrl?: string
  secure?: boolean
}

type Middleware = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (error?: unknown) => void,
) => void

const CONTEXT = Symbol('tessera.express-session')
const PURPOSE = 'express-session'
const CREATED_FIELD = '__tesseraCreatedAt'
const DEFAULT_IDLE_SECONDS = 86_400
/** "No absolute limit" for the session manager, which needs one: 100 years. */
const NO_ABSOLUTE_SECONDS = 100 * 365 * 86_400
const MAX_ID_LENGTH = 512

interface RequestContext {
  save(session: Session, callback: StoreCallback): void
  reload(session: Session, callback: StoreCallback): void
  destroy(session: Session, callback: StoreCallback): void
  regenerate(callback: StoreCallback): void
}

/**
 * express-session's `Cookie`: the cookie settings of one session, with `maxAge` (milliseconds,
 * counting down) and `expires` kept in step.
 */
export class Cookie {
  path = '/'
  httpOnly = true
  declare originalMaxAge: number | null
  declare secure?: boolean | 'auto' | undefined
  declare domain?: string | undefined
  declare sameSite?: boolean | 'lax' | 'strict' | 'none' | 'auto' | undefined
  declare partitioned?: boolean | undefined
  declare priority?: 'low' | 'medium' | 'high' | undefined
  private _expires: Date | null | undefined = undefined

  constructor(options?: CookieOptions | CookieData) {
    this.maxAge = null
    if (options !== undefined && options !== null) {
      if (typeof options !== 'object') throw new TypeError('argument options must be a object')
      for (const key of Object.keys(options)) {
        if (key !== 'data') {
          ;(this as unknown as Record<string, unknown>)[key] = (
            options as unknown as Record<string, unknown>
          )[key]
        }
      }
    }
    if (this.originalMaxAge === undefined || this.originalMaxAge === null) {
      this.originalMaxAge = this.maxAge
    }
  }

  /** Absolute expiry; setting it makes `originalMaxAge` the time left. */
  set expires(date: Date | null | undefined) {
    this._expires = date
    this.originalMaxAge = this.maxAge ?? null
  }

  get expires(): Date | null | undefined {
    return this._expires
  }

  /** Milliseconds left until `expires` (counting down), or `null`. */
  set maxAge(ms: number | null | undefined) {
    if (ms !== null && ms !== undefined && typeof ms !== 'number') {
      throw new TypeError('maxAge must be a number or Date')
    }
    this.expires = typeof ms === 'number' ? new Date(Date.now() + ms) : ms
  }

  get maxAge(): number | null | undefined {
    return this._expires instanceof Date ? this._expires.valueOf() - Date.now() : this._expires
  }

  /** The settings as stored with the session. */
  get data(): CookieData {
    return {
      originalMaxAge: this.originalMaxAge,
      partitioned: this.partitioned,
      priority: this.priority,
      expires: this._expires,
      secure: this.secure === 'auto' ? undefined : this.secure,
      httpOnly: this.httpOnly,
      domain: this.domain,
      path: this.path,
      sameSite: this.sameSite === 'auto' ? undefined : this.sameSite,
    }
  }

  /** A `Set-Cookie` value for `name=value` with these settings. */
  serialize(name: string, value: string): string {
    return serializeCookie(name, encodeURIComponent(value), toAttributes(this))
  }

  toJSON(): CookieData {
    return this.data
  }
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

/**
 * express-session's `MemoryStore` (callback API, one process, never swept): for tests and code
 * written against it. Without a `store` option the middleware uses tessera's bounded memory
 * store instead, which also merges concurrent writes.
 */
export class MemoryStore extends Store implements ConnectStore {
  sessions: Record<string, string> = Object.create(null) as Record<string, string>

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
    if (expires !== undefined && expires !== null && new Date(expires).getTime() <= Date.now()) {
      delete this.sessions[sid]
      return undefined
    }
    return data
  }
}

/** What one request knows about its session in the backend. */
interface Entry {
  sid: string
  /** The session manager's handle (tessera stores), once the session exists in the store. */
  managed?: ManagedSession | undefined
  /** JSON of each top-level key as last read or written (tessera stores). */
  snapshot: Map<string, string>
  /** Creation time, for the absolute lifetime on connect-style stores. */
  createdAt: number
  /** Read from an express-session cookie under the raw id: move it on this request. */
  legacy: boolean
}

interface Loaded {
  data: SessionData
  entry: Entry
}

interface Backend {
  load(sid: string, legacy: boolean): Promise<Loaded | null>
  save(entry: Entry, session: Session): Promise<void>
  touch(entry: Entry, session: Session): Promise<void>
  destroy(entry: Entry): Promise<void>
  readonly touchesOnEnd: boolean
}

/**
 * The session middleware. Same options and behaviour as express-session, with hashed store
 * keys, secret rotation, merged concurrent writes on tessera stores and an optional absolute
 * lifetime (see the module comment and docs/migrating.md).
 *
 * @throws TesseraError `config_invalid` for a missing or weak secret (weak ones are accepted
 *   only when `NODE_ENV` is `development` or `test`), a store of neither kind, or bad options
 * @example
 * ```ts
 * import session from 'tessera-auth/express-session' // was: from 'express-session'
 * app.use(session({ secret: process.env.SESSION_SECRET!, resave: false, saveUninitialized: false }))
 * ```
 */
export default function session(options: SessionOptions): Middleware {
  const opts = options ?? ({} as SessionOptions)
  const cookieOption = opts.cookie ?? {}
  const generateId = opts.genid ?? (() => randomBytes(32).toString('base64url'))
  if (typeof generateId !== 'function') {
    throw new TesseraError('config_invalid', 'express-session: genid must be a function')
  }
  const name = opts.name ?? opts.key ?? 'connect.sid'
  const trustProxy = opts.proxy
  const resaveSession = opts.resave ?? true
  const rollingSessions = opts.rolling === true
  const saveUninitializedSession = opts.saveUninitialized ?? true
  if (opts.unset !== undefined && opts.unset !== 'destroy' && opts.unset !== 'keep') {
    throw new TesseraError('config_invalid', 'express-session: unset must be "destroy" or "keep"')
  }
  const unsetDestroy = opts.unset === 'destroy'
  const secrets = readSecrets(opts.secret)
  const keyring = buildKeyring(secrets)
  const legacyIds = opts.legacyIds === true
  const absoluteSeconds = optionalSeconds(opts.absoluteTimeout, 'absoluteTimeout')
  if (typeof cookieOption === 'object') checkCookieOptions(cookieOption)

  const store = opts.store ?? createMemoryStore()
  let backend: Backend
  if (isSessionStore(store)) {
    if (legacyIds) {
      throw new TesseraError(
        'config_invalid',
        'express-session: legacyIds applies to connect-style stores only (a tessera store holds no express-session sessions)',
      )
    }
    const staticMaxAge = typeof cookieOption === 'object' ? cookieOption.maxAge : undefined
    const idleSeconds =
      optionalSeconds(opts.idleTimeout, 'idleTimeout') ??
      (typeof staticMaxAge === 'number' && staticMaxAge > 0
        ? staticMaxAge / 1000
        : DEFAULT_IDLE_SECONDS)
    backend = tesseraBackend(
      createSessionManager(store, keyring, {
        purpose: PURPOSE,
        cookieName: 'tessera_express_session',
        idleTimeout: idleSeconds,
        absoluteTimeout: absoluteSeconds ?? NO_ABSOLUTE_SECONDS,
        acceptToken: isSessionId,
        idleTimeoutOf: cookieIdleSeconds,
      }),
    )
  } else if (isConnectStore(store)) {
    backend = connectBackend(store, { legacyIds, absoluteSeconds })
  } else {
    throw new TesseraError(
      'config_invalid',
      'express-session: store must be a connect-style store (get/set/destroy with callbacks) or a tessera SessionStore',
    )
  }

  let storeReady = true
  const emitter = store as { on?: (event: string, listener: () => void) => unknown }
  if (typeof emitter.on === 'function') {
    emitter.on('disconnect', () => {
      storeReady = false
    })
    emitter.on('connect', () => {
      storeReady = true
    })
  }

  function readCookieId(
    req: IncomingMessage,
  ): { sid: string; legacy: boolean; resign: boolean } | undefined {
    const raw = parseCookieHeader(req.headers.cookie)[name]
    if (raw === undefined || raw.length === 0) return undefined
    if (raw.startsWith('s:')) {
      if (!legacyIds) return undefined
      const sid = unsignLegacy(raw.slice(2), secrets)
      return sid === null || !isSessionId(sid) ? undefined : { sid, legacy: true, resign: true }
    }
    // SECURITY: the signature is checked before the store is asked (no lookups for forged ids).
    const verified = verifyValue(keyring, PURPOSE, raw)
    if (verified === null || !isSessionId(verified.value)) return undefined
    return { sid: verified.value, legacy: false, resign: verified.needsResign }
  }

  return function sessionMiddleware(request, res, next): void {
    const req = request as SessionRequest
    if (req.session) {
      next()
      return
    }
    if (!storeReady) {
      next()
      return
    }
    const cookieOptions = typeof cookieOption === 'function' ? cookieOption(req) : cookieOption
    const originalPath = pathnameOf(req.originalUrl ?? req.url ?? '/')
    if (!originalPath.startsWith(cookieOptions.path ?? '/')) {
      next()
      return
    }

    let originalHash: string | undefined
    let originalId: string | undefined
    let savedHash: string | undefined
    let touched = false
    let entry: Entry | undefined
    let resign = false

    req.sessionStore = store
    const fromCookie = readCookieId(req)
    const cookieId = fromCookie?.sid
    req.sessionID = cookieId
    if (fromCookie !== undefined) resign = fromCookie.resign

    const context: RequestContext = {
      save(sess, callback) {
        savedHash = hash(sess)
        const current = entryFor(sess)
        backend.save(current, sess).then(() => callback(), callback)
      },
      reload(sess, callback) {
        const current = entryFor(sess)
        backend.load(current.sid, current.legacy).then((loaded) => {
          if (loaded === null) return callback(new Error('failed to load session'))
          entry = { ...loaded.entry, legacy: current.legacy }
          createSession(req, loaded.data)
          callback()
        }, callback)
      },
      destroy(sess, callback) {
        delete req.session
        const current = entryFor(sess)
        backend.destroy(current).then(() => callback(), callback)
      },
      regenerate(callback) {
        const current = req.sessionID === undefined ? undefined : entry
        const done = (error?: unknown): void => {
          generate()
          callback(error)
        }
        if (current === undefined) done()
        else backend.destroy(current).then(() => done(), done)
      },
    }
    ;(req as unknown as Record<symbol, RequestContext>)[CONTEXT] = context

    function entryFor(sess: Session): Entry {
      if (entry === undefined || entry.sid !== sess.id) {
        entry = { sid: sess.id, snapshot: new Map(), createdAt: Date.now(), legacy: false }
      }
      return entry
    }

    onHeaders(res, () => {
      const sess = req.session
      if (!sess) return
      if (!shouldSetCookie(req)) return
      if (sess.cookie.secure === true && !isSecure(req, trustProxy)) return
      if (!touched) {
        sess.touch()
        touched = true
      }
      try {
        const signed = signValue(keyring, PURPOSE, req.sessionID as string)
        appendSetCookie(res, sess.cookie.serialize(name, signed))
      } catch (error) {
        setImmediate(next, error)
      }
    })

    const originalEnd = res.end.bind(res) as (...args: unknown[]) => ServerResponse
    const originalWrite = res.write.bind(res) as (...args: unknown[]) => boolean
    let ended = false
    res.end = function end(this: ServerResponse, ...args: unknown[]): ServerResponse {
      if (ended) return this
      ended = true
      let chunk = typeof args[0] === 'function' ? undefined : args[0]
      let encoding = typeof args[1] === 'string' ? (args[1] as BufferEncoding) : undefined
      let sync = true

      const writeEnd = (): void => {
        if (sync) {
          originalEnd(chunk, encoding)
          sync = false
          return
        }
        originalEnd()
      }
      const writeTop = (): ServerResponse => {
        if (!sync) return res
        const internal = res as unknown as { _header?: unknown; _implicitHeader(): void }
        if (!internal._header) internal._implicitHeader()
        if (chunk === null || chunk === undefined) return res
        const contentLength = Number(res.getHeader('Content-Length'))
        if (!Number.isNaN(contentLength) && contentLength > 0) {
          // Hold back the last byte until the store answered, as express-session does, so the
          // response is not complete before the session is saved.
          const buffer = Buffer.isBuffer(chunk)
            ? chunk
            : Buffer.from(chunk as string, encoding ?? 'utf8')
          encoding = undefined
          if (buffer.length !== 0) {
            originalWrite(buffer.subarray(0, buffer.length - 1))
            chunk = buffer.subarray(buffer.length - 1)
            return res
          }
          chunk = buffer
        }
        originalWrite(chunk, encoding)
        sync = false
        return res
      }
      const fail = (error: unknown): void => {
        setImmediate(next, error)
      }

      if (shouldDestroy(req)) {
        const current = entry ?? {
          sid: req.sessionID as string,
          snapshot: new Map(),
          createdAt: 0,
          legacy: false,
        }
        backend.destroy(current).then(writeEnd, (error: unknown) => {
          fail(error)
          writeEnd()
        })
        return writeTop()
      }
      const sess = req.session
      if (!sess) return originalEnd(chunk, encoding)
      if (!touched) {
        sess.touch()
        touched = true
      }
      if (shouldSave(req)) {
        sess.save((error) => {
          if (error !== undefined && error !== null) fail(error)
          writeEnd()
        })
        return writeTop()
      }
      if (backend.touchesOnEnd && shouldTouch(req) && entry !== undefined) {
        backend.touch(entry, sess).then(writeEnd, (error: unknown) => {
          fail(error)
          writeEnd()
        })
        return writeTop()
      }
      return originalEnd(chunk, encoding)
    } as typeof res.end

    function generate(): void {
      req.sessionID = generateId(req)
      if (typeof req.sessionID !== 'string' || !isSessionId(req.sessionID)) {
        throw new TesseraError(
          'invalid_argument',
          `express-session: genid must return a non-empty string of at most ${MAX_ID_LENGTH} characters`,
        )
      }
      const sess = new Session(req)
      sess.cookie = new Cookie(cookieOptions)
      const secure = isSecure(req, trustProxy)
      if (cookieOptions.secure === 'auto') sess.cookie.secure = secure
      if (cookieOptions.sameSite === 'auto') sess.cookie.sameSite = secure ? 'none' : 'lax'
      req.session = sess
      entry = { sid: req.sessionID, snapshot: new Map(), createdAt: Date.now(), legacy: false }
      originalId = req.sessionID
      originalHash = hash(sess)
      resign = false
    }

    function inflate(loaded: Loaded): void {
      entry = loaded.entry
      createSession(req, loaded.data)
      originalId = req.sessionID
      originalHash = hash(req.session as Session)
      if (!resaveSession) savedHash = originalHash
    }

    function isModified(sess: Session): boolean {
      return originalId !== sess.id || originalHash !== hash(sess)
    }

    function isSaved(sess: Session): boolean {
      return originalId === sess.id && savedHash === hash(sess)
    }

    function shouldDestroy(r: SessionRequest): boolean {
      return (
        r.sessionID !== undefined && unsetDestroy && (r.session === null || r.session === undefined)
      )
    }

    function shouldSave(r: SessionRequest): boolean {
      if (typeof r.sessionID !== 'string' || !r.session) return false
      // A session read from an express-session cookie is written under its hashed key now.
      if (entry?.legacy === true && entry.sid === r.sessionID) return true
      return !saveUninitializedSession && savedHash === undefined && cookieId !== r.sessionID
        ? isModified(r.session)
        : !isSaved(r.session)
    }

    function shouldTouch(r: SessionRequest): boolean {
      if (typeof r.sessionID !== 'string') return false
      return cookieId === r.sessionID && !shouldSave(r)
    }

    function shouldSetCookie(r: SessionRequest): boolean {
      if (typeof r.sessionID !== 'string' || !r.session) return false
      if (cookieId !== r.sessionID) return saveUninitializedSession || isModified(r.session)
      // A cookie signed with an older secret (or in express-session's format) is re-issued.
      if (resign) return true
      return (
        rollingSessions ||
        (r.session.cookie.expires !== null &&
          r.session.cookie.expires !== undefined &&
          isModified(r.session))
      )
    }

    if (cookieId === undefined) {
      try {
        generate()
      } catch (error) {
        next(error)
        return
      }
      next()
      return
    }
    backend.load(cookieId, fromCookie?.legacy === true).then(
      (loaded) => {
        try {
          if (loaded === null) generate()
          else inflate(loaded)
        } catch (error) {
          next(error)
          return
        }
        next()
      },
      (error: unknown) => next(error),
    )
  }
}

/** express-session's `Store#createSession`: a `Session` with a live `Cookie` from stored data. */
function createSession(req: SessionRequest, data: SessionData): Session {
  const stored = (data.cookie ?? {}) as CookieData
  const expires = stored.expires
  const originalMaxAge = stored.originalMaxAge
  const cookie = new Cookie(stored)
  if (typeof expires === 'string') cookie.expires = new Date(expires)
  cookie.originalMaxAge = originalMaxAge
  const sess = new Session(req, { ...data, cookie })
  req.session = sess
  return sess
}

function tesseraBackend(manager: SessionManager): Backend {
  return {
    touchesOnEnd: false,

    async load(sid) {
      // The manager checks expiry (idle from the cookie's maxAge, absolute) and extends the idle
      // expiry at most once per tenth of the window: this replaces express-session's touch.
      const found = await manager.validateToken(sid)
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
        entry: { sid, managed, snapshot, createdAt: managed.createdAt, legacy: false },
      }
    },

    async save(entry, sess) {
      const current = toStoredData(sess)
      if (entry.managed === undefined) {
        const issued = await manager.create(null, { data: current, token: entry.sid })
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
      else {
        const found = await manager.validateToken(entry.sid)
        if (found !== null) await manager.revoke(found.session)
      }
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
function cookieIdleSeconds(record: SessionRecord): number | undefined {
  const cookie = record.data.cookie
  if (cookie === null || typeof cookie !== 'object' || Array.isArray(cookie)) return undefined
  const maxAge = cookie.originalMaxAge
  return typeof maxAge === 'number' && maxAge > 0 ? maxAge / 1000 : undefined
}

function connectBackend(
  store: ConnectStore,
  options: { legacyIds: boolean; absoluteSeconds: number | undefined },
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

    async load(sid, legacy) {
      // SECURITY: the store key is SHA-256 of the id, so whoever reads the store (a backup, a
      // replica, `KEYS *`) finds no usable session id (OWASP ASVS 3.2.2).
      const key = legacy ? sid : hashToken(sid)
      let data: SessionData | null | undefined
      try {
        data = await call<SessionData | null | undefined>((callback) => store.get(key, callback))
      } catch (error) {
        if ((error as { code?: unknown }).code === 'ENOENT') return null
        throw error
      }
      if (data === null || data === undefined) return null
      let createdAt = Date.now()
      const stamp = data[CREATED_FIELD]
      if (typeof stamp === 'number') createdAt = stamp
      const copy = { ...data }
      delete copy[CREATED_FIELD]
      if (
        options.absoluteSeconds !== undefined &&
        Date.now() >= createdAt + options.absoluteSeconds * 1000
      ) {
        // SECURITY: the absolute limit ends a session however active it is (OWASP ASVS 3.3.2).
        await call((callback) => store.destroy(key, callback))
        return null
      }
      return { data: copy, entry: { sid, snapshot: new Map(), createdAt, legacy } }
    },

    async save(entry, sess) {
      await call((callback) => store.set(hashToken(entry.sid), storedForm(entry, sess), callback))
      if (entry.legacy) {
        // Moved to the hashed key: the raw-id copy goes, so the id is no longer in the store.
        await call((callback) => store.destroy(entry.sid, callback))
        entry.legacy = false
      }
    },

    async touch(entry, sess) {
      if (typeof store.touch !== 'function') return
      const touch = store.touch.bind(store)
      await call((callback) => touch(hashToken(entry.sid), storedForm(entry, sess), callback))
    },

    async destroy(entry) {
      await call((callback) => store.destroy(hashToken(entry.sid), callback))
      if (entry.legacy) await call((callback) => store.destroy(entry.sid, callback))
    },
  }
}

function isSessionStore(store: unknown): store is SessionStore {
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

function isConnectStore(store: unknown): store is ConnectStore {
  const candidate = store as Partial<Record<keyof ConnectStore, unknown>> | null
  return (
    candidate !== null &&
    typeof candidate === 'object' &&
    typeof candidate.get === 'function' &&
    typeof candidate.set === 'function' &&
    typeof candidate.destroy === 'function'
  )
}

function isSessionId(sid: string): boolean {
  return sid.length > 0 && sid.length <= MAX_ID_LENGTH
}

function readSecrets(secret: unknown): string[] {
  const list =
    typeof secret === 'string' ? [secret] : Array.isArray(secret) ? [...(secret as unknown[])] : []
  if (list.length === 0 || !list.every((item) => typeof item === 'string' && item.length > 0)) {
    throw new TesseraError(
      'config_invalid',
      'express-session: option "secret" is required: a string, or an array of strings (the first signs, all verify)',
    )
  }
  return list as string[]
}

function buildKeyring(secrets: readonly string[]): Keyring {
  const env = process.env.NODE_ENV
  const development = env === 'development' || env === 'test'
  const weak = secrets.some((secret) => secretWeakness(secret) !== null)
  try {
    return createKeyring(secrets[0] as string, {
      fallbacks: secrets.slice(1),
      // SECURITY: a guessable secret lets anyone forge session cookies; express-session accepts
      // "keyboard cat", tessera accepts a weak secret only in development and tests.
      policy: weak && development ? 'weak' : 'strict',
      onWarning: (message) => console.warn(`express-session: ${message}`),
    })
  } catch (error) {
    if (error instanceof TesseraError) {
      throw new TesseraError(
        'config_invalid',
        `express-session: option "secret": ${error.message} (a weak secret is accepted only when NODE_ENV is development or test)`,
        { cause: error },
      )
    }
    throw error
  }
}

function optionalSeconds(value: unknown, option: string): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TesseraError(
      'config_invalid',
      `express-session: ${option} must be a positive number of seconds`,
    )
  }
  return value
}

function checkCookieOptions(options: CookieOptions): void {
  try {
    const probe = new Cookie(options)
    if (options.secure === 'auto') probe.secure = true
    if (options.sameSite === 'auto') probe.sameSite = 'none'
    serializeCookie('probe', 'x', toAttributes(probe))
  } catch (error) {
    throw new TesseraError(
      'config_invalid',
      `express-session: cookie options are unusable: ${(error as Error).message}`,
      { cause: error },
    )
  }
}

function toAttributes(cookie: Cookie): CookieAttributes {
  const attributes: CookieAttributes = {
    path: cookie.path,
    httpOnly: cookie.httpOnly !== false,
    secure: cookie.secure === true,
  }
  const expires = cookie.expires
  if (expires instanceof Date) attributes.expires = expires
  if (cookie.domain !== undefined) attributes.domain = cookie.domain
  const sameSite = cookie.sameSite
  if (sameSite === true || sameSite === 'strict') attributes.sameSite = 'Strict'
  else if (sameSite === 'none') attributes.sameSite = 'None'
  else attributes.sameSite = 'Lax'
  if (cookie.partitioned === true) attributes.partitioned = true
  if (cookie.priority !== undefined) {
    attributes.priority = (cookie.priority.charAt(0).toUpperCase() + cookie.priority.slice(1)) as
      'Low' | 'Medium' | 'High'
  }
  return attributes
}

/** cookie-signature's `unsign`, for express-session's `s:` cookies (legacyIds only). */
function unsignLegacy(value: string, secrets: readonly string[]): string | null {
  const dot = value.lastIndexOf('.')
  if (dot <= 0) return null
  const sid = value.slice(0, dot)
  const given = Buffer.from(value)
  for (const secret of secrets) {
    const expected = Buffer.from(
      `${sid}.${createHmac('sha256', secret).update(sid).digest('base64').replace(/=+$/, '')}`,
    )
    // SECURITY: constant-time comparison of the whole signed value.
    if (expected.length === given.length && timingSafeEqual(expected, given)) return sid
  }
  return null
}

/** express-session's change detector: SHA-1 of the session JSON without the cookie. */
function hash(sess: Session): string {
  const text = JSON.stringify(sess, function (this: unknown, key: string, value: unknown) {
    return this === sess && key === 'cookie' ? undefined : value
  })
  return createHash('sha1').update(text, 'utf8').digest('hex')
}

function isSecure(req: SessionRequest, trustProxy: boolean | undefined): boolean {
  const socket = req.socket as { encrypted?: boolean } | undefined
  if (socket?.encrypted === true) return true
  if (trustProxy === false) return false
  if (trustProxy !== true) return req.secure === true
  const header = req.headers['x-forwarded-proto']
  const value = (Array.isArray(header) ? header[0] : header) ?? ''
  const comma = value.indexOf(',')
  const proto = (comma === -1 ? value : value.slice(0, comma)).toLowerCase().trim()
  return proto === 'https'
}

function pathnameOf(url: string): string {
  const end = url.search(/[?#]/)
  const path = end === -1 ? url : url.slice(0, end)
  if (path.startsWith('/')) return path
  try {
    return new URL(url).pathname
  } catch {
    return '/'
  }
}

function appendSetCookie(res: ServerResponse, value: string): void {
  const previous = res.getHeader('Set-Cookie')
  const list = previous === undefined ? [] : Array.isArray(previous) ? previous : [String(previous)]
  res.setHeader('Set-Cookie', [...list, value])
}

/** Runs `listener` once, just before the response headers are written (like `on-headers`). */
function onHeaders(res: ServerResponse, listener: () => void): void {
  const writeHead = res.writeHead.bind(res)
  let fired = false
  res.writeHead = function (this: ServerResponse, ...args: unknown[]): ServerResponse {
    if (!fired) {
      fired = true
      // Headers passed to writeHead itself are applied after ours, as Node would.
      if (typeof args[0] === 'number') this.statusCode = args[0]
      listener()
    }
    return (writeHead as (...a: unknown[]) => ServerResponse)(...args)
  }
}

function noop(): void {}

// express-session hangs its classes on the default export (`session.MemoryStore`, and
// `session.Store` for stores written as `require('connect-x')(session)`): so does the drop-in.
session.Store = Store
session.MemoryStore = MemoryStore
session.Session = Session
session.Cookie = Cookie

export { session }
