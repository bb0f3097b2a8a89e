/**
 * HTTP load on `GET /auth/session` with a valid session cookie, side by side in one run:
 * tessera's server with SQLite sessions, with Redis sessions, and Express + express-session +
 * connect-redis serving the same request. Each target runs in its own process; autocannon runs
 * here, over loopback, bounded (a few seconds per target). Run alone: npx tsx bench/server.bench.ts
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { randomBytes } from 'node:crypto'
import autocannon from 'autocannon'
import { createClient } from 'redis'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TSX = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href
const TARGETS = ['tessera-sqlite', 'tessera-redis', 'express-session'] as const
const DURATION = Number(process.env.BENCH_DURATION ?? 4)
const CONNECTIONS = 50

async function startTarget(
  target: string,
  prefix: string,
): Promise<{ child: ChildProcess; port: number; cookie: string }> {
  const child = spawn(
    process.execPath,
    ['--import', TSX, join(ROOT, 'bench', 'server-target.ts'), target, prefix],
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
  const { port, cookie } = JSON.parse(line) as { port: number; cookie: string }
  return { child, port, cookie }
}

export async function run(): Promise<void> {
  const rows: Array<{ target: string; rps: number; p99: number; non2xx: number }> = []
  // A unique prefix per run on the shared Redis, deleted (SCAN, our prefix only) at the end.
  const prefix = `tsrvbench_${randomBytes(6).toString('hex')}:`
  for (const target of TARGETS) {
    const { child, port, cookie } = await startTarget(target, prefix)
    try {
      await autocannon({
        url: `http://127.0.0.1:${port}/auth/session`,
        duration: 1,
        connections: CONNECTIONS,
        headers: { cookie },
      })
      const result = await autocannon({
        url: `http://127.0.0.1:${port}/auth/session`,
        duration: DURATION,
        connections: CONNECTIONS,
        headers: { cookie },
      })
      rows.push({
        target,
        rps: Math.round(result.requests.average),
        p99: result.latency.p99,
        non2xx: result.non2xx + result.errors,
      })
    } finally {
      child.kill('SIGKILL')
    }
  }
  const redis = createClient({
    url: process.env.TESSERA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
  })
  await redis.connect()
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
    if (keys.length > 0) await redis.del(keys)
  }
  redis.destroy()
  const baseline = rows.find((row) => row.target === 'express-session')?.rps ?? 1
  console.log(
    `GET /auth/session, ${CONNECTIONS} connections, ${DURATION} s each (loopback, noisy shared box)`,
  )
  console.log('target           req/s   p99 ms  non-2xx  vs express-session')
  for (const row of rows) {
    console.log(
      `${row.target.padEnd(16)} ${String(row.rps).padStart(6)}  ${String(row.p99).padStart(6)}  ${String(row.non2xx).padStart(7)}  ${(row.rps / baseline).toFixed(2)}x`,
    )
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await run()
