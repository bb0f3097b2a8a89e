/**
 * HTTP load, side by side in one run, each target in its own process (bench/server-target.ts):
 * tessera's server with SQLite sessions and with Redis sessions, Express + express-session +
 * connect-redis, and Express + better-auth (SQLite). Two measurements per target:
 *
 * - `GET /auth/session` with a valid session cookie (50 connections);
 * - logins per second: `POST` of a correct e-mail and password to the target's login route
 *   (tessera `/auth/login`, better-auth `/api/auth/sign-in/email`, express-session a bcrypt
 *   check), one account per connection.
 *
 * autocannon runs here, over loopback, bounded (a few seconds per target). Redis keys live under a
 * unique prefix, deleted at the end. Run alone: npx tsx bench/server.bench.ts
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import autocannon from 'autocannon'
import { createClient } from 'redis'
import type { TargetInfo } from './server-target.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TSX = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href
// node-http (a bare server, no auth) is the ceiling of the box on this run, and hono-bare (Hono on
// @hono/node-server answering a fixed body) the ceiling of the stack tessera's server runs on: on
// a shared machine the other rows only mean something next to them.
const TARGETS = [
  'node-http',
  'hono-bare',
  'tessera-sqlite',
  'tessera-redis',
  'express-session',
  'better-auth',
] as const
type Target = (typeof TARGETS)[number]
const DURATION = Number(process.env.BENCH_DURATION ?? 4)
const CONNECTIONS = 50
// Password hashing is CPU-bound (2 cores here): a few connections saturate it.
const LOGIN_CONNECTIONS = 8

interface Row {
  target: Target
  rps: number
  p99: number
  non2xx: number
}

async function startTarget(
  target: Target,
  prefix: string,
  data: string,
): Promise<{ child: ChildProcess; info: TargetInfo }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      TSX,
      join(ROOT, 'bench', 'server-target.ts'),
      target,
      prefix,
      String(LOGIN_CONNECTIONS),
      data,
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: process.env,
    },
  )
  const line = await new Promise<string>((resolve, reject) => {
    let text = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString()
      const newline = text.indexOf('\n')
      if (newline !== -1) resolve(text.slice(0, newline))
    })
    child.once('exit', (code) => reject(new Error(`${target} exited ${code}`)))
  })
  return { child, info: JSON.parse(line) as TargetInfo }
}

/** The same request on every target: 200 with the cookie, 401 without; else the bench stops. */
async function checkTarget(target: Target, base: string, cookie: string): Promise<void> {
  if (target === 'node-http' || target === 'hono-bare') return
  const signedIn = await fetch(`${base}/auth/session`, { headers: { cookie } })
  const anonymous = await fetch(`${base}/auth/session`)
  if (signedIn.status !== 200 || anonymous.status !== 401) {
    throw new Error(`${target}: GET /auth/session gave ${signedIn.status} / ${anonymous.status}`)
  }
}

async function sessionLoad(target: Target, base: string, cookie: string): Promise<Row> {
  const options = { url: `${base}/auth/session`, connections: CONNECTIONS, headers: { cookie } }
  await autocannon({ ...options, duration: 1 })
  const result = await autocannon({ ...options, duration: DURATION })
  return {
    target,
    rps: Math.round(result.requests.average),
    p99: result.latency.p99,
    non2xx: result.non2xx + result.errors,
  }
}

async function loginLoad(
  target: Target,
  base: string,
  login: NonNullable<TargetInfo['login']>,
): Promise<Row> {
  let next = 0
  const options = {
    url: `${base}${login.path}`,
    method: 'POST' as const,
    connections: LOGIN_CONNECTIONS,
    headers: { 'content-type': 'application/json', ...login.headers },
    // One account per connection, so that no account sees two logins at once.
    setupClient: (client: autocannon.Client) => {
      const email = login.emails[next++ % login.emails.length]
      client.setBody(JSON.stringify({ email, password: login.password }))
    },
  }
  await autocannon({ ...options, duration: 1 })
  const result = await autocannon({ ...options, duration: DURATION })
  return {
    target,
    rps: Math.round(result.requests.average),
    p99: result.latency.p99,
    non2xx: result.non2xx + result.errors,
  }
}

function ratio(rows: Row[], numerator: Target, denominator: Target): string {
  const top = rows.find((row) => row.target === numerator)?.rps
  const bottom = rows.find((row) => row.target === denominator)?.rps
  return top === undefined || bottom === undefined || bottom === 0
    ? 'n/a'
    : `${(top / bottom).toFixed(2)}x`
}

function printTable(title: string, unit: string, rows: Row[]): void {
  console.log(`\n${title}`)
  console.log(
    `target           ${unit.padStart(7)}  p99 ms  non-2xx  vs express-session  vs better-auth`,
  )
  for (const row of rows) {
    console.log(
      `${row.target.padEnd(16)} ${String(row.rps).padStart(7)}  ${String(row.p99).padStart(6)}  ${String(row.non2xx).padStart(7)}  ${ratio(rows, row.target, 'express-session').padStart(18)}  ${ratio(rows, row.target, 'better-auth').padStart(14)}`,
    )
  }
}

export async function run(): Promise<void> {
  const sessionRows: Row[] = []
  const loginRows: Row[] = []
  // A unique prefix per run on the shared Redis, deleted (SCAN, our prefix only) at the end.
  const prefix = `tsrvbench_${randomBytes(6).toString('hex')}:`
  const loadBefore = loadavg()[0] ?? 0
  // The targets' SQLite files (they are killed, so they cannot clean up after themselves).
  const data = mkdtempSync(join(tmpdir(), 'tessera-srvbench-'))
  try {
    for (const target of TARGETS) {
      const { child, info } = await startTarget(target, prefix, data)
      try {
        const base = `http://127.0.0.1:${info.port}`
        await checkTarget(target, base, info.cookie)
        sessionRows.push(await sessionLoad(target, base, info.cookie))
        if (info.login !== null) loginRows.push(await loginLoad(target, base, info.login))
      } finally {
        child.kill('SIGKILL')
      }
    }
  } finally {
    rmSync(data, { recursive: true, force: true })
    const redis = createClient({
      url: process.env.TESSERA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
    })
    await redis.connect()
    for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await redis.del(keys)
    }
    redis.destroy()
  }
  // Other work on the box shares its cores with the targets and autocannon: say how much.
  console.log(
    `${availableParallelism()} cores, 1-min load average ${loadBefore.toFixed(2)} before, ${(loadavg()[0] ?? 0).toFixed(2)} after`,
  )
  printTable(
    `GET /auth/session, ${CONNECTIONS} connections, ${DURATION} s each (loopback, noisy shared box)`,
    'req/s',
    sessionRows,
  )
  printTable(
    `Logins with a correct password, ${LOGIN_CONNECTIONS} connections (one account each), ${DURATION} s each`,
    'login/s',
    loginRows,
  )
  console.log(
    `\ntessera-redis / better-auth: ${ratio(sessionRows, 'tessera-redis', 'better-auth')} (GET /auth/session), ` +
      `tessera-redis / express-session: ${ratio(sessionRows, 'tessera-redis', 'express-session')}, ` +
      `tessera-sqlite / express-session: ${ratio(sessionRows, 'tessera-sqlite', 'express-session')}`,
  )
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await run()
