import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

/** A number the `/metrics` endpoint reads when it is scraped, e.g. the active sessions. */
export type GaugeCallback = () => number | Promise<number>

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** Also export Node process metrics (CPU, memory, event-loop lag). @default true */
  processMetrics?: boolean
  /** Reads the number of live sessions at scrape time. @default none (gauge absent) */
  activeSessions?: GaugeCallback
}

/** The server's Prometheus metrics, in a registry of their own (never prom-client's global). */
export interface ServerMetrics {
  readonly registry: Registry
  /** Records one finished HTTP request. */
  observeRequest(labels: { method: string; route: string; status: number }, seconds: number): void
  /** Records one login attempt (password login, token grant, admin sign-in). */
  recordLogin(result: 'success' | 'failure'): void
  /** Records a request refused by a rate limit. */
  recordRateLimited(scope: string): void
  /** Records one mail sent, or given up after its retries (`tessera_mails_total`). */
  recordMail(kind: string, outcome: 'sent' | 'failed'): void
  /** Sets or replaces the callback behind `tessera_active_sessions`. */
  setActiveSessions(callback: GaugeCallback): void
  /** The Prometheus text exposition. */
  render(): Promise<string>
  /** The `Content-Type` of {@link render}'s output. */
  readonly contentType: string
}

/**
 * Creates the metrics of one server: request counts and latencies by route and status, logins
 * and failures, rate-limited requests, and active sessions read through a callback.
 */
export function createMetrics(options: MetricsOptions = {}): ServerMetrics {
  const registry = new Registry()
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry })
  const requests = new Counter({
    name: 'tessera_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  })
  const durations = new Histogram({
    name: 'tessera_http_request_duration_seconds',
    help: 'HTTP request latency by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  })
  const logins = new Counter({
    name: 'tessera_logins_total',
    help: 'Login attempts by result',
    labelNames: ['result'] as const,
    registers: [registry],
  })
  const rateLimited = new Counter({
    name: 'tessera_rate_limited_total',
    help: 'Requests refused by a rate limit, by scope',
    labelNames: ['scope'] as const,
    registers: [registry],
  })
  const mails = new Counter({
    name: 'tessera_mails_total',
    help: 'Mails by kind and outcome: sent, or failed after every retry (a lost mail)',
    labelNames: ['kind', 'outcome'] as const,
    registers: [registry],
  })
  let activeSessions = options.activeSessions
  new Gauge({
    name: 'tessera_active_sessions',
    help: 'Live sessions in the session store, read at scrape time (with Redis, a count at most 30 s old; -1 when it cannot be read)',
    registers: [registry],
    async collect() {
      // NaN: no count was given (an app built without one), so the gauge says "unknown".
      if (activeSessions === undefined) return void this.set(Number.NaN)
      try {
        this.set(await activeSessions())
      } catch {
        this.set(-1)
      }
    },
  })
  // Both results exist from the start so rate() works before the first failure.
  logins.inc({ result: 'success' }, 0)
  logins.inc({ result: 'failure' }, 0)

  return {
    registry,
    contentType: registry.contentType,
    observeRequest(labels, seconds) {
      const values = { method: labels.method, route: labels.route, status: String(labels.status) }
      requests.inc(values)
      durations.observe(values, seconds)
    },
    recordLogin(result) {
      logins.inc({ result })
    },
    recordRateLimited(scope) {
      rateLimited.inc({ scope })
    },
    recordMail(kind, outcome) {
      mails.inc({ kind, outcome })
    },
    setActiveSessions(callback) {
      activeSessions = callback
    },
    render: () => registry.metrics(),
  }
}
