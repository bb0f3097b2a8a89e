import type { Context, MiddlewareHandler } from 'hono'
import { TesseraError } from '../core/errors.js'
import {
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

export type { AuthUser, RequestAuthState, SignInOptions }

/** Options of {@link tessera} for Hono. */
export interface TesseraHonoOptions extends RequestAuthOptions {
  /**
   * The client address of a request, stored in new sessions' meta (Hono has no portable one;
   * on Node use `getConnInfo` from `@hono/node-server/conninfo`, or `clientIp` behind proxies).
   */
  clientIp?: (c: Context) => string | undefined
}

/** The context variables tessera sets: `c.get('session')`, `c.get('user')`, `c.get('tessera')`. */
export interface TesseraVariables {
  /** The request's authentication state (sign in, sign out, CSRF token). */
  tessera: RequestAuthState
  /** The validated session at the time the middleware ran, or `null`. */
  session: Session | null
  /** The signed-in user at the time the middleware ran, or `null`. */
  user: AuthUser | null
}

/** The Hono env of routes behind tessera: `new Hono<TesseraEnv>()`. */
export interface TesseraEnv {
  Variables: TesseraVariables
}

/** The middleware and guards of one tessera setup for Hono; built by {@link tessera}. */
export interface TesseraHono {
  /** Authenticates every request, refuses cross-site requests (403), 503 when the store is down. */
  middleware: MiddlewareHandler<TesseraEnv>
  /** A guard: `401 unauthenticated` without a signed-in user. */
  requireAuth: MiddlewareHandler<TesseraEnv>
  /**
   * A guard: `401` without a user, `403 forbidden` without the permission.
   * @throws TesseraError `config_invalid` at setup when `permission` is not `app.action`
   */
  requirePermission(permission: string): MiddlewareHandler<TesseraEnv>
  /** The framework-neutral core it calls. */
  auth: RequestAuth
}

function send(c: Context, refusal: AuthRefusal): Response {
  for (const [name, value] of Object.entries(refusal.headers)) c.header(name, value)
  return c.json(refusalBody(refusal), refusal.status)
}

function stateOf(c: Context<TesseraEnv>): RequestAuthState {
  const state = c.get('tessera') as RequestAuthState | undefined
  if (state === undefined) {
    throw new TesseraError(
      'config_invalid',
      'tessera-auth/hono: use the tessera().middleware before this route',
    )
  }
  return state
}

/**
 * tessera for Hono: middleware with typed context variables, guards, CSRF and bearer tokens.
 *
 * @throws TesseraError `config_invalid` for bad options (at setup, not on the first request)
 * @example
 * ```ts
 * const auth = tessera({ sessions, keyring, trustedOrigins: ['https://app.example.com'] })
 * const app = new Hono<TesseraEnv>()
 * app.use(auth.middleware)
 * app.get('/me', auth.requireAuth, (c) => c.json({ user: c.get('user') }))
 * ```
 */
export function tessera(options: TesseraHonoOptions): TesseraHono {
  const auth = createRequestAuth(options)
  const clientIp = options.clientIp

  const middleware: MiddlewareHandler<TesseraEnv> = async (c, next) => {
    const headers = c.req.raw.headers
    const result = await auth.authenticate(
      {
        method: c.req.method,
        cookie: headers.get('cookie'),
        authorization: headers.get('authorization'),
        secFetchSite: headers.get('sec-fetch-site'),
        origin: headers.get('origin'),
        csrfToken: headers.get('x-csrf-token'),
        ip: clientIp?.(c),
        userAgent: headers.get('user-agent'),
      },
      (value) => {
        c.header('Set-Cookie', value, { append: true })
      },
    )
    if (!result.ok) return send(c, result.refusal)
    c.set('tessera', result.state)
    c.set('session', result.state.session)
    c.set('user', result.state.user)
    try {
      await next()
    } catch (error) {
      // A store outage inside a route (sign in, sign out) becomes 503, never 500.
      const refused = refusalOfError(error)
      if (refused === null) throw error
      c.res = send(c, refused)
    }
    // Hono catches route errors itself and hands them to onError before we see them.
    if (c.error !== undefined) {
      const refused = refusalOfError(c.error)
      if (refused !== null) c.res = send(c, refused)
    }
    return undefined
  }

  function guard(
    check: (state: RequestAuthState | undefined) => AuthRefusal | null,
  ): MiddlewareHandler<TesseraEnv> {
    return async (c, next) => {
      const refused = check(c.get('tessera'))
      if (refused !== null) return send(c, refused)
      await next()
      return undefined
    }
  }

  return {
    middleware,
    requireAuth: guard((state) => auth.requireAuth(state)),
    requirePermission(permission: string): MiddlewareHandler<TesseraEnv> {
      const name = checkPermissionName(permission)
      return guard((state) => auth.requirePermission(state, name))
    },
    auth,
  }
}

/**
 * Signs `userId` in with a new session (the old one is deleted: no session fixation), sets its
 * cookie, and updates `c.get('session')` / `c.get('user')`. @throws TesseraError `store_unavailable`
 */
export async function signIn(
  c: Context<TesseraEnv>,
  userId: string,
  options?: SignInOptions,
): Promise<Session> {
  const state = stateOf(c)
  const session = await state.signIn(userId, options)
  c.set('session', state.session)
  c.set('user', state.user)
  return session
}

/** Deletes the request's session and clears its cookie. @throws TesseraError `store_unavailable` */
export async function signOut(c: Context<TesseraEnv>): Promise<void> {
  const state = stateOf(c)
  await state.signOut()
  c.set('session', null)
  c.set('user', null)
}

/** A CSRF token for the `X-CSRF-Token` header, bound to the request's session. */
export function csrfToken(c: Context<TesseraEnv>): string {
  return stateOf(c).csrfToken()
}
