/**
 * `tessera-auth/server`: the tessera server (the HTTP API of docs/api.md, the admin panel, health,
 * readiness and metrics) run from your own code instead of `tessera serve`, e.g. beside other
 * work in one process, or under a process manager that wants a module rather than a binary.
 *
 * The surface is small on purpose: read the configuration ({@link loadConfig}, the same
 * variables as `tessera serve`, docs/configuration.md), make the JSON logger
 * ({@link createLogger}), start ({@link startServer}), and stop ({@link RunningServer.close},
 * for instance on {@link waitForStopSignal}). To serve the same API inside an app of your own
 * (Express, Fastify, Hono, Next.js) under a prefix, use {@link createTesseraAPI}; to write the
 * routes yourself, the library's entry points (`tessera-auth`, `tessera-auth/auth`,
 * `tessera-auth/express`, ...).
 *
 * The server opens the drivers its configuration names, so `better-sqlite3`, `pg` and `redis`
 * must be installed (they are optional peer dependencies of the library).
 *
 * @example
 * ```ts
 * import { createLogger, loadConfig, startServer, waitForStopSignal } from 'tessera-auth/server'
 *
 * // PORT, DATABASE_URL, REDIS_URL, TESSERA_SECRET, ... from the environment, .env and .env.local
 * const config = loadConfig(process.env, { cwd: process.cwd() })
 * const logger = createLogger(config.logLevel)
 * const stop = waitForStopSignal(logger) // before listening: a signal during start-up is handled
 * const server = await startServer(config, {
 *   logger,
 *   // optional: routes of your own, registered after the API
 *   routes: [(app) => app.get('/hello', (c) => c.text('hello'))],
 * })
 * logger.info({ port: server.port }, 'tessera is up')
 * await stop
 * await server.close() // in-flight requests finish, then the stores close
 * ```
 *
 * @packageDocumentation
 */
export {
  loadConfig,
  type JWTAlgorithm,
  type LoadConfigOptions,
  type LogLevel,
  type MailerConfig,
  type RuntimeMode,
  type SecretSource,
  type ServerConfig,
} from './config.js'
export type { DatabaseLocation } from '../auth/db/database.js'
export { createLogger } from './logger.js'
export {
  startServer,
  waitForStopSignal,
  type RunningServer,
  type ServerTimeouts,
  type StartOptions,
} from './main.js'
export type { AppEnv, TesseraApp } from './app.js'
// The same API mounted inside an app (Express, Fastify, Hono, Next.js) under a prefix.
export {
  createTesseraAPI,
  type FastifyInstanceLike,
  type HeadersLike,
  type TesseraAPI,
  type TesseraAPIOptions,
  type TesseraAPIServices,
  type TesseraSessionInfo,
} from './mount.js'
// What the CLI (and an operator's own tooling) opens exactly as the server does: the stores and
// database of a configuration, and its signing keys.
export { openBackends, type Backends } from './backends.js'
export { loadKeys } from './services.js'
