import type { Context, MiddlewareHandler } from 'hono'
import { isSafeMethod } from '../core/csrf.js'
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

export type { AuthRefusal, AuthUser, RequestAuthState, SignInOptions }

/** Options of {@link tessera} for Hono. */
export interface TesseraHonoOptions<R = unknown> extends RequestAuthOptions<R> {
  /**
   * The client address of a request, stored in new sessions' meta (Hono has no portable one;
   * on Node use `getConnInfo` from `@hono/node-server/conninfo`, or `clientIp` behind proxies).
   */
  clientIp?: (c: Context) => string | undefined
  /**
   * Where an unsafe request's CSRF token is read. With `csrf: { proof: 'form-token' }`, read the
   * form's `_csrf` field here (Hono keeps the body, so the route can read it again).
   * @default the `X-CSRF-Token` header
   */
  csrfToken?: (c: Context) => string | null | undefined | Promise<string | null | undefined>
  /**
   * How a refusal is answered, e.g. an HTML page or a redirect to a sign-in page.
   * @default the API.md JSON body with the refusal's status and headers
   */
  onRefusal?: (c: Context, refusal: AuthRefusal) => Response | Promise<Response>
}

/** The context variables tessera sets: `c.get('session')`, `c.get('user')`, `c.get('tessera')`. */
export interface TesseraVariables<R = unknown> {
  /** The request's authentication state (sign in, sign out, CSRF token). */
  tessera: RequestAuthState<R>
  /** The validated session at the time the middleware ran, or `null`. */
  session: Session | null
  /** The signed-in user at the time the middleware ran, or `null`. */
  user: AuthUser<R> | null
}

/** The Hono env of routes behind tessera: `new Hono<TesseraEnv>()`. */
export interface TesseraEnv<R = unknown> {
  Variables: TesseraVariables<R>
}

/** The middleware and guards of one tessera setup for Hono; built by {@link tessera}. */
export interface TesseraHono<R = unknown> {
  /** Authenticates every request, refuses cross-site requests (403), 503 when the store is down. */
  middleware: MiddlewareHandler<TesseraEnv<R>>
  /** A guard: `401 unauthenticated` without a signed-in user. */
  requireAuth: MiddlewareHandler<TesseraEnv<R>>
  /**
   * A guard: `401` without a user, `403 forbidden` without the permission.
   * @throws TesseraError `config_invalid` at setup when `permission` is not `app.action`
   */
  requirePermission(permission: string): MiddlewareHandler<TesseraEnv<R>>
  /**
   * A guard for sensitive changes: `401` without a user, `403 reauthentication_required` unless
   * the user proved a credential within the last `maxAgeSeconds`.
   * @throws TesseraError `config_invalid` at setup unless `maxAgeSeconds` is positive
   */
  requireFresh(maxAgeSeconds: number): MiddlewareHandler<TesseraEnv<R>>
  /**
   * A guard: `401` without a user, `403 reauthentication_required` unless the sign-in reached
   * assurance level `level` (2: a second factor, or a passkey with user verification).
   * @throws TesseraError `config_invalid` at setup unless `level` is 1 or 2
   */
  requireAAL(level: 1 | 2): MiddlewareHandler<TesseraEnv<R>>
  /** The framework-neutral core it calls. */
  auth: RequestAuth<R>
}

function json(c: Context, refusal: AuthRefusal): Response {
  for (const [name, value] of Object.entries(refusal.headers)) c.header(name, value)
  return c.json(refusalBody(refusal), refusal.status)
}

function stateOf<R>(c: Context<TesseraEnv<R>>): RequestAuthState<R> {
  const state = c.get('tessera') as RequestAuthState<R> | undefined
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
 * app.post('/email', auth.requireFresh(600), changeEmail)
 * ```
 */
export function tessera<R = unknown>(options: TesseraHonoOptions<R>): TesseraHono<R> {
  const auth = createRequestAuth<R>(options)
  const clientIp = options.clientIp
  const readToken = options.csrfToken
  const onRefusal = options.onRefusal
  const send = (c: Context, refusal: AuthRefusal): Response | Promise<Response> =>
    onRefusal === undefined ? json(c, refusal) : onRefusal(c, refusal)

  const middleware: MiddlewareHandler<TesseraEnv<R>> = async (c, next) => {
    const headers = c.req.raw.headers
    const method = c.req.method
    // Only unsafe requests are checked for where they come from: a GET reads three headers.
    const unsafe = !isSafeMethod(method)
    const result = await auth.authenticate(
      {
        method,
        cookie: headers.get('cookie'),
        authorization: headers.get('authorization'),
        secFetchSite: unsafe ? headers.get('sec-fetch-site') : undefined,
        origin: unsafe ? headers.get('origin') : undefined,
        csrfToken: !unsafe
          ? undefined
          : readToken === undefined
            ? headers.get('x-csrf-token')
            : await readToken(c),
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
      c.res = await send(c, refused)
    }
    // Hono catches route errors itself and hands them to onError before we see them.
    if (c.error !== undefined) {
      const refused = refusalOfError(c.error)
      if (refused !== null) c.res = await send(c, refused)
    }
    return undefined
  }

  function guard(
    check: (state: RequestAuthState<R> | undefined) => AuthRefusal | null,
  ): MiddlewareHandler<TesseraEnv<R>> {
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
    requirePermission(permission) {
      const name = checkPermissionName(permission)
      return guard((state) => auth.requirePermission(state, name))
    },
    requireFresh(maxAgeSeconds) {
      const maxAge = checkMaxAge(maxAgeSeconds)
      return guard((state) => auth.requireFresh(state, maxAge))
    },
    requireAAL(level) {
      const checked = checkAALLevel(level)
      return guard((state) => auth.requireAAL(state, checked))
    },
    auth,
  }
}

/**
 * Signs `userId` in with a new session (the old one is deleted: no session fixation), sets its
 * cookie, and updates `c.get('session')` / `c.get('user')`. @throws TesseraError `store_unavailable`
 */
export async function signIn<R>(
  c: Context<TesseraEnv<R>>,
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
export async function signOut<R>(c: Context<TesseraEnv<R>>): Promise<void> {
  const state = stateOf(c)
  await state.signOut()
  c.set('session', null)
  c.set('user', null)
}

/** A CSRF token for the `X-CSRF-Token` header (or a form's `_csrf`), bound to the request's session. */
export function csrfToken<R>(c: Context<TesseraEnv<R>>): string {
  return stateOf(c).csrfToken()
}
