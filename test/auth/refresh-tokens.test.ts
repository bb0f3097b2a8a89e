import Database from 'better-sqlite3'
import pg from 'pg'
import { createClient, type RedisClientType } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAccessTokens } from '../../src/auth/access-tokens.js'
import { createAuditLog } from '../../src/auth/audit.js'
import { createKeySet, createKeyringSealer, createMemoryKeyStorage } from '../../src/auth/keys.js'
import { createRefreshTokens } from '../../src/auth/refresh-tokens.js'
import { createMemoryStore } from '../../src/stores/memory.js'
import { createPostgresStore } from '../../src/stores/postgres.js'
import { createRedisStore } from '../../src/stores/redis.js'
import { createSQLiteStore } from '../../src/stores/sqlite.js'
import { openSqlite } from '../helpers/databases.js'
import { describeWithService, uniqueName } from '../helpers/services.js'
import { testKeyring } from '../helpers/tokens.js'
import { refreshTokenSuite } from './refresh-suite.js'

refreshTokenSuite('the memory store', (now) => {
  const store = createMemoryStore({ now })
  return Promise.resolve({
    store,
    records: () => Promise.resolve(store.size),
    close: () => store.close(),
  })
})

refreshTokenSuite('the SQLite store', (now) => {
  const db = new Database(':memory:')
  const store = createSQLiteStore(db, { now })
  return Promise.resolve({
    store,
    records: () =>
      Promise.resolve(
        (db.prepare('SELECT COUNT(*) AS n FROM tessera_sessions').get() as { n: number }).n,
      ),
    close: () => {
      db.close()
      return Promise.resolve()
    },
  })
})

describeWithService('redis', 'Redis', (url) => {
  let client: RedisClientType
  beforeAll(async () => {
    client = createClient({ url, socket: { connectTimeout: 5000 } })
    client.on('error', () => undefined)
    await client.connect()
  })
  afterAll(() => {
    client.destroy()
  })
  refreshTokenSuite('the Redis store', (now) => {
    const prefix = `${uniqueName('tessera_tokens')}:`
    const store = createRedisStore(client, { prefix, now, timeout: 10 })
    return Promise.resolve({
      store,
      records: () => store.count(),
      close: async () => {
        for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
          if (keys.length > 0) await client.del(keys)
        }
      },
    })
  })
})

describeWithService('postgres', 'PostgreSQL', (url) => {
  const schema = uniqueName('tessera_tokens')
  let pool: pg.Pool
  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: url, max: 8, connectionTimeoutMillis: 5000 })
    pool.on('error', () => undefined)
    await pool.query(`CREATE SCHEMA "${schema}"`)
  })
  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await pool.end()
  })
  refreshTokenSuite('the PostgreSQL store', async (now) => {
    const table = uniqueName('refresh')
    const store = createPostgresStore(pool, { schema, table, now, timeout: 10 })
    await store.migrate()
    return {
      store,
      records: async () =>
        Number(
          (await pool.query<{ n: string }>(`SELECT COUNT(*) AS n FROM "${schema}"."${table}"`))
            .rows[0]?.n,
        ),
      close: async () => {
        await pool.query(`DROP TABLE IF EXISTS "${schema}"."${table}"`)
      },
    }
  })
})

describe('refresh-token reuse in the audit log', () => {
  it('onReuse writes a token_reused event with the family and no token', async () => {
    const db = await openSqlite()
    const audit = createAuditLog(db)
    const keys = createKeySet({
      storage: createMemoryKeyStorage(),
      sealer: createKeyringSealer(testKeyring()),
    })
    await keys.load()
    const refresh = createRefreshTokens({
      store: createMemoryStore(),
      accessTokens: createAccessTokens({ keys, issuer: 'https://auth.test', audience: 'api' }),
      onReuse: (event) =>
        audit.record({
          type: 'token_reused',
          outcome: 'denied',
          userId: event.userId,
          ip: event.meta.ip,
          detail: { familyId: event.familyId },
        }),
    })
    const pair = await refresh.issue('user-1')
    await refresh.refresh(pair.refreshToken)
    const reused = await refresh.refresh(pair.refreshToken, { meta: { ip: '203.0.113.9' } })
    expect(reused).toMatchObject({ code: 'token_reused' })
    const events = await audit.list({ type: 'token_reused' })
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({
      userId: 'user-1',
      outcome: 'denied',
      ip: '203.0.113.9',
      detail: { familyId: pair.familyId },
    })
    expect(JSON.stringify(events)).not.toContain(pair.refreshToken)
  })
})
