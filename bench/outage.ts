// What clients get while a store is away, under load (issue 12's closing figures).
//
//   npx tsx bench/outage.ts [--rate 200] [--fault 5] [--accounts 20]
//
// Starts a private PostgreSQL and a private Redis (never the shared ones: this stops them) and a
// tessera server in a child process on both (accounts in PostgreSQL; sessions, refresh tokens and
// rate limits in Redis). Then drives about `--rate` requests per second, open loop (a request is
// sent every 1/rate s whether or not the previous ones answered): 95% `GET /auth/session` with
// the cookie of one of `--accounts` accounts, 5% `POST /auth/login` (argon2id). Two runs:
//   (a) Redis frozen by SIGSTOP for `--fault` seconds, then SIGCONT;
//   (b) PostgreSQL stopped (pg_ctl stop -m fast), started again `--fault` seconds later.
// For each it prints the longest request, the count and share of 503 and 500 answers (and of
// every other status), and the time to recovery: from the moment the store is back (SIGCONT sent,
// or pg_ctl start returned) to the start of the first request after which every request got a
// 2xx. Prints the load average: the machine is shared, so compare only within one run.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import {
  startPrivatePostgres,
  startPrivateRedis,
  type PrivatePostgres,
  type PrivateRedis,
} from '../test/helpers/private-servers.js'

const ROOT = resolve(import.meta.dirname, '..')
const PASSWORD = 'correct horse battery staple'
// Absolute: the child runs in a temp directory where `tsx` cannot be resolved by name.
const TSX = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href

if (process.argv[2] === 'serve') {
  // The child: the real server from the environment, its log at warn (errors stay visible).
  const { loadConfig } = await import('../src/server/config.js')
  const { startServer } = await import('../src/server/main.js')
  const { createLogger } = await import('../src/server/logger.js')
  const config = loadConfig(process.env, { cwd: process.cwd(), envFiles: false })
  const running = await startServer(config, { logger: createLogger('warn', process.stderr) })
  process.stdout.write(`${JSON.stringify({ port: running.port })}\n`)
} else {
  await main()
}

interface Outcome {
  /** ms since the run began, when the request was sent. */
  start: number
  ms: number
  kind: 'session' | 'login'
  /** HTTP status, or 0 when the request failed without an answer. */
  status: number
  /** The 503's error message (store unavailable, or hashing saturated). */
  reason?: string
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '200' },
      fault: { type: 'string', default: '5' },
      accounts: { type: 'string', default: '20' },
    },
  })
  const rate = Number(values.rate)
  const faultSeconds = Number(values.fault)
  const accounts = Number(values.accounts)
  const cpus = (await import('node:os')).cpus().length
  console.log(
    `load average ${loadavg()
      .map((n) => n.toFixed(2))
      .join(' ')} on ${cpus} cores; ${rate} req/s, fault ${faultSeconds} s, ${accounts} accounts`,
  )

  const redis = await startPrivateRedis()
  const pg = await startPrivatePostgres()
  const dir = mkdtempSync(join(tmpdir(), 'tessera-outage-'))
  let server: ChildProcess | undefined
  try {
    const started = await startServerProcess(dir, pg, redis)
    server = started.child
    const base = `http://127.0.0.1:${started.port}`
    const cookies = await makeAccounts(base, accounts)
    console.log(`server on ${base}, ${cookies.length} accounts signed up`)

    // Warm-up (not reported): JIT, pools and connections at the same rate, no fault.
    await run(base, cookies, rate, 0, {
      name: 'warm-up',
      begin: () => Promise.resolve(),
      end: () => Promise.resolve(),
    })
    const a = await run(base, cookies, rate, faultSeconds, {
      name: '(a) Redis SIGSTOP',
      begin: () => Promise.resolve(redis.pause()),
      end: () => Promise.resolve(redis.resume()),
    })
    report(a, started.errors())
    const b = await run(base, cookies, rate, faultSeconds, {
      name: '(b) PostgreSQL stopped',
      begin: () => pg.stop(),
      end: () => pg.start(),
    })
    report(b, started.errors())
  } finally {
    server?.kill('SIGTERM')
    redis.resume()
    await redis.destroy()
    await pg.destroy()
    rmSync(dir, { recursive: true, force: true })
  }
}

async function startServerProcess(
  dir: string,
  pg: PrivatePostgres,
  redis: PrivateRedis,
): Promise<{ child: ChildProcess; port: number; errors: () => number }> {
  const child = spawn(
    process.execPath,
    ['--import', TSX, join(ROOT, 'bench', 'outage.ts'), 'serve'],
    {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'test',
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        LOG_FORMAT: 'json',
        TESSERA_SECRET: randomBytes(32).toString('base64url'),
        TESSERA_MAILER: `file:${join(dir, 'outbox')}`,
        DATABASE_URL: pg.url,
        REDIS_URL: redis.url,
        TSX_TSCONFIG_PATH: join(ROOT, 'tsconfig.json'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let unhandled = 0
  let stderr = ''
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk
    unhandled += chunk.split('"msg":"unhandled error"').length - 1
    if (stderr.length > 100_000) stderr = stderr.slice(-50_000)
  })
  const port = await new Promise<number>((done, fail) => {
    let out = ''
    child.stdout?.setEncoding('utf8')
    child.stdout?.on('data', (chunk: string) => {
      out += chunk
      const match = /"port":(\d+)/.exec(out)
      if (match?.[1] !== undefined) done(Number(match[1]))
    })
    child.once('exit', (code) => fail(new Error(`server exited ${code}: ${stderr}`)))
  })
  child.once('exit', (code, signal) => {
    if (signal !== 'SIGTERM')
      console.log(`server exited (${code ?? signal}): ${stderr.slice(-3000)}`)
  })
  return { child, port, errors: () => unhandled }
}

async function makeAccounts(base: string, count: number): Promise<string[]> {
  const cookies: string[] = []
  for (let index = 0; index < count; index += 1) {
    const response = await fetch(`${base}/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: `outage${index}@example.com`, password: PASSWORD }),
    })
    if (response.status !== 201) throw new Error(`signup ${index}: ${response.status}`)
    const cookie = response.headers.getSetCookie()[0]?.split(';')[0]
    if (cookie === undefined) throw new Error('no session cookie')
    cookies.push(cookie)
  }
  return cookies
}

interface Fault {
  name: string
  begin(): Promise<void>
  end(): Promise<void>
}

interface RunResult {
  name: string
  outcomes: Outcome[]
  /** ms since the run began. */
  faultBegun: number
  faultEnded: number
}

/** 5 s of traffic, the fault for `faultSeconds`, then traffic for 15 s more. */
async function run(
  base: string,
  cookies: string[],
  rate: number,
  faultSeconds: number,
  fault: Fault,
): Promise<RunResult> {
  const outcomes: Outcome[] = []
  const pending = new Set<Promise<void>>()
  const t0 = performance.now()
  const elapsed = (): number => performance.now() - t0
  let sent = 0
  const send = (): void => {
    const index = sent
    sent += 1
    const kind = index % 20 === 19 ? 'login' : 'session'
    const account = index % cookies.length
    const start = elapsed()
    const request =
      kind === 'login'
        ? fetch(`${base}/auth/login`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ email: `outage${account}@example.com`, password: PASSWORD }),
            signal: AbortSignal.timeout(60_000),
          })
        : fetch(`${base}/auth/session`, {
            headers: { cookie: cookies[account] ?? '' },
            signal: AbortSignal.timeout(60_000),
          })
    const done = request.then(
      async (response) => {
        const text = await response.text()
        const outcome: Outcome = { start, ms: elapsed() - start, kind, status: response.status }
        if (response.status === 503) {
          const reason = (JSON.parse(text) as { error?: { message?: string } }).error?.message
          if (reason !== undefined) outcome.reason = reason
        }
        outcomes.push(outcome)
      },
      () => {
        outcomes.push({ start, ms: elapsed() - start, kind, status: 0 })
      },
    )
    pending.add(done)
    void done.finally(() => pending.delete(done))
  }
  // Open loop: catch up on the schedule, so a slow answer never slows the sending.
  const total = (5 + faultSeconds + 15) * 1000
  const ticker = setInterval(() => {
    const due = Math.min(Math.floor((elapsed() / 1000) * rate), (total / 1000) * rate)
    while (sent < due) send()
  }, 2)
  const at = (ms: number): Promise<void> =>
    new Promise((resolve) => setTimeout(resolve, Math.max(0, ms - elapsed())))
  await at(5000)
  const faultBegun = elapsed()
  await fault.begin()
  await at(faultBegun + faultSeconds * 1000)
  await fault.end()
  const faultEnded = elapsed()
  await at(total)
  clearInterval(ticker)
  await Promise.all([...pending])
  return { name: fault.name, outcomes, faultBegun, faultEnded }
}

function report(result: RunResult, unhandledSoFar: number): void {
  const { outcomes } = result
  const byStatus = new Map<string, number>()
  for (const outcome of outcomes) {
    const key =
      outcome.status === 503
        ? `503 (${outcome.reason?.includes('busy') === true ? 'busy' : 'store unavailable'})`
        : outcome.status === 0
          ? 'no answer'
          : String(outcome.status)
    byStatus.set(key, (byStatus.get(key) ?? 0) + 1)
  }
  const longest = outcomes.reduce((worst, outcome) => (outcome.ms > worst.ms ? outcome : worst))
  // Recovery is about the outage: a 429 (a login limit) is an answer the server means to give.
  const ok = (outcome: Outcome): boolean =>
    (outcome.status >= 200 && outcome.status < 300) || outcome.status === 429
  const sorted = [...outcomes].sort((x, y) => x.start - y.start)
  const lastBad = sorted.findLast((outcome) => !ok(outcome))
  const firstGoodAfter =
    lastBad === undefined ? undefined : sorted.find((outcome) => outcome.start > lastBad.start)
  const share = (n: number): string => `${((100 * n) / outcomes.length).toFixed(1)}%`
  const count503 = outcomes.filter((outcome) => outcome.status === 503).length
  const count500 = outcomes.filter((outcome) => outcome.status === 500).length
  const p99 = (list: Outcome[]): number => {
    const durations = list.map((outcome) => outcome.ms).sort((x, y) => x - y)
    return durations[Math.floor(durations.length * 0.99)] ?? 0
  }
  const before = outcomes.filter((outcome) => outcome.start < result.faultBegun)
  const during = outcomes.filter(
    (outcome) => outcome.start >= result.faultBegun && outcome.start < result.faultEnded,
  )
  const longestDuring = during.reduce(
    (worst, outcome) => (outcome.ms > worst.ms ? outcome : worst),
    { ms: 0, kind: 'session', status: 0, start: 0 } as Outcome,
  )
  console.log(
    `\n${result.name}: ${outcomes.length} requests over ${((sorted.at(-1)?.start ?? 0) / 1000).toFixed(1)} s`,
  )
  console.log(
    `  fault from ${(result.faultBegun / 1000).toFixed(2)} s to ${(result.faultEnded / 1000).toFixed(2)} s`,
  )
  console.log(
    `  longest request ${longest.ms.toFixed(0)} ms (${longest.kind}, ${longest.status}, sent at ${(longest.start / 1000).toFixed(2)} s); longest sent during the fault ${longestDuring.ms.toFixed(0)} ms (${longestDuring.kind}, ${longestDuring.status})`,
  )
  console.log(
    `  p99 before the fault ${p99(before).toFixed(0)} ms, during ${p99(during).toFixed(0)} ms, overall ${p99(outcomes).toFixed(0)} ms`,
  )
  console.log(`  503: ${count503} (${share(count503)}), 500: ${count500} (${share(count500)})`)
  const statusesOf = (list: Outcome[]): string => {
    const counts = new Map<number, number>()
    for (const outcome of list) counts.set(outcome.status, (counts.get(outcome.status) ?? 0) + 1)
    return [...counts]
      .sort(([x], [y]) => x - y)
      .map(([status, n]) => `${status} ${n}`)
      .join(', ')
  }
  console.log(`  sent before the fault: ${statusesOf(before)}; during: ${statusesOf(during)}`)
  console.log(
    `  by status: ${[...byStatus]
      .sort()
      .map(([status, n]) => `${status} ${n}`)
      .join(', ')}`,
  )
  console.log(`  "unhandled error" lines in the server log so far: ${unhandledSoFar}`)
  if (lastBad === undefined) console.log('  every request got a 2xx')
  else {
    const recovered = Math.max(0, (firstGoodAfter?.start ?? lastBad.start) - result.faultEnded)
    console.log(
      `  time to recovery: ${recovered.toFixed(0)} ms after the store was back (0: every request sent after that got a 2xx or 429; the last failed one was sent at ${(lastBad.start / 1000).toFixed(2)} s: ${lastBad.kind} ${lastBad.status}; 429s not counted as failures)`,
    )
  }
}
