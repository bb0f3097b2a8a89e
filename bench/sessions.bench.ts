/**
 * Session validation throughput, side by side with the libraries users would pick instead:
 *   - memory store: tessera `validate(cookieHeader)` vs express-session's path (cookie parse +
 *     cookie-signature `unsign` + MemoryStore `get`).
 *   - stateless: tessera cookie-session `validate(cookieHeader)` (parse, unseal AES-256-GCM,
 *     expiry checks) vs iron-session `unsealData` (the unseal alone, no cookie parsing).
 *   - Redis (real server at TESSERA_TEST_REDIS_URL, default redis://127.0.0.1:6379, under a
 *     unique key prefix that is deleted afterwards): tessera Redis-store `validate` vs
 *     connect-redis 9 `get` (alone, and with express-session's unsign), 50 concurrent callers.
 *
 * Run alone: `npx tsx bench/sessions.bench.ts` (BENCH_TIME=ms per task, default 1000).
 * Each task runs a batch of operations per sample so timer overhead does not dominate;
 * the table shows operations per second.
 */
import { parse as parseCookie } from 'cookie'
import signature from 'cookie-signature'
import session from 'express-session'
import { RedisStore as ConnectRedisStore } from 'connect-redis'
import { sealData, unsealData } from 'iron-session'
import { randomBytes } from 'node:crypto'
import { createClient } from 'redis'
import { pathToFileURL } from 'node:url'
import { Bench } from 'tinybench'
import { createCookieSessions } from '../src/core/cookie-session.js'
import { createKeyring } from '../src/core/keyring.js'
import { createSessionManager } from '../src/core/session-manager.js'
import { createMemoryStore } from '../src/stores/memory.js'
import { createRedisStore } from '../src/stores/redis.js'

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

async function statelessBench(): Promise<void> {
  const data = { userId: 'user500', role: 'member', cart: [1, 2, 3], theme: 'dark' }
  const sessions = createCookieSessions(createKeyring(SECRET))
  const { setCookie } = await sessions.create('user500', { data })
  const header = `theme=dark; ${setCookie[0]!.split(';')[0]}; lang=en`
  if ((await sessions.validate(header)) === null) throw new Error('tessera stateless failed')

  const password = SECRET
  const seal = await sealData(data, { password, ttl: 30 * 86_400 })
  if ((await unsealData<typeof data>(seal, { password })).role !== 'member') {
    throw new Error('iron-session unseal failed')
  }

  const rows = [
    await measure('tessera stateless validate', BATCH, async () => {
      for (let i = 0; i < BATCH; i++) await sessions.validate(header)
    }),
    await measure('iron-session unsealData', 20, async () => {
      for (let i = 0; i < 20; i++) await unsealData(seal, { password })
    }),
  ]
  print('Stateless: open a sealed session cookie (one caller, sequential)', rows, [
    ['tessera stateless validate', 'iron-session unsealData', 20],
  ])
}

const CONCURRENCY = 50
const ROUNDS = 4

/** `CONCURRENCY` callers, each running `ROUNDS` operations back to back. */
function concurrently(
  op: (caller: number, round: number) => Promise<unknown>,
): () => Promise<void> {
  return async () => {
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, caller) => {
        for (let round = 0; round < ROUNDS; round++) await op(caller, round)
      }),
    )
  }
}

async function redisBench(): Promise<void> {
  const url = process.env.TESSERA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
  const ours = createClient({ url, socket: { connectTimeout: 2000 } })
  const theirs = createClient({ url, socket: { connectTimeout: 2000 } })
  ours.on('error', () => undefined)
  theirs.on('error', () => undefined)
  try {
    await ours.connect()
    await theirs.connect()
  } catch {
    console.log(`\nRedis: skipped (no server at ${url})`)
    ours.destroy()
    theirs.destroy()
    return
  }
  const tag = `tessera_bench_${randomBytes(6).toString('hex')}`
  const prefix = `${tag}:`
  const connectPrefix = `${tag}_cr:`
  try {
    const manager = createSessionManager(
      createRedisStore(ours, { prefix, timeout: 5 }),
      createKeyring(SECRET),
    )
    const expressStore = new ConnectRedisStore({ client: theirs, prefix: connectPrefix })
    const data = { role: 'member', cart: [1, 2, 3] }
    const headers: string[] = []
    const expressHeaders: string[] = []
    for (let i = 0; i < 200; i++) {
      const issued = await manager.create(`user${i}`, { data })
      headers.push(`theme=dark; ${issued.setCookie.split(';')[0]}; lang=en`)
      const sid = randomBytes(24).toString('base64url')
      const sess = {
        cookie: { originalMaxAge: 604_800_000, httpOnly: true, path: '/' },
        userId: `user${i}`,
        ...data,
      } as unknown as session.SessionData
      await expressStore.set(sid, sess)
      expressHeaders.push(
        `theme=dark; connect.sid=${encodeURIComponent(`s:${signature.sign(sid, SECRET)}`)}; lang=en`,
      )
    }
    const pick = (list: string[], caller: number, round: number): string =>
      list[(caller * ROUNDS + round) % list.length] as string
    async function expressValidate(header: string): Promise<unknown> {
      const raw = parseCookie(header)['connect.sid']
      if (raw === undefined || !raw.startsWith('s:')) return null
      const sid = signature.unsign(raw.slice(2), SECRET)
      return sid === false ? null : expressStore.get(sid)
    }
    const sid0 = signature.unsign(
      (parseCookie(expressHeaders[0]!)['connect.sid'] ?? '').slice(2),
      SECRET,
    )
    if (
      (await manager.validate(headers[0])) === null ||
      (await expressValidate(expressHeaders[0]!)) === null ||
      sid0 === false
    ) {
      throw new Error('Redis bench setup failed')
    }
    const sids = expressHeaders.map(
      (h) => signature.unsign((parseCookie(h)['connect.sid'] ?? '').slice(2), SECRET) as string,
    )

    const batch = CONCURRENCY * ROUNDS
    const rows = [
      await measure(
        'tessera Redis validate',
        batch,
        concurrently((c, r) => manager.validate(pick(headers, c, r))),
      ),
      await measure(
        'connect-redis get + unsign',
        batch,
        concurrently((c, r) => expressValidate(pick(expressHeaders, c, r))),
      ),
      await measure(
        'connect-redis get',
        batch,
        concurrently((c, r) => expressStore.get(pick(sids, c, r))),
      ),
    ]
    print(`Redis store: validate at ${CONCURRENCY} concurrent callers (real Redis)`, rows, [
      ['tessera Redis validate', 'connect-redis get + unsign', 2],
      ['tessera Redis validate', 'connect-redis get', 2],
    ])
  } finally {
    for (const p of [prefix, connectPrefix]) {
      for await (const keys of ours.scanIterator({ MATCH: `${p}*`, COUNT: 1000 })) {
        if (keys.length > 0) await ours.del(keys)
      }
    }
    ours.destroy()
    theirs.destroy()
  }
}

/** Runs every session benchmark and prints a table per comparison. */
export async function run(): Promise<void> {
  console.log(`sessions bench: node ${process.version}, ${TIME} ms per task`)
  await memoryBench()
  await statelessBench()
  await redisBench()
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run()
}
