/**
 * Server CPU per sign-in: password only against password + TOTP (the second step), measured as
 * bench/wrk.ts measures: the server in its own process pinned to core 0, the client pinned to
 * core 1, and the server's utime + stime (/proc/<pid>/stat) divided by the sign-ins completed.
 *
 * A TOTP code works once per account and step (replay protection), so wrk's fixed request cannot
 * drive this flow: the client here signs in each prepared account once (password accounts with
 * POST /auth/login; TOTP accounts with POST /auth/login, then POST /auth/mfa/verify with the
 * account's current code), `BENCH_CONCURRENCY` at a time.
 *
 *   taskset -c 1 npx tsx bench/mfa-signin.ts          (BENCH_ACCOUNTS=200 BENCH_CONCURRENCY=4)
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { totpCode } from '../src/auth/totp.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TSX = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href
const ACCOUNTS = Number(process.env.BENCH_ACCOUNTS ?? 200)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4)
const PASSWORD = 'correct horse battery staple'
const TICKS = 100

function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / TICKS
}

async function post(url: string, body: unknown): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
}

/** The server process: `serve` starts it and prints its port. */
async function serve(data: string): Promise<void> {
  const { loadConfig } = await import('../src/server/config.js')
  const { createLogger } = await import('../src/server/logger.js')
  const { startServer } = await import('../src/server/main.js')
  const config = loadConfig(
    { NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent' },
    { cwd: data, envFiles: false },
  )
  const running = await startServer(config, { logger: createLogger('silent') })
  console.log(JSON.stringify({ port: running.port }))
}

async function runAll<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < items.length) await work(items[next++] as T)
    }),
  )
}

async function main(): Promise<void> {
  const data = mkdtempSync(join(tmpdir(), 'tessera-mfa-bench-'))
  const child = spawn(
    'taskset',
    ['-c', '0', process.execPath, '--import', TSX, fileURLToPath(import.meta.url), 'serve', data],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let text = ''
      child.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString()
        if (text.includes('\n')) resolve(text.slice(0, text.indexOf('\n')))
      })
      child.once('exit', (code) => reject(new Error(`server exited ${code}`)))
    })
    const base = `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`
    const pid = child.pid as number
    // Setup (not measured): accounts, half of them with a confirmed authenticator. The
    // confirming code is the previous step's (within the drift window), so the sign-in's code,
    // of the current step, is not a replay.
    const plain = Array.from({ length: ACCOUNTS }, (_, i) => `plain${i}@bench.test`)
    const withTotp: Array<{ email: string; secret: string }> = []
    await runAll(plain, async (email) => {
      const response = await post(`${base}/auth/signup`, { email, password: PASSWORD })
      if (response.status !== 201) throw new Error(`signup ${response.status}`)
    })
    await runAll(
      Array.from({ length: ACCOUNTS }, (_, i) => `totp${i}@bench.test`),
      async (email) => {
        const signup = await post(`${base}/auth/signup`, { email, password: PASSWORD })
        const cookie = (signup.headers.getSetCookie()[0] ?? '').split(';')[0] ?? ''
        const headers = {
          cookie,
          'content-type': 'application/json',
          'sec-fetch-site': 'same-origin',
        }
        const started = await fetch(`${base}/auth/mfa/totp`, { method: 'POST', headers })
        const { secret } = (await started.json()) as { secret: string }
        const confirmed = await fetch(`${base}/auth/mfa/totp/confirm`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ code: totpCode(secret, { now: Date.now() - 30_000 }) }),
        })
        if (confirmed.status !== 200) throw new Error(`confirm ${confirmed.status}`)
        withTotp.push({ email, secret })
      },
    )

    console.log(
      `${ACCOUNTS} sign-ins each, ${CONCURRENCY} at a time; server on core 0; load ${loadavg()[0]?.toFixed(2)} before`,
    )
    let failures = 0
    let cpu = cpuMicros(pid)
    let started = performance.now()
    await runAll(plain, async (email) => {
      const response = await post(`${base}/auth/login`, { email, password: PASSWORD })
      if (response.status !== 200) failures++
      await response.arrayBuffer()
    })
    const plainCpu = cpuMicros(pid) - cpu
    const plainSeconds = (performance.now() - started) / 1000

    cpu = cpuMicros(pid)
    started = performance.now()
    await runAll(withTotp, async ({ email, secret }) => {
      const first = await post(`${base}/auth/login`, { email, password: PASSWORD })
      const { challenge } = (await first.json()) as { challenge: string }
      const verified = await post(`${base}/auth/mfa/verify`, {
        challenge,
        method: 'totp',
        code: totpCode(secret, { now: Date.now() }),
      })
      if (verified.status !== 200) failures++
      await verified.arrayBuffer()
    })
    const totpCpu = cpuMicros(pid) - cpu
    const totpSeconds = (performance.now() - started) / 1000

    console.log('flow                         sign-ins/s  server CPU ms/sign-in')
    console.log(
      `password only (1 request)    ${(ACCOUNTS / plainSeconds).toFixed(1).padStart(10)}  ${(plainCpu / ACCOUNTS / 1000).toFixed(2).padStart(21)}`,
    )
    console.log(
      `password + TOTP (2 requests) ${(ACCOUNTS / totpSeconds).toFixed(1).padStart(10)}  ${(totpCpu / ACCOUNTS / 1000).toFixed(2).padStart(21)}`,
    )
    console.log(`failed sign-ins: ${failures}; load ${loadavg()[0]?.toFixed(2)} after`)
  } finally {
    child.kill('SIGKILL')
    rmSync(data, { recursive: true, force: true })
  }
}

if (process.argv[2] === 'serve') await serve(process.argv[3] ?? tmpdir())
else await main()
