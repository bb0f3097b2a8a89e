/**
 * Session validation throughput, side by side with the libraries users would pick instead:
 *   - memory store: tessera `validate(cookieHeader)` vs express-session's path (cookie parse +
 *     cookie-signature `unsign` + MemoryStore `get`).
 *
 * Run alone: `npx tsx bench/sessions.bench.ts` (BENCH_TIME=ms per task, default 1000).
 * Each task runs a batch of operations per sample so timer overhead does not dominate;
 * the table shows operations per second.
 */
import { parse as parseCookie } from 'cookie'
import signature from 'cookie-signature'
import session from 'express-session'
import { pathToFileURL } from 'node:url'
import { Bench } from 'tinybench'
import { createKeyring } from '../src/core/keyring.js'
import { createSessionManager } from '../src/core/session-manager.js'
import { createMemoryStore } from '../src/stores/memory.js'

const SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz'
const TIME = Number(process.env.BENCH_TIME ?? 1000)
const BATCH = 200

interface Row {
  task: string
  opsPerSecond: number
}

async function measure(name: string, batch: number, fn: () => Promise<void>): Promise<Row> {
  const bench = new Bench({ time: TIME, warmupTime: Math.min(300, TIME / 3) })
  bench.add(name, fn)
  await bench.run()
  const result = bench.tasks[0]?.result
  if (result === undefined || !('throughput' in result)) throw new Error(`${name} did not run`)
  return { task: name, opsPerSecond: Math.round(result.throughput.mean * batch) }
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}

function print(title: string, rows: Row[], pairs: [string, string, number][]): void {
  console.log(`\n${title}`)
  console.table(
    rows.map((r) => ({ task: r.task, 'ops/s': r.opsPerSecond.toLocaleString('en-US') })),
  )
  for (const [ours, theirs, target] of pairs) {
    const a = rows.find((r) => r.task === ours)
    const b = rows.find((r) => r.task === theirs)
    if (a === undefined || b === undefined) continue
    const ratio = a.opsPerSecond / b.opsPerSecond
    console.log(`  ${ours} / ${theirs}: ${ratio.toFixed(2)}x (target >= ${target}x)`)
  }
}

async function memoryBench(): Promise<void> {
  const keyring = createKeyring(SECRET)
  const store = createMemoryStore({ sweepInterval: 0 })
  const manager = createSessionManager(store, keyring)
  // A realistic population: many sessions in the store, one validated repeatedly.
  const cookies: string[] = []
  for (let i = 0; i < 1000; i++) {
    const issued = await manager.create(`user${i}`, { data: { role: 'member', cart: [1, 2, 3] } })
    cookies.push(issued.setCookie.split(';')[0] as string)
  }
  const header = `theme=dark; ${cookies[500]}; lang=en`
  if ((await manager.validate(header)) === null) throw new Error('tessera validate failed')

  const expressStore = new session.MemoryStore()
  const sid = 'k3cG5xq0ZbV9sFh1Rz2mTj8uWe6LpY4d'
  const sessionData = {
    cookie: {
      originalMaxAge: 604_800_000,
      httpOnly: true,
      path: '/',
      expires: new Date(Date.now() + 604_800_000),
    },
    userId: 'user500',
    role: 'member',
    cart: [1, 2, 3],
  } as unknown as session.SessionData
  await new Promise<void>((resolve, reject) =>
    expressStore.set(sid, sessionData, (error?: unknown) =>
      error ? reject(toError(error)) : resolve(),
    ),
  )
  const expressHeader = `theme=dark; connect.sid=${encodeURIComponent(`s:${signature.sign(sid, SECRET)}`)}; lang=en`
  function expressValidate(): Promise<session.SessionData | null> {
    // What express-session does per request: parse the header, unsign "s:" values, store.get.
    const raw = parseCookie(expressHeader)['connect.sid']
    if (raw === undefined || !raw.startsWith('s:')) return Promise.resolve(null)
    const unsigned = signature.unsign(raw.slice(2), SECRET)
    if (unsigned === false) return Promise.resolve(null)
    return new Promise((resolve, reject) =>
      expressStore.get(unsigned, (error: unknown, data?: session.SessionData | null) =>
        error ? reject(toError(error)) : resolve(data ?? null),
      ),
    )
  }
  if ((await expressValidate()) === null) throw new Error('express-session path failed')

  const rows = [
    await measure('tessera memory validate', BATCH, async () => {
      for (let i = 0; i < BATCH; i++) await manager.validate(header)
    }),
    await measure('express-session MemoryStore get + unsign', BATCH, async () => {
      for (let i = 0; i < BATCH; i++) await expressValidate()
    }),
  ]
  print('Memory store: validate a session cookie (one caller, sequential)', rows, [
    ['tessera memory validate', 'express-session MemoryStore get + unsign', 1],
  ])
  const ours = rows[0]!.opsPerSecond
  console.log(`  tessera memory validate: ${ours.toLocaleString('en-US')}/s (target >= 300,000/s)`)
  await store.close()
}

/** Runs every session benchmark and prints a table per comparison. */
export async function run(): Promise<void> {
  console.log(`sessions bench: node ${process.version}, ${TIME} ms per task`)
  await memoryBench()
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run()
}
