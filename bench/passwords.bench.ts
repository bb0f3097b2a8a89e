/**
 * Password hashing speed and what a verification storm does to other work in the process.
 *
 *   npx tsx bench/passwords.bench.ts
 *
 * 1. Sequential cost of one hash / one verify with the defaults (argon2id m=19456 t=2 p=1),
 *    side by side with bcryptjs at cost 10 (what many Express apps use) — tinybench.
 * 2. A storm: 200 verifications kept in flight for a few seconds, while "light work" runs beside
 *    it at fixed intended times: a session-cookie check (HMAC verify + map lookup, main thread)
 *    and a libuv-pool task (fs.stat). We report verifies/s and the p99 lateness of the light work
 *    (completion time minus intended start time), for tessera's bounded hasher, for raw
 *    @node-rs/argon2 with no bound, and for bcryptjs (pure JS, on the main thread).
 *
 * The full login path (database lookup, session creation) lands with the accounts and server
 * issues; what is measured here is the password part of it, which dominates its cost.
 */
import { stat } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { verify as argon2Verify } from '@node-rs/argon2'
import bcrypt from 'bcryptjs'
import { Bench } from 'tinybench'
import { createPasswordHasher } from '../src/auth/passwords.js'
import { createLoginLimiter, createMemoryRateLimitStore } from '../src/auth/rate-limit.js'
import { createKeyring } from '../src/core/keyring.js'
import { signValue, verifyValue } from '../src/core/signing.js'

const PASSWORD = 'correct horse battery staple'
const STORM_IN_FLIGHT = 200
const STORM_SECONDS = Number(process.env.BENCH_STORM_SECONDS ?? 3)
const LIGHT_EVERY_MS = 5

function p(values: number[], q: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
}

const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : '-')

/** Runs light work at fixed intended times and records how late each one completes. */
function startLightWork(): () => Promise<{ session: number[]; pool: number[]; loopP99: number }> {
  const keyring = createKeyring('bench-secret-bench-secret-bench-secret-0123456789')
  const cookie = signValue(keyring, 'session', 'token-abc')
  const sessions = new Map([['token-abc', { userId: 'u1' }]])
  const session: number[] = []
  const pool: number[] = []
  const here = fileURLToPath(import.meta.url)
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  histogram.enable()
  const start = performance.now()
  let k = 0
  let stopped = false
  const pending: Array<Promise<void>> = []

  const tick = (): void => {
    if (stopped) return
    const intended = start + k * LIGHT_EVERY_MS
    k++
    // Session check: main-thread work after one hop through the event loop.
    pending.push(
      new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        const value = verifyValue(keyring, 'session', cookie)
        if (value === null || !sessions.has(value.value)) throw new Error('bench: bad session')
        session.push(performance.now() - intended)
      }),
    )
    // A libuv-pool task, as file reads, DNS lookups and async crypto are.
    pending.push(
      stat(here).then(() => {
        pool.push(performance.now() - intended)
      }),
    )
    const next = start + k * LIGHT_EVERY_MS
    setTimeout(tick, Math.max(0, next - performance.now()))
  }
  tick()
  return async () => {
    stopped = true
    await Promise.all(pending)
    histogram.disable()
    return { session, pool, loopP99: histogram.percentile(99) / 1e6 }
  }
}

/** Keeps `inFlight` operations outstanding for `seconds`; returns completions per second. */
async function storm(
  op: () => Promise<unknown>,
  inFlight: number,
  seconds: number,
): Promise<{ rate: number; done: number }> {
  const t0 = performance.now()
  const end = t0 + seconds * 1000
  let done = 0
  const started: Array<Promise<void>> = []
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      await op()
      if (performance.now() <= end) done++
    }
  }
  for (let i = 0; i < inFlight; i++) started.push(worker())
  await Promise.all(started)
  return { rate: (done / (end - t0)) * 1000, done }
}

export async function run(): Promise<void> {
  const cores = availableParallelism()
  console.log(
    `passwords bench: ${cores} cores, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}, storms of ${STORM_SECONDS}s. Numbers on a shared, loaded box are noisy.`,
  )
  const hasher = createPasswordHasher()
  const stored = await hasher.hash(PASSWORD)
  const bcryptStored = bcrypt.hashSync(PASSWORD, 10)

  // 1. Sequential cost.
  const bench = new Bench({ time: 1000, iterations: 5, warmup: true })
  bench
    .add('tessera hashPassword (argon2id m=19456 t=2 p=1)', () => hasher.hash(PASSWORD))
    .add('tessera verifyPassword (argon2id default)', () => hasher.verify(PASSWORD, stored))
    .add('bcryptjs compare (cost 10, pure JS)', () => bcrypt.compare(PASSWORD, bcryptStored))
  await bench.run()
  console.log('\nOne operation at a time')
  console.table(
    bench.tasks.map((task) => {
      const result = task.result as { latency?: { mean: number }; throughput?: { mean: number } }
      return {
        task: task.name,
        'mean ms': fmt(result.latency?.mean ?? NaN, 1),
        'ops/s': fmt(result.throughput?.mean ?? NaN, 1),
      }
    }),
  )

  // 2. Storms, one after another in this process.
  const rows: Array<Record<string, string>> = []
  const measure = async (
    name: string,
    op: (() => Promise<unknown>) | null,
    inFlight = STORM_IN_FLIGHT,
  ): Promise<number> => {
    const stop = startLightWork()
    const cpu0 = process.cpuUsage()
    const { rate, done } =
      op === null ? { rate: NaN, done: 0 } : await storm(op, inFlight, STORM_SECONDS)
    const cpu = process.cpuUsage(cpu0)
    const cpuMsPerOp = (cpu.user + cpu.system) / 1000 / done
    if (op === null) await new Promise((resolve) => setTimeout(resolve, 1000))
    const light = await stop()
    rows.push({
      scenario: name,
      'in flight': op === null ? '-' : String(inFlight),
      'verifies/s': fmt(rate, 1),
      // CPU time of the whole process per completed verify (all threads), and what that
      // would allow on this many idle cores: the load-independent figure.
      'CPU ms/verify': op === null ? '-' : fmt(cpuMsPerOp, 1),
      [`idle-${cores}-core capacity/s`]: op === null ? '-' : fmt((cores * 1000) / cpuMsPerOp, 0),
      'session check p50 ms': fmt(p(light.session, 0.5), 2),
      'session check p99 ms': fmt(p(light.session, 0.99), 2),
      'event-loop delay p99 ms': fmt(light.loopP99, 2),
      'fs.stat p99 ms': fmt(p(light.pool, 0.99), 2),
    })
    return rate
  }
  await measure('no storm (baseline)', null)
  const bounded = await measure(
    `tessera verifyPassword (default bound: ${Math.min(cores, 4)})`,
    () => hasher.verify(PASSWORD, stored),
  )
  // The password part of a login: limiter check (memory store), verify, limiter success.
  const limiter = createLoginLimiter({
    store: createMemoryRateLimitStore(),
    ip: { limit: 1_000_000_000 },
  })
  let n = 0
  await measure('login core: limiter check + verifyPassword + succeeded', async () => {
    const check = await limiter.check({ account: `user${n++ % 1000}@example.com`, ip: '192.0.2.1' })
    if (!check.allowed) throw new Error('bench: limited')
    if (await hasher.verify(PASSWORD, stored)) await limiter.succeeded(check.ticket)
  })
  const bounded1 = createPasswordHasher({ concurrency: 1 })
  await measure('tessera verifyPassword (concurrency: 1)', () => bounded1.verify(PASSWORD, stored))
  const raw = await measure('raw @node-rs/argon2 verify (no bound)', () =>
    argon2Verify(stored, PASSWORD),
  )
  // Only 8 in flight: each holds the main thread for a few hundred ms in slices, and the bench
  // waits for the stragglers.
  await measure(
    'bcryptjs compare cost 10 (main thread)',
    () => bcrypt.compare(PASSWORD, bcryptStored),
    8,
  )
  // What a signup storm costs (20 in flight: the queue, not the count, sets the rate).
  const hashes = (await storm(() => hasher.hash(PASSWORD), 20, 2)).rate
  console.log(`\nStorm: operations kept in flight; light work every ${LIGHT_EVERY_MS} ms beside it`)
  console.table(rows)
  console.log(
    `hashPassword/s (default bound): ${fmt(hashes)}; verifies/s bounded vs unbounded: ${fmt(bounded)} vs ${fmt(raw)} (ratio ${fmt(bounded / raw, 2)})`,
  )
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await run()
}
