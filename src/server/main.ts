import { createServer, type RequestListener, type Server, type ServerOptions } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import type { Logger } from 'pino'
import { createApp, securityHeaders, type TesseraApp } from './app.js'
import { answerClientError } from './client-error.js'
import type { ServerConfig } from './config.js'
import { createMetrics } from './metrics.js'
import { buildServices } from './services.js'

/** Socket timeouts of the HTTP server, in milliseconds. */
export interface ServerTimeouts {
  /** Time to receive a request's headers. @default 10000 */
  headersTimeout?: number
  /** Time to receive a whole request (headers and body). @default 30000 */
  requestTimeout?: number
  /** Idle time of a kept-alive connection between requests. @default 5000 */
  keepAliveTimeout?: number
}

/** Options of {@link listen}. */
export interface ListenOptions extends ServerTimeouts {
  port: number
  /** @default every interface */
  host?: string | undefined
  logger: Logger
  /**
   * Headers set on every response before the app answers; the app's own headers win over them
   * (Node's `writeHead` takes precedence over `setHeader`). @default none
   */
  headers?: Readonly<Record<string, string>>
  /** Called after the HTTP server has drained, to close stores and clients. */
  onClose?: () => Promise<void>
  /** How long in-flight requests may take to finish after a stop, in ms. @default 10000 */
  shutdownGraceMs?: number
  /**
   * The first phase of a stop, in ms: `onDrain` is called (readiness turns 503) and the server
   * keeps accepting and serving for this long, so a load balancer takes it out of rotation
   * before the listener closes. @default 0 (close at once)
   */
  shutdownDrainMs?: number
  /** Called when a stop begins, before the drain period (the app's readiness turns 503). */
  onDrain?: () => void
}

/** A listening server. */
export interface RunningServer {
  readonly server: Server
  /** The port actually bound (useful with port 0). */
  readonly port: number
  /**
   * Graceful stop in two phases: first the drain (`onDrain`, then `shutdownDrainMs` of normal
   * service, every response saying `Connection: close`), then stop accepting connections, let
   * in-flight requests finish (up to the grace time, then drop what is left), and run
   * `onClose`. Safe to call more than once.
   */
  close(): Promise<void>
}

/**
 * Serves `app` with `@hono/node-server`, with socket timeouts set so slow clients cannot hold
 * connections open.
 */
export async function listen(app: TesseraApp, options: ListenOptions): Promise<RunningServer> {
  // SECURITY: slowloris defence (ASVS 13.1): a client that trickles its headers or body is cut
  // off instead of holding a socket forever; the timeouts are checked every second.
  const headersTimeout = options.headersTimeout ?? 10_000
  const requestTimeout = options.requestTimeout ?? 30_000
  const keepAliveTimeout = options.keepAliveTimeout ?? 5_000
  const defaults = Object.entries(options.headers ?? {})
  // SECURITY: the default headers go on the Node response first, so every response has them,
  // including the ones @hono/node-server writes itself (a 500 outside the app). The cast only
  // narrows node:http's overloads to the one form @hono/node-server calls.
  const withHeaders = ((serverOptions: ServerOptions, listener?: RequestListener) =>
    createServer(serverOptions, (request, response) => {
      for (const [name, value] of defaults) response.setHeader(name, value)
      listener?.(request, response)
    })) as typeof createServer
  const server = await new Promise<Server>((resolve, reject) => {
    const created = serve(
      {
        fetch: app.fetch,
        createServer: withHeaders,
        port: options.port,
        ...(options.host === undefined ? {} : { hostname: options.host }),
        serverOptions: {
          headersTimeout,
          requestTimeout,
          keepAliveTimeout,
          connectionsCheckingInterval: Math.min(1000, headersTimeout),
        },
      },
      () => resolve(created),
    ) as Server
    created.once('error', reject)
  })
  // SECURITY: what the HTTP parser refuses (a malformed request line or header, a header block
  // over the limit, a request too slow) is answered by the server with the security headers of
  // every other response, not by Node's bare default (issue 12).
  server.on('clientError', (error: Error & { code?: string }, socket) =>
    answerClientError(error, socket, { headers: options.headers ?? {}, logger: options.logger }),
  )
  server.headersTimeout = headersTimeout
  server.requestTimeout = requestTimeout
  server.keepAliveTimeout = keepAliveTimeout
  const port = (server.address() as AddressInfo).port
  options.logger.info({ port, host: options.host ?? null }, 'listening')

  let closing: Promise<void> | undefined
  const close = (): Promise<void> => {
    closing ??= (async (): Promise<void> => {
      // From now on every response closes its connection, so clients reconnect (to another
      // instance, once the load balancer has seen readiness turn 503).
      server.on('request', (_request: unknown, response: { shouldKeepAlive: boolean }) => {
        response.shouldKeepAlive = false
      })
      const drainMs = options.shutdownDrainMs ?? 0
      options.onDrain?.()
      if (drainMs > 0) {
        // SECURITY/availability: phase one of a graceful stop (issue 12): readiness is 503 but
        // the listener stays open, so connections accepted (or queued in the backlog) in the
        // last moments before the signal are served rather than reset.
        options.logger.info({ drainMs }, 'draining: readiness is 503, still serving')
        await new Promise<void>((resolve) => setTimeout(resolve, drainMs))
      }
      options.logger.info('shutting down: no new connections, finishing requests in flight')
      const drained = new Promise<void>((resolve) => server.close(() => resolve()))
      // A kept-alive connection becomes idle when its last response ends; close it then
      // rather than waiting for the keep-alive timeout.
      server.closeIdleConnections()
      const idleSweep = setInterval(() => server.closeIdleConnections(), 50)
      const grace = options.shutdownGraceMs ?? 10_000
      let timer: NodeJS.Timeout | undefined
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), grace)
      })
      if ((await Promise.race([drained, timedOut])) === 'timeout') {
        options.logger.warn({ graceMs: grace }, 'requests still running after the grace time')
        server.closeAllConnections()
        await drained
      }
      clearTimeout(timer)
      clearInterval(idleSweep)
      if (options.onClose !== undefined) await options.onClose()
      options.logger.info('stopped')
    })()
    return closing
  }
  return { server, port, close }
}

/**
 * Resolves on the first SIGTERM or SIGINT. Install it before the server starts listening: with
 * no handler, a signal that arrives during start-up kills the process at once. A second signal
 * exits at once with code 1 (an operator who insists).
 */
export function waitForStopSignal(logger: Logger): Promise<NodeJS.Signals> {
  return new Promise<NodeJS.Signals>((resolve) => {
    let received = false
    const onSignal = (signal: NodeJS.Signals): void => {
      if (received) {
        logger.warn({ signal }, 'second signal while stopping: exiting now')
        process.exit(1)
      }
      received = true
      logger.info({ signal }, 'signal received')
      resolve(signal)
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  })
}

/** Options of {@link startServer}. */
export interface StartOptions extends ServerTimeouts {
  logger: Logger
  /** Extra routes registered after the API (tests, embedding apps). @default [] */
  routes?: ReadonlyArray<(app: TesseraApp) => void>
  shutdownGraceMs?: number
  /**
   * The drain period of a stop in ms (see `ListenOptions.shutdownDrainMs`).
   * @default config.shutdownDrain (TESSERA_SHUTDOWN_DRAIN, 5 s)
   */
  shutdownDrainMs?: number
  /**
   * Clock in epoch milliseconds for every service and store (see `ServicesContext.now`); tests
   * move it forward to check expiry over HTTP. Not configurable from the environment.
   * @default Date.now
   */
  now?: () => number
}

/**
 * Builds every service from `config` (stores, accounts, tokens), the app, and serves it.
 * What it opened is closed by the returned server's `close()` after the last request.
 */
export async function startServer(
  config: ServerConfig,
  options: StartOptions,
): Promise<RunningServer> {
  const { logger } = options
  const metrics = createMetrics()
  const services = await buildServices(config, { logger, metrics, now: options.now })
  let draining = false
  const app = createApp({
    draining: () => draining,
    config,
    logger,
    metrics,
    readiness: services.readiness,
    routes: [...services.routes, ...(options.routes ?? [])],
    securityHeadersBySocket: true,
  })
  try {
    return await listen(app, {
      port: config.port,
      host: config.host,
      headers: securityHeaders(config),
      logger,
      onClose: () => services.close(),
      onDrain: () => {
        draining = true
      },
      shutdownDrainMs: options.shutdownDrainMs ?? config.shutdownDrain * 1000,
      ...(options.headersTimeout === undefined ? {} : { headersTimeout: options.headersTimeout }),
      ...(options.requestTimeout === undefined ? {} : { requestTimeout: options.requestTimeout }),
      ...(options.keepAliveTimeout === undefined
        ? {}
        : { keepAliveTimeout: options.keepAliveTimeout }),
      ...(options.shutdownGraceMs === undefined
        ? {}
        : { shutdownGraceMs: options.shutdownGraceMs }),
    })
  } catch (error) {
    await services.close()
    throw error
  }
}
