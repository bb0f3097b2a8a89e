/**
 * Sizing per 10,000 sessions (docs/scaling.md): what the stores hold for SESSIONS sessions of
 * SESSIONS / 2 users (two devices each), each with a browser's meta (IP, a 100-character user
 * agent) and the `authTime`/`aal`/`amr` of a password sign-in, as the server writes them.
 *   - Redis: the sum of `MEMORY USAGE` over every key of a fresh prefix (sessions, user sets,
 *     public-id hashes), per session;
 *   - PostgreSQL: rows, and `pg_total_relation_size` (table, TOAST and the four indexes);
 *   - SQLite: the file's pages in use.
 *
 *   npx tsx bench/sizing.ts            (BENCH_SESSIONS=10000)
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { createClient } from 'redis'
import { createKeyring } from '../src/core/keyring.js'
import { createSessionManager } from '../src/core/session-manager.js'
import type { SessionStore } from '../src/core/session-store.js'
import { createPostgresStore } from '../src/stores/postgres.js'
import { createRedisStore } from '../src/stores/redis.js'
import { createSQLiteStore } from '../src/stores/sqlite.js'

const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 10_000)
const REDIS_URL = process.env.TESSERA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const PG_URL = process.env.TESSERA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const USER_AGENT =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36'

async function fill(store: SessionStore): Promise<void> {
  const sessions = createSessionManager(store, createKeyring(randomBytes(32).toString('base64url')))
  for (let done = 0; done < SESSIONS; done += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, SESSIONS - done) }, (_, index) =>
        sessions.create(`user-${Math.floor((done + index) / 2)}`, {
          meta: { ip: '203.0.113.77', userAgent: USER_AGENT },
          auth: { aal: 1, amr: ['pwd'] },
        }),
      ),
    )
  }
}

const redis = createClient({ url: REDIS_URL })
await redis.connect()
const prefix = `tsize_${randomBytes(6).toString('hex')}:`
try {
  await fill(createRedisStore(redis, { prefix, timeout: 10 }))
  let bytes = 0
  let keys = 0
  for await (const batch of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
    for (const key of batch) {
      bytes += Number(await redis.sendCommand(['MEMORY', 'USAGE', key, 'SAMPLES', '0']))
      keys++
    }
  }
  console.log(
    `redis: ${SESSIONS} sessions, ${keys} keys, ${(bytes / 1024 / 1024).toFixed(2)} MiB (MEMORY USAGE), ${Math.round(bytes / SESSIONS)} bytes per session`,
  )
} finally {
  for await (const batch of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
    if (batch.length > 0) await redis.del(batch)
  }
  redis.destroy()
}

const pool = new pg.Pool({ connectionString: PG_URL, max: 8 })
const schema = prefix.replace(/:$/, '')
try {
  const store = createPostgresStore(pool, { schema, timeout: 10 })
  await store.migrate()
  await fill(store)
  await pool.query(`VACUUM ANALYZE "${schema}".tessera_sessions`)
  const { rows } = await pool.query<{ n: string; total: string; heap: string }>(
    `SELECT count(*) AS n, pg_total_relation_size('"${schema}".tessera_sessions') AS total,
       pg_relation_size('"${schema}".tessera_sessions') AS heap FROM "${schema}".tessera_sessions`,
  )
  const row = rows[0]
  console.log(
    `postgres: ${row?.n} rows, ${(Number(row?.total) / 1024 / 1024).toFixed(2)} MiB with indexes (heap ${(Number(row?.heap) / 1024 / 1024).toFixed(2)} MiB), ${Math.round(Number(row?.total) / SESSIONS)} bytes per session`,
  )
} finally {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  await pool.end()
}

const dir = mkdtempSync(join(tmpdir(), 'tessera-size-'))
try {
  const db = new Database(join(dir, 'sessions.db'))
  await fill(createSQLiteStore(db))
  db.pragma('wal_checkpoint(TRUNCATE)')
  const pages = Number(db.pragma('page_count', { simple: true }))
  const free = Number(db.pragma('freelist_count', { simple: true }))
  const size = Number(db.pragma('page_size', { simple: true }))
  console.log(
    `sqlite: ${SESSIONS} rows, ${(((pages - free) * size) / 1024 / 1024).toFixed(2)} MiB in use, ${Math.round(((pages - free) * size) / SESSIONS)} bytes per session`,
  )
  db.close()
} finally {
  rmSync(dir, { recursive: true, force: true })
}
