import type { Logger } from 'pino'
import type { ReadinessCheck, TesseraApp } from './app.js'
import type { ServerConfig } from './config.js'
import type { ServerMetrics } from './metrics.js'

/** What the server runs on: the API routes, what `/readyz` checks, and how to close it all. */
export interface ServerServices {
  routes: ReadonlyArray<(app: TesseraApp) => void>
  readiness: readonly ReadinessCheck[]
  /** Closes every store and client opened here. */
  close(): Promise<void>
}

/**
 * Opens the stores `config` names and builds the services and routes on them.
 */
export function buildServices(
  config: ServerConfig,
  context: { logger: Logger; metrics: ServerMetrics },
): Promise<ServerServices> {
  void config
  void context
  return Promise.resolve({ routes: [], readiness: [], close: () => Promise.resolve() })
}
