import { Hono, type Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Logger } from 'pino'
import type { UserWithPermissions } from '../auth/accounts.js'
import type { TesseraVariables } from '../adapters/hono.js'
import { httpErrorOf, httpErrorOfError, isTesseraError } from '../core/errors.js'
import type { ErrorStatus } from './http-error.js'
import type { ServerMetrics } from './metrics.js'

/**
 * Hono environment of the tessera app: what middleware leaves on the context. The API routes
 * run behind `tessera-auth/hono`, whose variables (`tessera`, `session`, `user`) carry the
 * request's authentication; the user's record is the account with its permissions.
 */
export interface AppEnv {
  Variables: TesseraVariables<UserWithPermissions> & {
    /** The route label for logs and metrics when no route matched. */
    routeLabel: string
  }
}

/** The Hono app type the route modules register on. */
export type TesseraApp = Hono<AppEnv>

/** One dependency `/readyz` checks, such as a database or Redis. */
export interface ReadinessCheck {
  /** Short name shown in `/readyz`, e.g. `sqlite`, `postgres`, `redis`. */
  name: string
  /** Resolves when the dependency answers; rejects (or times out) when it does not. */
  ping(): Promise<void>
}

/** The part of the configuration the app itself reads. */
export interface AppConfig {
  /** True when the public URL is https: adds `Strict-Transport-Security`. */
  https: boolean
}

/** What {@link createApp} is built from; every service is built by the caller. */
export interface AppDeps {
  config: AppConfig
  logger: Logger
  metrics: ServerMetrics
  /** Checked by `/readyz`. @default [] */
  readiness?: readonly ReadinessCheck[]
  /** How long `/readyz` waits for one check, in milliseconds. @default 2000 */
  readinessTimeoutMs?: number
  /**
   * True when the HTTP layer adds {@link securityHeaders} to every response (`listen({ headers
   * })`, as `startServer` does), so the app does not. Faster: reading or writing a response's
   * headers inside Hono turns @hono/node-server's light response into a full `Headers` object,
   * about a tenth of the server's CPU on `GET /auth/session`. @default false (the app adds them)
   */
  securityHeadersBySocket?: boolean
  /** Register the API routes; called in order after the operational routes. @default [] */
  routes?: ReadonlyArray<(app: TesseraApp) => void>
  /**
   * Path prefix of every route, e.g. `/api/auth` (the mountable API, `createTesseraAPI`): the
   * route modules register their usual paths and Hono prefixes them. @default '' (none)
   */
  basePath?: string
  /** Serve `/healthz`, `/readyz` and `/metrics`. @default true */
  operationalRoutes?: boolean
}

// SECURITY: the API serves JSON only, so its CSP allows nothing at all; no inline script
// (API.md), no framing (clickjacking: frame-ancestors 'none' plus X-Frame-Options DENY).
const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

/**
 * The headers every response of the server carries unless its route sets its own (the admin
 * panel and the reset page set a CSP with a nonce, a route may set its own `Cache-Control`).
 * The same set as Hono's `secureHeaders` defaults, with the API's CSP, `Referrer-Policy:
 * no-referrer` and `Cache-Control: no-store`.
 */
export function securityHeaders(config: AppConfig): Readonly<Record<string, string>> {
  return {
    'Content-Security-Policy': API_CSP,
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Origin-Agent-Cluster': '?1',
    'Referrer-Policy': 'no-referrer',
    'X-Content-Type-Options': 'nosniff',
    'X-DNS-Prefetch-Control': 'off',
    'X-Download-Options': 'noopen',
    'X-Frame-Options': 'DENY',
    'X-Permitted-Cross-Domain-Policies': 'none',
    'X-XSS-Protection': '0',
    // SECURITY: responses about users and sessions must not be stored by any cache (API.md).
    'Cache-Control': 'no-store',
    ...(config.https ? { 'Strict-Transport-Security': 'max-age=31536000; includeSubDomains' } : {}),
  }
}

/**
 * Builds the tessera HTTP app from already-built services. No socket is opened: tests call
 * `app.request()`, and `main.ts` serves `app.fetch` with `@hono/node-server`.
 *
 * Every response carries the security headers and `Cache-Control: no-store` (unless a route
 * sets its own), every error has the shape `{"error": {"code", "message"}}`, and each request is
 * logged as one line (method, route, status, duration) and counted in the metrics.
 *
 * @example
 * ```ts
 * const app = createApp({ config, logger: createLogger('info'), metrics: createMetrics() })
 * const res = await app.request('/healthz')
 * ```
 */
export function createApp(deps: AppDeps): TesseraApp {
  const { logger, metrics } = deps
  const base = deps.basePath ?? ''
  // Hono prefixes every registration on a basePath app; its type carries the prefix, which the
  // route modules (typed for TesseraApp) need not know.
  const app = (base === '' ? new Hono<AppEnv>() : new Hono<AppEnv>().basePath(base)) as TesseraApp

  app.use(async (c, next) => {
    const started = performance.now()
    await next()
    const seconds = (performance.now() - started) / 1000
    const route = c.get('routeLabel') ?? c.req.routePath
    const status = c.res.status
    metrics.observeRequest({ method: c.req.method, route, status }, seconds)
    // SECURITY: the route pattern, never the URL: paths and queries can carry tokens
    // (/reset?token=...), and headers (cookies, Authorization) are never logged.
    logger.info(
      { method: c.req.method, route, status, ms: Math.round(seconds * 1e4) / 10 },
      'request',
    )
  })

  if (deps.securityHeadersBySocket !== true) {
    const defaults = Object.entries(securityHeaders(deps.config))
    app.use(async (c, next) => {
      await next()
      const headers = c.res.headers
      for (const [name, value] of defaults) if (!headers.has(name)) headers.set(name, value)
    })
  }

  if (deps.operationalRoutes !== false) operationalRoutes(app, deps)

  for (const register of deps.routes ?? []) register(app)

  app.notFound((c) => {
    c.set('routeLabel', 'unmatched')
    const answer = httpErrorOf('not_found', 'no such route')
    return c.json(answer.body, answer.status)
  })

  app.onError((error, c) => errorResponse(error, c, logger))

  return app
}

/** `/healthz`, `/readyz` and `/metrics`. */
function operationalRoutes(app: TesseraApp, deps: AppDeps): void {
  const { logger, metrics } = deps
  app.get('/healthz', (c) => c.json({ status: 'ok' }))

  const checks = deps.readiness ?? []
  const timeoutMs = deps.readinessTimeoutMs ?? 2000
  app.get('/readyz', async (c) => {
    const results = await Promise.all(
      checks.map(async (check) => [check.name, await pingWithTimeout(check, timeoutMs)] as const),
    )
    const down = results.filter(([, ok]) => !ok).map(([name]) => name)
    const status = Object.fromEntries(
      results.map(([name, ok]) => [name, ok ? 'ok' : 'unavailable']),
    )
    if (down.length === 0) return c.json({ status: 'ok', checks: status })
    for (const name of down) logger.warn({ check: name }, 'readiness check failed')
    const answer = httpErrorOf('unavailable', `not ready: ${down.join(', ')} unreachable`)
    return c.json({ ...answer.body, checks: status }, answer.status, answer.headers)
  })

  app.get('/metrics', async (c) => {
    const text = await metrics.render()
    return c.body(text, 200, { 'Content-Type': metrics.contentType })
  })
}

async function pingWithTimeout(check: ReadinessCheck, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs)
  })
  try {
    return await Promise.race([check.ping().then(() => true), timeout])
  } catch {
    return false
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Turns anything a handler threw into the API's error shape, through the one table
 * (`HTTP_ERRORS`): a {@link TesseraError} (an `HTTPError` of the body reader included) keeps its
 * code's status, `Retry-After` and headers; anything else is a bug: logged with its stack,
 * answered with a generic 500 that reveals nothing.
 */
export function errorResponse(error: unknown, c: Context<AppEnv>, logger: Logger): Response {
  if (isTesseraError(error)) {
    const answer = httpErrorOfError(error)
    if (answer.status === 500) logger.error({ err: error }, 'unhandled error')
    else if (answer.status >= 500) logger.warn({ code: error.code, err: error }, 'request failed')
    return c.json(answer.body, answer.status, answer.headers)
  }
  if (error instanceof HTTPException && error.status < 500) {
    const status = error.status as ErrorStatus
    if (status === 413) {
      const answer = httpErrorOf('payload_too_large', 'payload too large')
      return c.json(answer.body, answer.status)
    }
    const answer = httpErrorOf('invalid_request', error.message || 'invalid request')
    return c.json(answer.body, status)
  }
  logger.error({ err: error }, 'unhandled error')
  const answer = httpErrorOf('internal_error', 'internal server error')
  return c.json(answer.body, answer.status)
}
