/**
 * Session validation through the server-backed stores, side by side with what users would pick:
 *   - Redis: tessera `validate(cookieHeader)` over `createRedisStore` vs express-session's path
 *     over connect-redis (cookie parse + cookie-signature `unsign` + `RedisStore.get`),
 *     50 concurrent callers each.
 *   - SQLite (file, WAL) and PostgreSQL validate, for reference (no peer comparison).
 *
 * Run alone: `npx tsx bench/stores.bench.ts` (BENCH_TIME=ms per task, default 1000). Redis and
 * PostgreSQL come from TESSERA_TEST_REDIS_URL / TESSERA_TEST_PG_URL (defaults: the local
 * servers); a unique key prefix and schema are used and removed afterwards.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import Database from 'better-sqlite3'
import { RedisStore } from 'connect-redis'
import { parse as parseCookie } from 'cookie'
import signature from 'cookie-signature'
import type { SessionData } from 'express-session'
import pg from 'pg'
import { createClient } from 'redis'
import { Bench } from 'tinybench'
import { createKeyring } from '../src/core/keyring.js'
import { createSessionManager, type SessionManager } from '../src/core/session-manager.js'
import type { SessionStore } from '../src/core/session-store.js'
import { createPostgresStore } from '../src/stores/postgres.js'
import { createRedisStore } from '../src/stores/redis.js'
import { createSQLiteStore } from '../src/stores/sqlite.js'

const SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz'
const TIME = Number(process.env.BENCH_TIME ?? 1000)
const CONCURRENCY = 50
const REDIS_URL = process.env.TESSERA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const PG_URL = process.env.TESSERA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

interface Row {
  task: string
  opsPerSecond: number
}

/** Ops/s of `fn` run by CONCURRENCY callers at once (one sample = one round of all callers). */
async function measure(name: string, fn: () => Promise<unknown>): Promise<Row> {
  const bench = new Bench({ time: TIME, warmupTime: Math.min(300, TIME / 3) })
  bench.add(name, async () => {
    await Promise.all(Array.from({ length: CONCURRENCY }, fn))
  })
  await bench.run()
  const result = bench.tasks[0]?.result
  if (result === undefined || !('throughput' in result)) throw new Error(`${name} did not run`)
  return { task: name, opsPerSecond: Math.round(result.throughput.mean * CONCURRENCY) }
}

function print(title: string, rows: Row[], pairs: [string, string, number][] = []): void {
  console.log(`\n${title}`)
  console.table(
    rows.map((r) => ({ task: r.task, 'ops/s': r.opsPerSecond.toLocaleString('en-US') })),
  )
  for (const [ours, theirs, target] of pairs) {
    const a = rows.find((r) => r.task === ours)
    const b = rows.find((r) => r.task === theirs)
    if (a === undefined || b === undefined) continue
    console.log(
      `  ${ours} / ${theirs}: ${(a.opsPerSecond / b.opsPerSecond).toFixed(2)}x (target >= ${target}x)`,
    )
  }
}

/** A manager over `store` with 200 sessions; returns a Cookie header for one of them. */
async function population(
  store: SessionStore,
): Promise<{ manager: SessionManager; header: string }> {
  const manager = createSessionManager(store, createKeyring(SECRET))
  let cookie = ''
  for (let i = 0; i < 200; i++) {
    const issued = await manager.create(`user${i}`, { data: { role: 'member', cart: [1, 2, 3] } })
    if (i === 100) cookie = issued.setCookie.split(';')[0] as string
  }
  const header = `theme=dark; ${cookie}; lang=en`
  if ((await manager.validate(header)) === null) throw new Error('validate failed')
  return { manager, header }
}

async function redisBench(): Promise<void> {
  const prefix = `bench_${randomBytes(6).toString('hex')}:`
  const ours = createClient({ url: REDIS_URL })
  const theirs = createClient({ url: REDIS_URL })
  ours.on('error', () => undefined)
  theirs.on('error', () => undefined)
  await Promise.all([ours.connect(), theirs.connect()])
  try {
    const store = createRedisStore(ours, { prefix: `${prefix}t:` })
    const { manager, header } = await population(store)

    const connectStore = new RedisStore({ client: theirs, prefix: `${prefix}c:` })
    const sid = 'k3cG5xq0ZbV9sFh1Rz2mTj8uWe6LpY4d'
    const data = {
      cookie: {
        originalMaxAge: 604_800_000,
        httpOnly: true,
        path: '/',
        expires: new Date(Date.now() + 604_800_000),
      },
      userId: 'user100',
      role: 'member',
      cart: [1, 2, 3],
    } as unknown as SessionData
    await connectStore.set(sid, data)
    const expressHeader = `theme=dark; connect.sid=${encodeURIComponent(`s:${signature.sign(sid, SECRET)}`)}; lang=en`
    const expressValidate = async (): Promise<unknown> => {
      // What express-session does per request: parse the header, unsign "s:" values, store.get.
      const raw = parseCookie(expressHeader)['connect.sid']
      if (raw === undefined || !raw.startsWith('s:')) return null
      const unsigned = signature.unsign(raw.slice(2), SECRET)
      if (unsigned === false) return null
      return (await connectStore.get(unsigned)) as unknown
    }
    if ((await expressValidate()) === null) throw new Error('connect-redis path failed')

    const rows = [
      await measure('tessera redis validate', () => manager.validate(header)),
      await measure('connect-redis get + unsign', expressValidate),
    ]
    print(`Redis: validate a session cookie (${CONCURRENCY} concurrent callers)`, rows, [
      ['tessera redis validate', 'connect-redis get + unsign', 2],
    ])
  } finally {
    for await (const keys of ours.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await ours.del(keys)
    }
    ours.destroy()
    theirs.destroy()
  }
}

async function sqlBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-'))
  const db = new Database(join(dir, 'sessions.db'))
  const schema = `bench_${randomBytes(6).toString('hex')}`
  const pool = new pg.Pool({ connectionString: PG_URL, max: 10 })
  pool.on('error', () => undefined)
  try {
    const sqlite = await population(createSQLiteStore(db))
    const postgresStore = createPostgresStore(pool, { schema, timeout: 10 })
    await postgresStore.migrate()
    const postgres = await population(postgresStore)
    const rows = [
      await measure('tessera sqlite (file, WAL) validate', () =>
        sqlite.manager.validate(sqlite.header),
      ),
      await measure('tessera postgres validate', () => postgres.manager.validate(postgres.header)),
    ]
    print(`SQL stores: validate a session cookie (${CONCURRENCY} concurrent callers)`, rows)
  } finally {
    db.close()
    rmSync(dir, { recursive: true, force: true })
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await pool.end()
  }
}

/** Runs every store benchmark and prints a table per comparison. */
export async function run(): Promise<void> {
  console.log(`stores bench: node ${process.version}, ${TIME} ms per task`)
  await redisBench()
  await sqlBench()
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run()
}
