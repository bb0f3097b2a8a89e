import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { getRequestListener } from '@hono/node-server'
import type { Logger } from 'pino'
import type { PublicUser, UserWithPermissions } from '../auth/accounts.js'
import type { AuthService } from '../auth/service.js'
import { httpErrorOf, httpErrorOfError, isTesseraError, TesseraError } from '../core/errors.js'
import type { Keyring } from '../core/keyring.js'
import type { RequestAuthOptions } from '../core/request-auth.js'
import type { PublicSession, SessionManager } from '../core/session-manager.js'
import { createApp, type TesseraApp } from './app.js'
import { loadConfig, type ServerConfig } from './config.js'
import { createLogger } from './logger.js'
import { createMetrics } from './metrics.js'
import { buildServices } from './services.js'

/** Options of {@link createTesseraAPI}. */
export interface TesseraAPIOptions {
  /**
   * The path the API is mounted under, e.g. `/api/auth`: every path of docs/api.md follows it
   * (`/api/auth/auth/login`, `/api/auth/admin`, `/api/auth/reset`). @default '' (the root)
   */
  basePath?: string
  /** `DATABASE_URL`: where accounts (and, without Redis, sessions) live, e.g. `sqlite:./data/accounts.db`. */
  database?: string
  /** `REDIS_URL`: sessions, refresh tokens and rate limits in Redis, e.g. `redis://127.0.0.1:6379`. */
  redis?: string
  /** `TESSERA_SECRET` (from `npx tessera-auth secret`). */
  secret?: string
  /** `TESSERA_PUBLIC_URL`: the app's public URL (its origin is trusted for unsafe requests). */
  publicUrl?: string
  /**
   * Every other setting, by the server's variable names (docs/configuration.md); the four
   * options above win over it. `.env` and `.env.local` in `cwd` are read too, as by the server.
   * @default process.env
   */
  env?: Readonly<Record<string, string | undefined>>
  /** Directory of `.env` files, relative SQLite paths and the development secret. @default process.cwd() */
  cwd?: string
  /** Serve the admin panel at `<basePath>/admin` (and log its setup link). @default false */
  admin?: boolean
  /** Serve `<basePath>/healthz`, `/readyz` and `/metrics`. @default false */
  operationalRoutes?: boolean
  /** Where the API logs (one line per request, the setup link). @default the server's logger at `LOG_LEVEL` */
  logger?: Logger
  /** Clock in epoch milliseconds for every service and store. @default Date.now */
  now?: () => number
}

/** The services a mounted API runs on, shared with the app's own routes. */
export interface TesseraAPIServices {
  readonly config: ServerConfig
  /** The browser session manager: give it to `tessera-auth/express` & co. or `tessera-auth/next`. */
  readonly sessions: SessionManager
  readonly keyring: Keyring
  /** Accounts, sign-in, password reset, audit: what the routes call. */
  readonly auth: AuthService
  /**
   * Options for an adapter over the same sessions and users, e.g.
   * `tessera(services.authOptions)` from `tessera-auth/express`: `currentUser(req).record` is
   * the account (with its groups and permissions), re-read per request as by the API.
   */
  readonly authOptions: RequestAuthOptions<UserWithPermissions>
}

/** The signed-in user and session of a request, as `GET <basePath>/auth/session` answers. */
export interface TesseraSessionInfo {
  user: PublicUser
  session: PublicSession
}

/** The minimal Fastify instance {@link TesseraAPI.fastify} registers on (no Fastify types needed). */
export interface FastifyInstanceLike {
  removeAllContentTypeParsers(): void
  addContentTypeParser(
    contentType: string,
    parser: (
      request: unknown,
      payload: unknown,
      done: (error: null, body?: undefined) => void,
    ) => void,
  ): unknown
  all(
    path: string,
    handler: (
      request: { raw: IncomingMessage },
      reply: { raw: ServerResponse; hijack(): void },
    ) => Promise<void>,
  ): unknown
}

/**
 * The whole HTTP API of docs/api.md, mountable in an app under a prefix: the same routes as the
 * server (one registration, `buildServices`), built on first use (or {@link ready}).
 */
export interface TesseraAPI {
  /** The mount path, e.g. `/api/auth` (`''` for the root). */
  readonly basePath: string
  /**
   * A fetch handler: Hono (`app.all('/api/auth/*', (c) => api.fetch(c.req.raw, c.env))`),
   * Next.js route handlers (`export const GET = api.fetch`), Bun, Deno. The request's URL must
   * start with {@link basePath}; anything else is `404 not_found`.
   */
  readonly fetch: (request: Request, env?: unknown) => Promise<Response>
  /**
   * Node middleware: Express (`app.use(api.node)`) or `node:http`. Requests under
   * {@link basePath} are answered, others go to `next` (404 without one). A body that a parser
   * such as `express.json()` already read is passed on as it parsed it.
   */
  readonly node: (
    request: IncomingMessage,
    response: ServerResponse,
    next?: (error?: unknown) => void,
  ) => void
  /** A Fastify plugin: `await app.register(api.fastify)` serves `<basePath>/*`, bodies unparsed. */
  readonly fastify: (instance: FastifyInstanceLike, options?: unknown) => Promise<void>
  /**
   * The signed-in user and session of a request (cookie or bearer token), or `null`: a
   * `Request`, a Node request, or `{ headers: await headers() }` in a Next.js server component.
   */
  readonly getSession: (request: { headers: HeadersLike }) => Promise<TesseraSessionInfo | null>
  /**
   * Opens the stores (migrating the database) and builds the services, once; every other call
   * waits for it. Call it at start-up to fail fast on a bad configuration.
   * @throws TesseraError `config_invalid`, `store_unavailable`
   */
  ready(): Promise<TesseraAPIServices>
  /** Closes what {@link ready} opened (after background work such as mail). */
  close(): Promise<void>
}

interface Built {
  services: TesseraAPIServices
  app: TesseraApp
  close(): Promise<void>
}

function normalizeBasePath(value: string | undefined): string {
  const base = (value ?? '').replace(/\/+$/, '')
  if (base !== '' && !/^(\/[A-Za-z0-9._~-]+)+$/.test(base)) {
    throw new TesseraError(
      'config_invalid',
      `createTesseraAPI: basePath must be a path such as /api/auth (got "${value ?? ''}")`,
    )
  }
  return base
}

/** True when `path` is `base` itself or below it. */
function isUnder(path: string, base: string): boolean {
  return base === '' || path === base || path.startsWith(`${base}/`)
}

/** What {@link TesseraAPI.getSession} reads headers from: Fetch's, Next's `headers()`, or Node's. */
export type HeadersLike = Pick<Headers, 'get'> | IncomingHttpHeaders

/** Headers read by name: Fetch-like ones (Next's `ReadonlyHeaders` too) as they are, Node's copied. */
function toHeaders(headers: HeadersLike): Pick<Headers, 'get'> {
  // Duck-typed: Next's `headers()` answers `get` without being an instance of this Headers.
  if (typeof headers.get === 'function') return headers as Pick<Headers, 'get'>
  const result = new Headers()
  for (const [name, value] of Object.entries(headers as IncomingHttpHeaders)) {
    if (value === undefined) continue
    for (const item of Array.isArray(value) ? value : [value]) result.append(name, item)
  }
  return result
}

/**
 * The body a parser (express.json(), express.urlencoded(), express.raw(), express.text())
 * already read from the stream, as bytes again; `undefined` when the stream is unread.
 */
function consumedBody(request: IncomingMessage & { body?: unknown }): Buffer | undefined {
  if (!request.readableEnded || request.body === undefined) return undefined
  const body = request.body
  if (Buffer.isBuffer(body)) return body
  if (typeof body === 'string') return Buffer.from(body)
  const type = String(request.headers['content-type'] ?? '').toLowerCase()
  if (
    type.includes('application/x-www-form-urlencoded') &&
    body !== null &&
    typeof body === 'object'
  ) {
    return Buffer.from(new URLSearchParams(body as Record<string, string>).toString())
  }
  return Buffer.from(JSON.stringify(body))
}

/**
 * The HTTP API of the tessera server (docs/api.md: signup, login, logout, sessions, CSRF
 * tokens, password change and reset, access and refresh tokens, JWKS, and what later routes add)
 * to mount in an Express, Fastify, Hono or Next.js app under a prefix of its choosing. It is the
 * server's own app (`createApp` with the same route modules), configured like the server
 * (docs/configuration.md), with its sessions shared with the app's own routes
 * ({@link TesseraAPIServices.authOptions}, {@link TesseraAPI.getSession}).
 *
 * Nothing is opened until the first request or {@link TesseraAPI.ready}, so a module that
 * creates it can be imported without the secret (`next build`).
 *
 * @throws TesseraError `config_invalid` for a bad `basePath` (the rest of the configuration is
 * checked by `ready()`)
 * @example
 * ```ts
 * const api = createTesseraAPI({ basePath: '/api', database: 'sqlite:./data/accounts.db' })
 * app.use(api.node) // Express: POST /api/auth/signup, /api/auth/login, GET /api/auth/session, ...
 * ```
 */
export function createTesseraAPI(options: TesseraAPIOptions = {}): TesseraAPI {
  const basePath = normalizeBasePath(options.basePath)
  let building: Promise<Built> | undefined
  let closed = false

  async function build(): Promise<Built> {
    const env: Record<string, string | undefined> = { ...(options.env ?? process.env) }
    if (options.database !== undefined) env.DATABASE_URL = options.database
    if (options.redis !== undefined) env.REDIS_URL = options.redis
    if (options.secret !== undefined) env.TESSERA_SECRET = options.secret
    if (options.publicUrl !== undefined) env.TESSERA_PUBLIC_URL = options.publicUrl
    let logger = options.logger
    const notices: string[] = []
    const config = loadConfig(env, {
      cwd: options.cwd ?? process.cwd(),
      onNotice: (message) => (logger === undefined ? notices.push(message) : logger.warn(message)),
    })
    logger ??= createLogger(config.logLevel, undefined, { format: config.logFormat })
    for (const message of notices) logger.warn(message)
    const metrics = createMetrics({ processMetrics: false })
    const services = await buildServices(config, {
      logger,
      metrics,
      now: options.now,
      basePath,
      admin: options.admin === true,
    })
    const app = createApp({
      config,
      logger,
      metrics,
      readiness: services.readiness,
      routes: services.routes,
      basePath,
      operationalRoutes: options.operationalRoutes === true,
    })
    return {
      services: {
        config,
        sessions: services.sessions,
        keyring: services.keyring,
        auth: services.auth,
        authOptions: {
          sessions: services.sessions,
          keyring: services.keyring,
          trustedOrigins: config.trustedOrigins,
          // The API's own rule: the account is re-read per request, a disabled user is anonymous.
          loadUser: async ({ userId }) => {
            const user = await services.auth.accounts.getUserWithPermissions(userId)
            return user !== null && user.isActive
              ? { permissions: user.permissions, record: user }
              : null
          },
        },
      },
      app,
      close: () => services.close(),
    }
  }

  function built(): Promise<Built> {
    if (closed) {
      return Promise.reject(new TesseraError('config_invalid', 'createTesseraAPI: closed'))
    }
    building ??= build().catch((error: unknown) => {
      // Not kept: a store that was down at the first request is tried again at the next one.
      building = undefined
      throw error
    })
    return building
  }

  const fetch = async (request: Request, env?: unknown): Promise<Response> => {
    let app: TesseraApp
    try {
      app = (await built()).app
    } catch (error) {
      const logger = options.logger
      if (logger !== undefined) logger.error({ err: error }, 'tessera API: cannot start')
      else console.error('tessera API: cannot start:', error)
      // The API's error shape and table: store_unavailable is a 503 with Retry-After.
      return startFailure(error)
    }
    return app.fetch(request, env)
  }

  // Globals stay the app's own (the listener would otherwise replace Request and
  // Response process-wide with @hono/node-server's lighter classes).
  const listener = getRequestListener((request, env) => fetch(request, env), {
    overrideGlobalObjects: false,
  })

  const node = (
    request: IncomingMessage & { originalUrl?: string; body?: unknown; rawBody?: Buffer },
    response: ServerResponse,
    next?: (error?: unknown) => void,
  ): void => {
    // Express strips a mount path from `url` (app.use('/api', api.node)); `originalUrl` keeps it.
    const url = request.originalUrl ?? request.url ?? '/'
    const path = url.split('?')[0] ?? '/'
    if (!isUnder(path, basePath)) {
      if (next !== undefined) next()
      else {
        response.statusCode = 404
        response.setHeader('Content-Type', 'application/json')
        response.end('{"error":{"code":"not_found","message":"no such route"}}')
      }
      return
    }
    request.url = url
    const parsed = consumedBody(request)
    if (parsed !== undefined) {
      request.rawBody = parsed
      request.headers['content-length'] = String(parsed.byteLength)
      delete request.headers['transfer-encoding']
    }
    listener(request, response).catch((error: unknown) => next?.(error))
  }

  const fastify = async (instance: FastifyInstanceLike): Promise<void> => {
    // Encapsulated (no fastify-plugin): only this plugin's routes leave bodies unparsed, for the
    // API to read as it does in the server (size limits, content types, its own errors).
    instance.removeAllContentTypeParsers()
    instance.addContentTypeParser('*', (_request, _payload, done) => done(null))
    const handler = async (
      request: { raw: IncomingMessage },
      reply: { raw: ServerResponse; hijack(): void },
    ): Promise<void> => {
      reply.hijack()
      await listener(request.raw, reply.raw)
    }
    instance.all(basePath === '' ? '/*' : `${basePath}/*`, handler)
    if (basePath !== '') instance.all(basePath, handler)
    return Promise.resolve()
  }

  const getSession = async (request: {
    headers: HeadersLike
  }): Promise<TesseraSessionInfo | null> => {
    const { config } = (await built()).services
    const headers = toHeaders(request.headers)
    const asked = new Headers()
    for (const name of ['cookie', 'authorization', 'user-agent']) {
      const value = headers.get(name)
      if (value !== null) asked.set(name, value)
    }
    // One mechanism: the API's own GET /auth/session answers (bearer or cookie, live session,
    // active user), so the app's /me and the API can never disagree.
    const answer = await fetch(
      new Request(`${config.publicOrigin}${basePath}/auth/session`, { headers: asked }),
    )
    if (answer.status === 401) return null
    if (!answer.ok) {
      const body = (await answer.json().catch(() => ({}))) as {
        error?: { code?: string; message?: string }
      }
      throw new TesseraError(
        answer.status === 503 ? 'store_unavailable' : 'internal_error',
        body.error?.message ?? `GET ${basePath}/auth/session answered ${answer.status}`,
      )
    }
    return (await answer.json()) as TesseraSessionInfo
  }

  return {
    basePath,
    fetch,
    node,
    fastify,
    getSession,
    ready: async () => (await built()).services,
    close: async () => {
      closed = true
      const pending = building
      building = undefined
      if (pending === undefined) return
      const done = await pending.catch(() => undefined)
      await done?.close()
    },
  }
}

/**
 * The answer to a request that came while the API could not be built, through the one error
 * table: `store_unavailable` is a 503 with `Retry-After`; anything else a 500 that reveals
 * nothing (the cause is in the log).
 */
function startFailure(error: unknown): Response {
  const failed = isTesseraError(error) ? httpErrorOfError(error) : undefined
  const answer =
    failed === undefined || (failed.status >= 500 && failed.status !== 503)
      ? httpErrorOf('internal_error', 'internal server error')
      : failed
  return new Response(JSON.stringify(answer.body), {
    status: answer.status,
    headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...answer.headers },
  })
}
