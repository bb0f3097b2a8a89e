import { createHash, randomBytes } from 'node:crypto'
import Database from 'better-sqlite3'
import pg from 'pg'
import { createClient, type RedisClientType } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SessionRecord } from '../../src/core/session-store.js'
import { createPostgresStore } from '../../src/stores/postgres.js'
import { createRedisStore, type RedisClientLike } from '../../src/stores/redis.js'
import { createSQLiteStore } from '../../src/stores/sqlite.js'
import { describeWithService, uniqueName } from '../helpers/services.js'

// Issue 18: a bearer request's live-session check is one keyed read, not a listing of the
// user's sessions. These cases count what reaches the real server with 1000 sessions.

const SESSIONS = 1000

function record(userId: string, now: number): SessionRecord {
  return {
    id: createHash('sha256').update(randomBytes(32)).digest('base64url'),
    userId,
    version: 1,
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + 3_600_000,
    absoluteExpiresAt: now + 86_400_000,
    data: {},
    meta: {},
  }
}

describeWithService('redis', 'Redis getByPublicId', (url) => {
  let client: RedisClientType
  beforeAll(async () => {
    client = createClient({ url, socket: { connectTimeout: 5000 } })
    client.on('error', () => undefined)
    await client.connect()
  })
  afterAll(() => client.destroy())

  async function dropPrefix(prefix: string): Promise<void> {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await client.del(keys)
    }
  }

  it('is two commands (the public-id hash, then the session) with 1000 sessions', async () => {
    const prefix = `${uniqueName('tessera_keyed')}:`
    const commands: string[][] = []
    const observed: RedisClientLike = {
      sendCommand: (args, options) => {
        commands.push(args)
        return client.sendCommand(args, options)
      },
    }
    try {
      const store = createRedisStore(observed, { prefix, timeout: 10 })
      const now = Date.now()
      const all = Array.from({ length: SESSIONS }, () => record('heavy', now))
      for (const one of all) await store.create(one)
      const target = all[SESSIONS - 1] as SessionRecord
      commands.length = 0
      expect(await store.getByPublicId?.('heavy', target.id.slice(0, 22))).toEqual(target)
      expect(commands.map((args) => args[0])).toEqual(['EVALSHA', 'HGET'])
      expect(commands.some((args) => args[0] === 'SMEMBERS')).toBe(false)
    } finally {
      await dropPrefix(prefix)
    }
  })

  it('finds sessions written before the public-id hash existed, then indexes them', async () => {
    const prefix = `${uniqueName('tessera_keyed')}:`
    try {
      const store = createRedisStore(client, { prefix, timeout: 10 })
      const now = Date.now()
      const old = [record('legacy', now), record('legacy', now)]
      for (const one of old) await store.create(one)
      // As an older tessera left them: the user's set, no public-id hash.
      await client.del(`${prefix}p:{legacy}`)
      const first = old[0] as SessionRecord
      expect(await store.getByPublicId?.('legacy', first.id.slice(0, 22))).toEqual(first)
      expect(await client.hLen(`${prefix}p:{legacy}`)).toBe(2)
      expect(await store.getByPublicId?.('legacy', 'A'.repeat(22))).toBeNull()
    } finally {
      await dropPrefix(prefix)
    }
  })
})

describeWithService('postgres', 'PostgreSQL getByPublicId', (url) => {
  const schema = uniqueName('tessera_keyed')
  let pool: pg.Pool
  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 5000 })
    pool.on('error', () => undefined)
    await pool.query(`CREATE SCHEMA "${schema}"`)
  })
  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await pool.end()
  })

  it('is one query that uses the public-id index, with 1000 sessions', async () => {
    const store = createPostgresStore(pool, { schema, timeout: 10 })
    await store.migrate()
    const now = Date.now()
    const all = Array.from({ length: SESSIONS }, () => record('heavy', now))
    for (const one of all) await store.create(one)
    await pool.query(`ANALYZE "${schema}".tessera_sessions`)
    const target = all[SESSIONS - 1] as SessionRecord
    const query = pool.query.bind(pool)
    let queries = 0
    pool.query = ((...args: Parameters<typeof query>) => {
      queries += 1
      return query(...args)
    }) as typeof pool.query
    try {
      expect(await store.getByPublicId?.('heavy', target.id.slice(0, 22))).toEqual(target)
      expect(queries).toBe(1)
    } finally {
      pool.query = query
    }
    const plan = await pool.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN SELECT id FROM "${schema}".tessera_sessions
        WHERE substr(id, 1, 22) = $1 AND user_id = $2 AND dies_at > $3 LIMIT 1`,
      [target.id.slice(0, 22), 'heavy', now],
    )
    expect(plan.rows.map((row) => row['QUERY PLAN']).join('\n')).toContain(
      'tessera_sessions_public_id',
    )
  })
})

describe('SQLite getByPublicId', () => {
  it('is an index search of the primary key, with 1000 sessions', async () => {
    const db = new Database(':memory:')
    try {
      const store = createSQLiteStore(db)
      const now = Date.now()
      const all = Array.from({ length: SESSIONS }, () => record('heavy', now))
      for (const one of all) await store.create(one)
      const target = all[SESSIONS - 1] as SessionRecord
      expect(await store.getByPublicId?.('heavy', target.id.slice(0, 22))).toEqual(target)
      const plan = db
        .prepare(
          `EXPLAIN QUERY PLAN SELECT id FROM tessera_sessions
            WHERE id >= ? AND id < ? AND +user_id = ? AND dies_at > ? LIMIT 1`,
        )
        .all('a', 'b', 'heavy', now) as { detail: string }[]
      expect(plan.map((row) => row.detail).join('\n')).toMatch(
        /USING INDEX sqlite_autoindex|PRIMARY KEY/,
      )
    } finally {
      db.close()
    }
  })
})
