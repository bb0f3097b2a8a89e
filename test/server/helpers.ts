import { Writable } from 'node:stream'
import type { Logger } from 'pino'
import { createApp, type AppDeps, type TesseraApp } from '../../src/server/app.js'
import { createLogger } from '../../src/server/logger.js'
import { createMetrics, type ServerMetrics } from '../../src/server/metrics.js'

/** A pino logger whose lines are kept in memory, parsed. */
export interface CapturedLogger {
  logger: Logger
  /** Every line written so far, as text. */
  text(): string
  /** Every line written so far, parsed. */
  lines(): Array<Record<string, unknown>>
}

/** A real pino logger writing into memory, for tests that read the log. */
export function captureLogger(level: 'info' | 'debug' = 'info'): CapturedLogger {
  const chunks: string[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'))
      callback()
    },
  })
  const logger = createLogger(level, stream)
  return {
    logger,
    text: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  }
}

/** An app with its captured log and metrics, built without a socket. */
export interface TestApp {
  app: TesseraApp
  log: CapturedLogger
  metrics: ServerMetrics
}

/** Builds the app as the server does, with a captured log and no process metrics. */
export function buildTestApp(overrides: Partial<AppDeps> = {}): TestApp {
  const log = captureLogger()
  const metrics = createMetrics({ processMetrics: false })
  const app = createApp({ config: { https: false }, logger: log.logger, metrics, ...overrides })
  return { app, log, metrics }
}
