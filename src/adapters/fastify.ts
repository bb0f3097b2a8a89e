import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  preHandlerAsyncHookHandler,
} from 'fastify'
import fp from 'fastify-plugin'
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

export type { AuthUser, RequestAuthState, SignInOptions }

/** Options of the tessera Fastify plugin. */
export type TesseraFastifyOptions = RequestAuthOptions

/** What the plugin decorates the Fastify instance with, as `fastify.tessera`. */
export interface TesseraFastify {
  /** A preHandler guard: `401 unauthenticated` without a signed-in user. */
  requireAuth: preHandlerAsyncHookHandler
  /**
   * A preHandler guard: `401` without a user, `403 forbidden` without the permission.
   * @throws TesseraError `config_invalid` at setup when `permission` is not `app.action`
   */
  requirePermission(permission: string): preHandlerAsyncHookHandler
  /**
   * A preHandler guard for sensitive changes: `401` without a user, `403
   * reauthentication_required` unless the user proved a credential within the last
   * `maxAgeSeconds`.
   * @throws TesseraError `config_invalid` at setup unless `maxAgeSeconds` is positive
   */
  requireFresh(maxAgeSeconds: number): preHandlerAsyncHookHandler
  /**
   * A preHandler guard: `401` without a user, `403 reauthentication_required` unless the sign-in
   * reached assurance level `level` (2: a second factor, or a passkey with user verification).
   * @throws TesseraError `config_invalid` at setup unless `level` is 1 or 2
   */
  requireAAL(level: 1 | 2): preHandlerAsyncHookHandler
  /** The framework-neutral core it calls. */
  auth: RequestAuth
}

declare module 'fastify' {
  interface FastifyInstance {
    tessera: TesseraFastify
  }
  interface FastifyRequest {
    /**
     * tessera's authentication of this request: `.session`, `.user` (`null` only before the
     * plugin's hook ran). Named `tessera`, not `session` or `user`, so it never clashes with
     * @fastify/session's `request.session` or @fastify/jwt's `request.user`.
     */
    tessera: RequestAuthState | null
  }
}

function send(reply: FastifyReply, refusal: AuthRefusal): FastifyReply {
  return reply.code(refusal.status).headers(refusal.headers).send(refusalBody(refusal))
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name]
  return Array.isArray(value) ? value[0] : value
}

/**
 * Gives a store outage the `statusCode` 503 that Fastify's error handling answers with, so a
 * route that signs in or out while the store is down gets 503, never 500.
 */
async function withStatus<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise
  } catch (error) {
    const refused = refusalOfError(error)
    if (refused !== null) Object.assign(error as object, { statusCode: refused.status })
    throw error
  }
}

function stateOf(request: FastifyRequest): RequestAuthState {
  if (request.tessera === null) {
    throw new TesseraError(
      'config_invalid',
      'tessera-auth/fastify: register the plugin in this scope before the route',
    )
  }
  return request.tessera
}

function plugin(fastify: FastifyInstance, options: TesseraFastifyOptions): Promise<void> {
  const auth = createRequestAuth(options)
  fastify.decorateRequest('tessera', null)

  // onRequest: before the body is read or parsed, so a refused request costs no parsing.
  fastify.addHook('onRequest', async (request, reply) => {
    const result = await auth.authenticate(
      {
        method: request.method,
        cookie: header(request, 'cookie'),
        authorization: header(request, 'authorization'),
        secFetchSite: header(request, 'sec-fetch-site'),
        origin: header(request, 'origin'),
        csrfToken: header(request, 'x-csrf-token'),
        ip: request.ip,
        userAgent: header(request, 'user-agent'),
      },
      (value) => {
        void reply.header('set-cookie', value)
      },
    )
    if (!result.ok) return send(reply, result.refusal)
    request.tessera = result.state
    return undefined
  })

  function guard(
    check: (state: RequestAuthState | null) => AuthRefusal | null,
  ): preHandlerAsyncHookHandler {
    return async function tesseraGuard(request, reply) {
      const refused = check(request.tessera)
      if (refused !== null) await send(reply, refused)
    }
  }

  fastify.decorate('tessera', {
    requireAuth: guard((state) => auth.requireAuth(state)),
    requirePermission(permission: string): preHandlerAsyncHookHandler {
      const name = checkPermissionName(permission)
      return guard((state) => auth.requirePermission(state, name))
    },
    requireFresh(maxAgeSeconds: number): preHandlerAsyncHookHandler {
      const maxAge = checkMaxAge(maxAgeSeconds)
      return guard((state) => auth.requireFresh(state, maxAge))
    },
    requireAAL(level: 1 | 2): preHandlerAsyncHookHandler {
      const checked = checkAALLevel(level)
      return guard((state) => auth.requireAAL(state, checked))
    },
    auth,
  } satisfies TesseraFastify)
  return Promise.resolve()
}

/**
 * tessera for Fastify 5: a plugin (fastify-plugin, so it applies to the whole instance) that
 * authenticates each request in `onRequest`, decorates `request.tessera` (with `.session` and
 * `.user`; also {@link currentUser} / {@link currentSession}) and `fastify.tessera.requireAuth` /
 * `requirePermission()` guards.
 *
 * @throws TesseraError `config_invalid` for bad options, when the plugin is registered
 * @example
 * ```ts
 * await app.register(tesseraPlugin, { sessions, keyring, trustedOrigins: ['https://app.example.com'] })
 * app.get('/me', { preHandler: app.tessera.requireAuth }, (request) => ({ user: currentUser(request) }))
 * app.post('/login', async (request) => { await signIn(request, user.id); return { ok: true } })
 * ```
 */
export const tesseraPlugin = fp(plugin, { fastify: '5.x', name: 'tessera' })
export default tesseraPlugin

/**
 * Signs `userId` in with a new session (the old one is deleted: no session fixation) and sets
 * its cookie on the reply. @throws TesseraError `store_unavailable`
 */
export async function signIn(
  request: FastifyRequest,
  userId: string,
  options?: SignInOptions,
): Promise<Session> {
  return withStatus(stateOf(request).signIn(userId, options))
}

/** Deletes the request's session and clears its cookie. @throws TesseraError `store_unavailable` */
export async function signOut(request: FastifyRequest): Promise<void> {
  await withStatus(stateOf(request).signOut())
}

/** A CSRF token for the `X-CSRF-Token` header, bound to the request's session. */
export function csrfToken(request: FastifyRequest): string {
  return stateOf(request).csrfToken()
}

/** The signed-in user of the request, or `null`. */
export function currentUser(request: FastifyRequest): AuthUser | null {
  return request.tessera?.user ?? null
}

/** The session of the request, or `null`. */
export function currentSession(request: FastifyRequest): Session | null {
  return request.tessera?.session ?? null
}
