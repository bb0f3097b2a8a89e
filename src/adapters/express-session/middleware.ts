/**
 * The session middleware, ported from express-session's index.js (1.19, MIT, © 2010 Sencha Inc.,
 * 2011 TJ Holowaychuk, 2014-2015 Douglas Christopher Wilson) and kept in its order, so the two
 * stay diffable: options, `generate`, the on-headers cookie, the `res.end` proxy, `inflate`,
 * `isModified`/`isSaved`, `shouldDestroy`/`shouldSave`/`shouldTouch`/`shouldSetCookie`, the load.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { parseCookieHeader } from '../../core/cookie.js'
import { TesseraError } from '../../core/errors.js'
import type { Keyring } from '../../core/keyring.js'
import { createSessionManager, hashToken } from '../../core/session-manager.js'
import { createMemoryStore } from '../../stores/memory.js'
import { connectBackend, cookieIdleSeconds, tesseraBackend } from './backends.js'
import type { Backend, Entry, Loaded } from './backends.js'
import { Cookie } from './cookie.js'
import { legacyId, PURPOSE, readCookieValue, writeCookieValue } from './cookie-value.js'
import type { CookieId } from './cookie-value.js'
import { appendSetCookie, isSecure, onHeaders, pathnameOf } from './http.js'
import {
  buildKeyring,
  DEFAULT_IDLE_SECONDS,
  isSessionId,
  MAX_ID_LENGTH,
  NO_ABSOLUTE_SECONDS,
  optionalSeconds,
  readSecrets,
  secretPolicyFromEnv,
} from './options.js'
import { CONTEXT, createSession, Session } from './session.js'
import type { RequestContext } from './session.js'
import { isConnectStore, isSessionStore } from './store.js'
import type { Middleware, SecretValue, SessionOptions, SessionRequest } from './types.js'

/**
 * The session middleware. Same options and behaviour as express-session, with hashed store
 * keys, secret rotation, merged concurrent writes on tessera stores and an optional absolute
 * lifetime (see the module comment and docs/migrating.md).
 *
 * @throws TesseraError `config_invalid` for a weak secret (weak ones are accepted only under
 *   `secretPolicy: 'weak'`, the default when `NODE_ENV` is `development` or `test`), an empty
 *   secret array, a store of neither kind, or bad options. Without a `secret` option the secret
 *   is each request's `req.secret` (cookie-parser), and its errors go to `next`.
 * @example
 * ```ts
 * import session from 'tessera-auth/express-session' // was: from 'express-session'
 * app.use(session({ secret: process.env.SESSION_SECRET!, resave: false, saveUninitialized: false }))
 * ```
 */
export function session(options?: SessionOptions): Middleware {
  const opts = options ?? {}
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
  const now = opts.now ?? Date.now
  const secretPolicy = opts.secretPolicy ?? secretPolicyFromEnv()
  const secret = readSecrets(opts.secret)
  const legacyIds = opts.legacyIds === true
  const absoluteSeconds = optionalSeconds(opts.absoluteTimeout, 'absoluteTimeout')

  const store = opts.store ?? createMemoryStore()
  let backendFor: (keyring: Keyring) => Backend
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
    backendFor = (keyring) =>
      tesseraBackend(
        createSessionManager(store, keyring, {
          purpose: PURPOSE,
          cookieName: 'tessera_express_session',
          idleTimeout: idleSeconds,
          absoluteTimeout: absoluteSeconds ?? NO_ABSOLUTE_SECONDS,
          acceptToken: isSessionId,
          idleTimeoutOf: cookieIdleSeconds,
          now,
        }),
        store,
      )
  } else if (isConnectStore(store)) {
    const shared = connectBackend(store, { legacyIds, absoluteSeconds, now })
    backendFor = () => shared
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

  /** The secrets, keyring and backend of a request: the `secret` option's, or `req.secret`'s. */
  interface Signer {
    secrets: readonly SecretValue[]
    keyring: Keyring
    backend: Backend
  }
  const signerOf = (secrets: readonly SecretValue[]): Signer => {
    const keyring = buildKeyring(secrets, secretPolicy)
    return { secrets, keyring, backend: backendFor(keyring) }
  }
  const fixedSigner = secret === undefined ? undefined : signerOf(secret)
  // Without a `secret` option, express-session signs with cookie-parser's `req.secret`: one
  // keyring per distinct secret, a few at most (an app has one).
  const requestSigners = new Map<string, Signer>()
  function signerFor(req: SessionRequest): Signer {
    if (fixedSigner !== undefined) return fixedSigner
    const requestSecret = req.secret
    if (typeof requestSecret !== 'string' || requestSecret.length === 0) {
      throw new TesseraError(
        'config_invalid',
        'express-session: secret option required for sessions (or req.secret, as cookie-parser sets it)',
      )
    }
    let found = requestSigners.get(requestSecret)
    if (found === undefined) {
      found = signerOf([requestSecret])
      if (requestSigners.size >= 8) requestSigners.clear()
      requestSigners.set(requestSecret, found)
    }
    return found
  }

  /** The session id a request carries: the `Cookie` header's, else cookie-parser's. */
  function readCookieId(req: SessionRequest, signer: Signer): CookieId | undefined {
    const legacySecrets = legacyIds ? signer.secrets : undefined
    const header = req.headers.cookie
    if (header !== undefined && header.length > 0) {
      const raw = parseCookieHeader(header)[name]
      const found =
        raw === undefined ? undefined : readCookieValue(raw, signer.keyring, legacySecrets)
      if (found !== undefined) return found
    }
    // Back-compat, as express-session: cookie-parser's verified `s:` cookies (which are
    // express-session's format, so with legacyIds only), then its plain cookies.
    const signed = legacyIds ? req.signedCookies?.[name] : undefined
    if (typeof signed === 'string' && signed.length > 0) {
      const found = legacyId(signed)
      if (found !== undefined) return found
    }
    const plain = req.cookies?.[name]
    if (typeof plain === 'string' && plain.length > 0) {
      return readCookieValue(plain, signer.keyring, legacySecrets)
    }
    return undefined
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

    // ensure a secret is available or bail
    let signer: Signer
    try {
      signer = signerFor(req)
    } catch (error) {
      next(error)
      return
    }
    const { keyring, backend } = signer

    let originalHash: string | undefined
    let originalId: string | undefined
    let savedHash: string | undefined
    let touched = false
    let entry: Entry | undefined
    let resign = false

    req.sessionStore = store
    const fromCookie = readCookieId(req, signer)
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
        backend.load(current).then((loaded) => {
          if (loaded === null) return callback(new Error('failed to load session'))
          entry = { ...loaded.entry, legacy: current.legacy }
          createSession(req, loaded.data, now)
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
        entry = {
          sid: sess.id,
          token: undefined,
          snapshot: new Map(),
          createdAt: now(),
          legacy: false,
        }
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
      // Only a session whose token this request knows can have a cookie (the sid is its hash).
      const token = entry !== undefined && entry.sid === req.sessionID ? entry.token : undefined
      if (token === undefined) return
      try {
        appendSetCookie(res, sess.cookie.serialize(name, writeCookieValue(keyring, token)))
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
          token: undefined,
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
      // genid's result is the token, used as-is in the cookie; the session's id is its hash.
      const token: unknown = generateId(req)
      if (typeof token !== 'string' || !isSessionId(token)) {
        throw new TesseraError(
          'invalid_argument',
          `express-session: genid must return a non-empty string of at most ${MAX_ID_LENGTH} characters`,
        )
      }
      req.sessionID = hashToken(token)
      const sess = new Session(req)
      sess.cookie = new Cookie(cookieOptions, now)
      const secure = isSecure(req, trustProxy)
      if (cookieOptions.secure === 'auto') sess.cookie.secure = secure
      if (cookieOptions.sameSite === 'auto') sess.cookie.sameSite = secure ? 'none' : 'lax'
      req.session = sess
      entry = { sid: req.sessionID, token, snapshot: new Map(), createdAt: now(), legacy: false }
      originalId = req.sessionID
      originalHash = hash(sess)
      resign = false
    }

    function inflate(loaded: Loaded): void {
      entry = loaded.entry
      createSession(req, loaded.data, now)
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
    backend.load(fromCookie as CookieId).then(
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

/** express-session's change detector: SHA-1 of the session JSON without the cookie. */
function hash(sess: Session): string {
  const text = JSON.stringify(sess, function (this: unknown, key: string, value: unknown) {
    return this === sess && key === 'cookie' ? undefined : value
  })
  return createHash('sha1').update(text, 'utf8').digest('hex')
}
