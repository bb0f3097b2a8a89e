/**
 * Cost as the data grows (issue 18): one user holding many sessions, in a store holding many
 * more. For each store, the two authenticated reads of a request, timed one after another:
 *   - cookie: `validateCookie` (HMAC, then one `get` by the stored id);
 *   - bearer live-session check: `getById(sub, sid)` (one keyed read, `getByPublicId`), beside
 *     the listing it replaces (`list(sub).find(sid)`, what a bearer request cost before).
 * First with the user's one session in an empty store, then with USER sessions for the user
 * and TOTAL sessions in the store. "keyed" should stay flat; "listing" grows with USER.
 *
 *   npx tsx bench/scale.bench.ts          (BENCH_USER=1000 BENCH_TOTAL=20000 BENCH_CALLS=2000)
 *   BENCH_TOTAL=1000000 npx tsx bench/scale.bench.ts   (the million; minutes to fill)
 *
 * Redis and PostgreSQL come from TESSERA_TEST_REDIS_URL / TESSERA_TEST_PG_URL (defaults: the
 * local servers), under a unique key prefix and schema removed afterwards.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import Database from 'better-sqlite3'
import pg from 'pg'
import { createClient } from 'redis'
import { createKeyring } from '../src/core/keyring.js'
import { createSessionManager, type SessionManager } from '../src/core/session-manager.js'
import type { SessionRecord, SessionStore } from '../src/core/session-store.js'
import { createPostgresStore } from '../src/stores/postgres.js'
import { createRedisStore } from '../src/stores/redis.js'
import { createSQLiteStore } from '../src/stores/sqlite.js'

const USER = Number(process.env.BENCH_USER ?? 1000)
const TOTAL = Number(process.env.BENCH_TOTAL ?? 20_000)
const CALLS = Number(process.env.BENCH_CALLS ?? 2000)
const REDIS_URL = process.env.TESSERA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const PG_URL = process.env.TESSERA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const keyring = createKeyring('bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz')

function record(userId: string, now: number): SessionRecord {
  return {
    id: createHash('sha256').update(randomBytes(32)).digest('base64url'),
    userId,
    version: 1,
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + 7 * 86_400_000,
    absoluteExpiresAt: now + 30 * 86_400_000,
    data: {},
    meta: { ip: '203.0.113.9', userAgent: 'Mozilla/5.0 (X11; Linux x86_64) bench' },
  }
}

/** Microseconds per call of `fn`, `CALLS` calls one after another. */
async function perCall(fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(200, CALLS); i++) await fn() // warm-up
  const started = performance.now()
  for (let i = 0; i < CALLS; i++) await fn()
  return ((performance.now() - started) * 1000) / CALLS
}

async function fill(store: SessionStore, userId: string, count: number): Promise<void> {
  const now = Date.now()
  for (let done = 0; done < count; done += 100) {
    const batch = Math.min(100, count - done)
    await Promise.all(Array.from({ length: batch }, () => store.create(record(userId, now))))
  }
}

interface Row {
  store: string
  data: string
  'cookie µs': string
  'bearer keyed µs': string
  'bearer listing µs': string
}

async function measureStore(name: string, store: SessionStore): Promise<Row[]> {
  const sessions: SessionManager = createSessionManager(store, keyring)
  const issued = await sessions.create('bench-user')
  const cookie = issued.setCookie.split(';')[0]?.split('=').slice(1).join('=') ?? ''
  const sid = issued.session.id
  const rows: Row[] = []
  const round = async (data: string): Promise<void> => {
    const cookieUs = await perCall(() => sessions.validateCookie(cookie))
    const keyedUs = await perCall(() => sessions.getById('bench-user', sid))
    // The listing is USER times slower: fewer calls keep the run short.
    const listingCalls = Math.max(20, Math.round(CALLS / Math.max(1, USER / 20)))
    const started = performance.now()
    for (let i = 0; i < listingCalls; i++) {
      const found = (await sessions.list('bench-user')).find((s) => s.id === sid)
      if (found === undefined) throw new Error('lost the session')
    }
    const listingUs = ((performance.now() - started) * 1000) / listingCalls
    if ((await sessions.getById('bench-user', sid)) === null) throw new Error('keyed read missed')
    rows.push({
      store: name,
      data,
      'cookie µs': cookieUs.toFixed(1),
      'bearer keyed µs': keyedUs.toFixed(1),
      'bearer listing µs': listingUs.toFixed(1),
    })
  }
  await round('1 session')
  await fill(store, 'bench-user', USER - 1)
  await fill(store, 'someone-else', Math.max(0, TOTAL - USER))
  await round(`user ${USER}, store ${TOTAL}`)
  return rows
}

export async function run(): Promise<void> {
  console.log(
    `scale: user sessions ${USER}, store sessions ${TOTAL}, ${CALLS} calls each; load ${loadavg()[0]?.toFixed(2)} before`,
  )
  const rows: Row[] = []

  const dir = mkdtempSync(join(tmpdir(), 'tessera-scale-'))
  const sqlite = new Database(join(dir, 'sessions.db'))
  try {
    rows.push(...(await measureStore('sqlite', createSQLiteStore(sqlite))))
  } finally {
    sqlite.close()
    rmSync(dir, { recursive: true, force: true })
  }

  const redis = createClient({ url: REDIS_URL })
  await redis.connect()
  const prefix = `tscale_${randomBytes(6).toString('hex')}:`
  try {
    rows.push(...(await measureStore('redis', createRedisStore(redis, { prefix, timeout: 10 }))))
  } finally {
    for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await redis.del(keys)
    }
    redis.destroy()
  }

  const pool = new pg.Pool({ connectionString: PG_URL, max: 8 })
  const schema = `tscale_${randomBytes(6).toString('hex')}`
  try {
    const store = createPostgresStore(pool, { schema, timeout: 10 })
    await store.migrate()
    rows.push(...(await measureStore('postgres', store)))
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await pool.end()
  }

  console.table(rows)
  console.log(`load ${loadavg()[0]?.toFixed(2)} after`)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await run()
