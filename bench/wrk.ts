/**
 * Server CPU per request, measured the way the issues ask: each target (bench/server-target.ts)
 * in its own process pinned to core 0, `wrk` pinned to core 1, and the server's own CPU time
 * (utime + stime of every thread, from /proc/<pid>/stat) divided by the requests wrk completed.
 * On 2 cores nothing else should run meanwhile; the 1-minute load average is printed beside the
 * figures so a reader can tell.
 *
 *   npx tsx bench/wrk.ts [target ...]      (default: node-http hono-bare tessera-sqlite tessera-redis
 *     tessera-postgres express-session)
 *   BENCH_BEFORE=/path/to/other/worktree npx tsx bench/wrk.ts tessera-redis
 *     (each round runs the target of this tree, then the same target of the other tree: a
 *     before/after in one run, on the same load; rows of the other tree end in " (before)")
 *   BENCH_DURATION=10 BENCH_ROUNDS=2 npx tsx bench/wrk.ts tessera-redis
 *   npx tsx bench/wrk.ts express-session express-session-dropin   (the drop-in against express-session:
 *     same Express app, same connect-redis store, same login; only the session import differs)
 *
 * Needs Debian's `wrk` and `taskset` (util-linux). Redis keys live under a unique prefix, deleted
 * at the end.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { createClient } from 'redis'
import type { TargetInfo } from './server-target.js'

/** The PostgreSQL schema of a run's prefix (as bench/server-target.ts makes it). */
function schemaOf(prefix: string): string {
  return prefix.replace(/[^a-z0-9_]/gi, '_').replace(/_+$/, '')
}

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
// Another worktree (e.g. main's) whose targets run beside this tree's, round by round.
const BEFORE = process.env.BENCH_BEFORE
const DEFAULT_TARGETS = [
  'node-http',
  'hono-bare',
  'tessera-sqlite',
  'tessera-redis',
  'tessera-postgres',
  'express-session',
]
const DURATION = Number(process.env.BENCH_DURATION ?? 10)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)
// Clock ticks per second of /proc/<pid>/stat times (USER_HZ), 100 on Linux.
const TICKS = 100

/** utime + stime of the whole process (every thread), in microseconds. */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may contain spaces) start at state (field 3).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  return ((utime + stime) * 1e6) / TICKS
}

async function startTarget(
  target: string,
  prefix: string,
  data: string,
  root: string = ROOT,
): Promise<{ child: ChildProcess; info: TargetInfo }> {
  const child = spawn(
    'taskset',
    [
      '-c',
      '0',
      process.execPath,
      '--import',
      pathToFileURL(join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href,
      join(root, 'bench', 'server-target.ts'),
      target,
      prefix,
      '8',
      data,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: process.env },
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

async function wrk(
  url: string,
  cookie: string,
  seconds: number,
): Promise<{ requests: number; non2xx: number; p99: string }> {
  const { stdout } = await run(
    'taskset',
    [
      '-c',
      '1',
      'wrk',
      '-t1',
      `-c${CONNECTIONS}`,
      `-d${seconds}s`,
      '--latency',
      '-H',
      `cookie: ${cookie}`,
      url,
    ],
    { maxBuffer: 1 << 20 },
  )
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? NaN)
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0)
  const p99 = /99%\s+(\S+)/.exec(stdout)?.[1] ?? '?'
  return { requests, non2xx, p99 }
}

async function main(): Promise<void> {
  const targets = process.argv.slice(2).length > 0 ? process.argv.slice(2) : DEFAULT_TARGETS
  const prefix = `tsrvwrk_${randomBytes(6).toString('hex')}:`
  const data = mkdtempSync(join(tmpdir(), 'tessera-wrk-'))
  console.log(
    `wrk -t1 -c${CONNECTIONS}, ${DURATION} s x ${ROUNDS} rounds; server on core 0, wrk on core 1; load ${loadavg()[0]?.toFixed(2)} before`,
  )
  console.log('target                 round   req/s    CPU us/req  p99     non-2xx  load')
  try {
    for (const target of targets) {
      const trees: [string, string][] = [[target, ROOT]]
      if (BEFORE !== undefined && BEFORE !== '') trees.push([`${target} (before)`, BEFORE])
      const started: { name: string; child: ChildProcess; info: TargetInfo }[] = []
      try {
        for (const [name, root] of trees) {
          // Each tree its own prefix and data, so the two servers share nothing.
          const own = `${prefix}${started.length}_`
          started.push({ name, ...(await startTarget(target, own, data, root)) })
        }
        for (const { info } of started) {
          await wrk(`http://127.0.0.1:${info.port}/auth/session`, info.cookie, 2) // warm-up
        }
        for (let round = 1; round <= ROUNDS; round++) {
          for (const { name, child, info } of started) {
            const url = `http://127.0.0.1:${info.port}/auth/session`
            const before = cpuMicros(child.pid as number)
            const startedAt = performance.now()
            const result = await wrk(url, info.cookie, DURATION)
            const elapsed = (performance.now() - startedAt) / 1000
            const used = cpuMicros(child.pid as number) - before
            console.log(
              `${name.padEnd(22)} ${String(round).padStart(5)} ${String(Math.round(result.requests / elapsed)).padStart(7)} ${(used / result.requests).toFixed(1).padStart(12)}  ${result.p99.padEnd(7)} ${String(result.non2xx).padStart(7)}  load ${loadavg()[0]?.toFixed(2)}`,
            )
          }
        }
      } finally {
        for (const { child } of started) child.kill('SIGKILL')
      }
    }
  } finally {
    rmSync(data, { recursive: true, force: true })
    const { default: pg } = await import('pg')
    const admin = new pg.Client({
      connectionString:
        process.env.TESSERA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    })
    await admin.connect()
    for (const tree of [0, 1]) {
      await admin.query(`DROP SCHEMA IF EXISTS "${schemaOf(`${prefix}${tree}_`)}" CASCADE`)
    }
    await admin.end()
    const redis = createClient({
      url: process.env.TESSERA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
    })
    await redis.connect()
    for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await redis.del(keys)
    }
    redis.destroy()
  }
  console.log(`load ${loadavg()[0]?.toFixed(2)} after`)
}

await main()
