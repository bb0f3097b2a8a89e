import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { TesseraError } from '../core/errors.js'
import {
  checkAALLevel,
  checkMaxAge,
  checkPermissionName,
  createRequestAuth,
  refusalBody,
  refusalOfError,
} from '../core/request-auth.js'
import type {
  AuthRefusal,
  AuthUser,
  RequestAuth,
  RequestAuthOptions,
  RequestAuthState,
  SignInOptions,
} from '../core/request-auth.js'
import type { Session } from '../core/session-manager.js'

export type {
  AuthUser,
  RequestAuthOptions as TesseraExpressOptions,
  RequestAuthState,
  SignInOptions,
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace -- Express types live in this namespace
  namespace Express {
    interface Request {
      /**
       * tessera's authentication of this request, set by the `tessera()` middleware. Named
       * `tessera`, not `session`, so it never clashes with express-session's `req.session`.
       */
      tessera?: RequestAuthState
    }
  }
}

/** The middleware and guards of one tessera setup for Express; built by {@link tessera}. */
export interface TesseraExpress {
  /** Authenticates every request: sets `req.tessera`, refuses cross-site requests (403), 503 when the store is down. */
  middleware: RequestHandler
  /** A guard: `401 unauthenticated` without a signed-in user. */
  requireAuth: RequestHandler
  /**
   * A guard: `401` without a user, `403 forbidden` without the permission.
   * @throws TesseraError `config_invalid` at setup when `permission` is not `app.action`
   */
  requirePermission(permission: string): RequestHandler
  /**
   * A guard for sensitive changes: `401` without a user, `403 reauthentication_required` unless
   * the user proved a credential within the last `maxAgeSeconds`.
   * @throws TesseraError `config_invalid` at setup unless `maxAgeSeconds` is positive
   */
  requireFresh(maxAgeSeconds: number): RequestHandler
  /**
   * A guard: `401` without a user, `403 reauthentication_required` unless the sign-in reached
   * assurance level `level` (2: a second factor, or a passkey with user verification).
   * @throws TesseraError `config_invalid` at setup unless `level` is 1 or 2
   */
  requireAAL(level: 1 | 2): RequestHandler
  /** The framework-neutral core it calls. */
  auth: RequestAuth
}

function send(res: Response, refusal: AuthRefusal): void {
  for (const [name, value] of Object.entries(refusal.headers)) res.setHeader(name, value)
  res.status(refusal.status).json(refusalBody(refusal))
}

function header(req: Request, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value[0] : value
}

/**
 * tessera for Express 4 and 5: authentication middleware, guards, CSRF and bearer tokens.
 *
 * @throws TesseraError `config_invalid` for bad options (at setup, not on the first request)
 * @example
 * ```ts
 * const auth = tessera({ sessions, keyring, trustedOrigins: ['https://app.example.com'] })
 * app.use(auth.middleware)
 * app.post('/login', async (req, res) => { await signIn(req, res, user.id); res.json({ ok: true }) })
 * app.get('/me', auth.requireAuth, (req, res) => res.json({ user: currentUser(req) }))
 * app.delete('/posts/:id', auth.requirePermission('posts.delete'), handler)
 * app.post('/email', auth.requireFresh(600), changeEmail)
 * ```
 */
export function tessera(options: RequestAuthOptions): TesseraExpress {
  const auth = createRequestAuth(options)

  const middleware: RequestHandler = (req, res, next) => {
    // Express 4 does not catch rejected promises: every path ends in next() or a response.
    auth
      .authenticate(
        {
          method: req.method,
          cookie: header(req, 'cookie'),
          authorization: header(req, 'authorization'),
          secFetchSite: header(req, 'sec-fetch-site'),
          origin: header(req, 'origin'),
          csrfToken: header(req, 'x-csrf-token'),
          ip: req.ip,
          userAgent: header(req, 'user-agent'),
        },
        (value) => {
          res.append('Set-Cookie', value)
        },
      )
      .then((result) => {
        if (!result.ok) {
          send(res, result.refusal)
          return
        }
        req.tessera = result.state
        next()
      }, next)
  }

  function guard(
    check: (state: RequestAuthState | undefined) => AuthRefusal | null,
  ): RequestHandler {
    return (req, res, next) => {
      const refused = check(req.tessera)
      if (refused === null) next()
      else send(res, refused)
    }
  }

  return {
    middleware,
    requireAuth: guard((state) => auth.requireAuth(state)),
    requirePermission(permission: string): RequestHandler {
      const name = checkPermissionName(permission)
      return guard((state) => auth.requirePermission(state, name))
    },
    requireFresh(maxAgeSeconds: number): RequestHandler {
      const maxAge = checkMaxAge(maxAgeSeconds)
      return guard((state) => auth.requireFresh(state, maxAge))
    },
    requireAAL(level: 1 | 2): RequestHandler {
      const checked = checkAALLevel(level)
      return guard((state) => auth.requireAAL(state, checked))
    },
    auth,
  }
}

function stateOf(req: Request): RequestAuthState {
  const state = req.tessera
  if (state === undefined) {
    throw new TesseraError(
      'config_invalid',
      'tessera-auth/express: install the tessera().middleware before this route',
    )
  }
  return state
}

/** The signed-in user of the request, or `null`. */
export function currentUser(req: Request): AuthUser | null {
  return req.tessera?.user ?? null
}

/** The session of the request, or `null`. */
export function currentSession(req: Request): Session | null {
  return req.tessera?.session ?? null
}

/**
 * Signs `userId` in with a new session (the old one is deleted: no session fixation) and sets
 * its cookie on `res`. `res` is taken for symmetry with Express handlers; the cookie goes
 * through the response the middleware saw.
 * @throws TesseraError `store_unavailable`; `config_invalid` without the middleware
 */
export async function signIn(
  req: Request,
  _res: Response,
  userId: string,
  options?: SignInOptions,
): Promise<Session> {
  return stateOf(req).signIn(userId, options)
}

/** Deletes the request's session and clears its cookie. @throws TesseraError `store_unavailable` */
export async function signOut(req: Request, _res: Response): Promise<void> {
  await stateOf(req).signOut()
}

/** A CSRF token for the `X-CSRF-Token` header, bound to the request's session. */
export function csrfToken(req: Request): string {
  return stateOf(req).csrfToken()
}

/**
 * An Express error handler that answers a store outage (`store_unavailable`) with
 * `503 unavailable` in the API.md error shape, and passes every other error on.
 * Install it after your routes: `app.use(tesseraErrors)`.
 */
export function tesseraErrors(
  error: unknown,
  _req: Request,
  res: Response,
  next: NextFunction,
): void {
  const refused = refusalOfError(error)
  if (refused === null || res.headersSent) {
    next(error)
    return
  }
  send(res, refused)
}
