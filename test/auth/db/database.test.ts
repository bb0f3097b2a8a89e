import { describe, expect, it } from 'vitest'
import { isTesseraError } from '../../../src/core/errors.js'
import { createAccounts, type UserWithPermissions } from '../../../src/auth/accounts.js'
import {
  createDatabase,
  directReader,
  migrateToLatest,
  parseDatabaseURL,
} from '../../../src/auth/db/database.js'
import { newId } from '../../../src/auth/db/ids.js'
import { toMillis } from '../../../src/auth/db/schema.js'
import { describeEachDatabase } from '../../helpers/databases.js'

describe('parseDatabaseURL', () => {
  it('reads sqlite and postgres URLs', () => {
    expect(parseDatabaseURL('sqlite:./data/t.db')).toEqual({
      dialect: 'sqlite',
      filename: './data/t.db',
    })
    expect(parseDatabaseURL('sqlite://tmp/t.db')).toEqual({
      dialect: 'sqlite',
      filename: 'tmp/t.db',
    })
    expect(parseDatabaseURL('sqlite::memory:')).toEqual({ dialect: 'sqlite', filename: ':memory:' })
    expect(parseDatabaseURL('postgres://u@h:5432/d')).toEqual({
      dialect: 'postgres',
      connectionString: 'postgres://u@h:5432/d',
    })
    expect(parseDatabaseURL('postgresql://h/d').dialect).toBe('postgres')
  })

  it('refuses other schemes and an empty sqlite path', () => {
    for (const url of ['mysql://h/d', 'sqlite:', 'file.db', '']) {
      let caught: unknown
      try {
        parseDatabaseURL(url)
      } catch (error) {
        caught = error
      }
      expect(isTesseraError(caught, 'config_invalid'), url).toBe(true)
    }
  })

  it('refuses a PostgreSQL schema name that is not an identifier', async () => {
    await expect(
      createDatabase({ dialect: 'postgres', connectionString: 'postgres://h/d', schema: 'a;drop' }),
    ).rejects.toMatchObject({ code: 'config_invalid' })
  })
})

describe('newId', () => {
  it('is a UUIDv7 that sorts by time', () => {
    const a = newId(1_700_000_000_000)
    const b = newId(1_700_000_000_001)
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(a < b).toBe(true)
    expect(a.slice(0, 13).replace('-', '')).toBe((1_700_000_000_000).toString(16).padStart(12, '0'))
    expect(newId(5)).not.toBe(newId(5))
  })

  it('is strictly increasing within one millisecond and when the clock steps back', () => {
    const ids = [newId(2_000_000_000_000)]
    for (let i = 0; i < 5000; i += 1) ids.push(newId(2_000_000_000_000 - (i % 3)))
    for (let i = 1; i < ids.length; i += 1) expect(ids[i]! > ids[i - 1]!).toBe(true)
  })
})

describe('toMillis', () => {
  it('reads numbers and pg int8 strings alike', () => {
    expect(toMillis(1_700_000_000_123)).toBe(1_700_000_000_123)
    expect(toMillis('1700000000123')).toBe(1_700_000_000_123)
    expect(toMillis(1_700_000_000_123n)).toBe(1_700_000_000_123)
  })
})

describeEachDatabase('migrations', (open) => {
  it('applies every migration once; a second run applies none', async () => {
    const db = await open() // already migrated by the fixture
    expect(await migrateToLatest(db)).toEqual({ applied: [] })
    const tables = (await db.introspection.getTables()).map((t) => t.name).sort()
    expect(tables).toEqual(
      expect.arrayContaining([
        'audit_events',
        'group_permissions',
        'groups',
        'password_reset_tokens',
        'permissions',
        'user_groups',
        'user_permissions',
        'users',
      ]),
    )
  })

  it('creates its migration tables in its own schema even when another schema has them', async () => {
    // Two databases at once: on PostgreSQL two schemas of the same server, each migrated.
    const first = await open()
    const second = await open()
    expect(await migrateToLatest(first)).toEqual({ applied: [] })
    expect(await second.selectFrom('users').select('id').execute()).toEqual([])
  })

  it('round-trips epoch milliseconds past 2^32 and 0/1 flags', async () => {
    const db = await open()
    const at = 4_102_444_800_123 // 2100-01-01, well past 32 bits
    await db
      .insertInto('users')
      .values({
        id: 'u1',
        email: 'a@x.io',
        password_hash: null,
        is_admin: 1,
        is_active: 0,
        created_at: at,
        last_login_at: null,
        password_changed_at: at,
      })
      .execute()
    const row = await db
      .selectFrom('users')
      .selectAll()
      .where('id', '=', 'u1')
      .executeTakeFirstOrThrow()
    expect(toMillis(row.created_at)).toBe(at)
    expect(Number(row.is_admin)).toBe(1)
    expect(Number(row.is_active)).toBe(0)
    expect(row.last_login_at).toBeNull()
  })

  it('enforces one row per normalised e-mail', async () => {
    const db = await open()
    const row = {
      email: 'a@x.io',
      password_hash: null,
      created_at: 1,
      last_login_at: null,
      password_changed_at: null,
    }
    await db
      .insertInto('users')
      .values({ id: 'u1', ...row })
      .execute()
    await expect(
      db
        .insertInto('users')
        .values({ id: 'u2', ...row })
        .execute(),
    ).rejects.toThrow()
  })
})

describe('SQLite prepared-statement reuse', () => {
  it('reuses statements yet sees every write, a schema change and more SQL texts than it keeps', async () => {
    const db = await createDatabase('sqlite::memory:')
    try {
      await migrateToLatest(db)
      const count = async (): Promise<number> =>
        Number(
          (
            await db
              .selectFrom('groups')
              .select((eb) => eb.fn.countAll().as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        )
      expect(await count()).toBe(0)
      await db.insertInto('groups').values({ id: newId(), name: 'a', created_at: 1 }).execute()
      expect(await count()).toBe(1) // the same cached statement, fresh data
      // More distinct SQL texts than the cache keeps (256): the oldest are dropped, all work.
      for (let i = 0; i < 300; i++) {
        const row = await db
          .selectFrom('groups')
          .select((eb) => eb.val(i).as(`v${i}`))
          .executeTakeFirstOrThrow()
        expect(Object.values(row)[0]).toBe(i)
      }
      expect(await count()).toBe(1)
      await db.schema.alterTable('groups').addColumn('note', 'text').execute()
      expect(await count()).toBe(1) // a cached statement survives a schema change
    } finally {
      await db.destroy()
    }
  })
})

describe('SQLite direct reads on the per-request path', () => {
  it('never see an open transaction’s uncommitted writes', async () => {
    // SECURITY: getUserWithPermissions reads SQLite directly, past Kysely's connection queue.
    // On the one shared connection that would expose a transaction's writes before it commits
    // (a grant that is rolled back, a disable not yet final); the reader must decline then.
    const db = await createDatabase('sqlite::memory:')
    try {
      await migrateToLatest(db)
      const accounts = createAccounts(db, { sessions: { revokeAll: () => Promise.resolve(0) } })
      const user = await accounts.createUser({ email: 'tx@x.io' })
      expect(directReader(db)).toBeDefined()
      let seen: UserWithPermissions | null | undefined
      let pending: Promise<unknown> | undefined
      const rollback = new Error('rollback')
      await expect(
        db.transaction().execute(async (trx) => {
          await trx
            .updateTable('users')
            .set({ is_admin: 1, is_active: 0 })
            .where('id', '=', user.id)
            .execute()
          pending = accounts.getUserWithPermissions(user.id).then((found) => (seen = found))
          await new Promise((resolve) => setTimeout(resolve, 20))
          // Still waiting for the transaction: not answered from its uncommitted state.
          expect(seen).toBeUndefined()
          throw rollback
        }),
      ).rejects.toBe(rollback)
      await pending
      expect(seen).toMatchObject({ id: user.id, isAdmin: false, isActive: true })
      // Outside a transaction the direct path answers (and sees committed writes).
      await accounts.grantPermission(user.id, 'x.y')
      expect((await accounts.getUserWithPermissions(user.id))?.permissions).toEqual(['x.y'])
    } finally {
      await db.destroy()
    }
  })
})
