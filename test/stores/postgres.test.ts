import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPostgresStore, isPostgresUnavailable } from '../../src/stores/postgres.js'
import { describeStoreConformance } from '../../src/testing/store-conformance.js'
import { describeWithService, uniqueName } from '../helpers/services.js'

describeWithService('postgres', 'PostgreSQL store', (url) => {
  const schema = uniqueName('tessera_stores')
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

  describeStoreConformance('PostgreSQL store', async ({ now }) => {
    const table = uniqueName('sessions')
    // A generous call timeout: the shared server is busy with other suites.
    const store = createPostgresStore(pool, { schema, table, now, timeout: 10 })
    await store.migrate()
    return {
      store,
      purgeExpired: () => store.purgeExpired(),
      cleanup: async () => {
        await pool.query(`DROP TABLE IF EXISTS "${schema}"."${table}"`)
      },
    }
  })

  describe('PostgreSQL store specifics', () => {
    it('migrate creates the schema, table and indexes, and can run again concurrently', async () => {
      const ownSchema = uniqueName('tessera_migrate')
      try {
        const store = createPostgresStore(pool, { schema: ownSchema, timeout: 10 })
        await Promise.all([store.migrate(), store.migrate(), store.migrate()])
        await store.migrate()
        const { rows } = await pool.query<{ indexname: string }>(
          'SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = $2',
          [ownSchema, 'tessera_sessions'],
        )
        expect(rows.map((row) => row.indexname).sort()).toEqual([
          'tessera_sessions_dies_at',
          'tessera_sessions_pkey',
          'tessera_sessions_public_id',
          'tessera_sessions_user_id',
        ])
      } finally {
        await pool.query(`DROP SCHEMA IF EXISTS "${ownSchema}" CASCADE`)
      }
    })

    it('a query against a missing table is a bug and stays a plain driver error', async () => {
      const store = createPostgresStore(pool, { schema, table: uniqueName('never_migrated') })
      const error: unknown = await store.get('x').catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(Error)
      expect((error as { code?: string }).code).toBe('42P01')
      expect(isPostgresUnavailable(error)).toBe(false)
    })

    it('refuses table and schema names that are not plain identifiers', () => {
      expect(() => createPostgresStore(pool, { table: 'a"b' })).toThrow(
        expect.objectContaining({ code: 'config_invalid' }),
      )
      expect(() => createPostgresStore(pool, { schema: 'public; DROP' })).toThrow(
        expect.objectContaining({ code: 'config_invalid' }),
      )
      expect(() => createPostgresStore(pool, { timeout: 0 })).toThrow(
        expect.objectContaining({ code: 'config_invalid' }),
      )
    })

    it('refuses to create a record whose id PostgreSQL cannot store', async () => {
      const store = createPostgresStore(pool, { schema, table: 'unused' })
      const t = Date.now()
      await expect(
        store.create({
          id: 'a\u0000b',
          userId: null,
          version: 1,
          createdAt: t,
          lastSeenAt: t,
          expiresAt: t,
          absoluteExpiresAt: t,
          data: {},
          meta: {},
        }),
      ).rejects.toMatchObject({ code: 'invalid_argument' })
    })
  })
})
