/** The types of the express-session drop-in: options, stored data, the connect store API. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { SessionStore } from '../../core/session-store.js'
import type { Cookie } from './cookie.js'
import type { Session } from './session.js'

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

/** A secret as express-session takes it. */
export type SecretValue = string | Buffer

/** Cookie options, as express-session takes them. `maxAge` is milliseconds. */
export interface CookieOptions {
  /** Milliseconds until the cookie (and the session) expires; `null` for a browser-session cookie. @default null */
  maxAge?: number | Date | null
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
  /**
   * One secret, or several: the first signs, every one verifies (rotation). Strings or Buffers.
   * Without it, each request's `req.secret` (set by cookie-parser) is used, as in
   * express-session, and a request with neither gets an error through `next`.
   */
  secret?: SecretValue | readonly SecretValue[] | undefined
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
  /**
   * tessera: what to do with a weak secret (under 32 bytes, one repeated character, a published
   * sample such as `keyboard cat`): `'strict'` refuses it (`config_invalid`), `'weak'` accepts
   * it with a warning, for development and tests.
   * @default 'weak' when `NODE_ENV` is `development` or `test` (read once, when the middleware
   *   is built), else 'strict'
   */
  secretPolicy?: 'strict' | 'weak'
  /**
   * tessera: the clock, epoch milliseconds, for cookie expiry and the idle and absolute
   * lifetimes (tests inject one).
   * @default Date.now
   */
  now?: () => number
}

/** What the middleware puts on the request. */
export interface SessionRequest extends IncomingMessage {
  /** cookie-parser's secret, used when the middleware has no `secret` option. */
  secret?: string | undefined
  /** cookie-parser's parsed cookies, read when the `Cookie` header has no session cookie. */
  cookies?: Record<string, unknown> | undefined
  /** cookie-parser's verified cookies (express-session's `s:` format; with `legacyIds` only). */
  signedCookies?: Record<string, unknown> | undefined
  session?: Session | null | undefined
  sessionID?: string | undefined
  sessionStore?: ConnectStore | SessionStore
  originalUrl?: string
  secure?: boolean
}

export type Middleware = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (error?: unknown) => void,
) => void
