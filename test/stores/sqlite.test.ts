import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { isTesseraError } from '../../src/core/errors.js'
import { createSQLiteStore } from '../../src/stores/sqlite.js'
import { describeStoreConformance } from '../../src/testing/store-conformance.js'

describeStoreConformance('SQLite store (file, WAL)', ({ now }) => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-sqlite-'))
  const db = new Database(join(dir, 'sessions.db'))
  const store = createSQLiteStore(db, { now })
  return {
    store,
    purgeExpired: () => store.purgeExpired(),
    cleanup: () => {
      db.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
})

describeStoreConformance('SQLite store (:memory:, custom table)', ({ now }) => {
  const db = new Database(':memory:')
  const store = createSQLiteStore(db, { now, table: 'my_sessions' })
  return {
    store,
    purgeExpired: () => store.purgeExpired(),
    cleanup: () => {
      db.close()
    },
  }
})

describe('SQLite store specifics', () => {
  it('uses WAL, creates the table with its indexes, and reuses an existing table', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-sqlite-'))
    try {
      const file = join(dir, 'sessions.db')
      const db = new Database(file)
      const store = createSQLiteStore(db)
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
      const indexes = db
        .prepare(
          `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tessera_sessions'`,
        )
        .all()
        .map((row) => (row as { name: string }).name)
      expect(indexes).toEqual(
        expect.arrayContaining(['tessera_sessions_user_id', 'tessera_sessions_dies_at']),
      )
      const t = Date.now()
      const record = {
        id: 'abc',
        userId: 'u',
        version: 1,
        createdAt: t,
        lastSeenAt: t,
        expiresAt: t + 1000,
        absoluteExpiresAt: t + 2000,
        data: { a: 1 },
        meta: {},
      }
      await store.create(record)
      db.close()

      // A second process (here: a second connection) finds the table and the row.
      const again = new Database(file)
      expect(await createSQLiteStore(again).get('abc')).toEqual(record)
      again.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('purgeExpired removes exactly the dead rows and reports how many', async () => {
    let clock = 1_700_000_000_000
    const db = new Database(':memory:')
    const store = createSQLiteStore(db, { now: () => clock })
    const base = {
      userId: 'u',
      version: 1,
      createdAt: clock,
      lastSeenAt: clock,
      data: {},
      meta: {},
    }
    await store.create({
      ...base,
      id: 'idle',
      expiresAt: clock + 10,
      absoluteExpiresAt: clock + 100,
    })
    await store.create({
      ...base,
      id: 'abs',
      expiresAt: clock + 100,
      absoluteExpiresAt: clock + 20,
    })
    await store.create({
      ...base,
      id: 'live',
      expiresAt: clock + 100,
      absoluteExpiresAt: clock + 100,
    })
    clock += 20
    expect(await store.purgeExpired()).toBe(2)
    expect(await store.get('idle')).toBeNull()
    expect(await store.get('abs')).toBeNull()
    expect(await store.get('live')).not.toBeNull()
    expect(await store.purgeExpired()).toBe(0)
    db.close()
  })

  it('refuses a table name that is not a plain identifier', () => {
    const db = new Database(':memory:')
    expect(() => createSQLiteStore(db, { table: 'x"; DROP TABLE y; --' })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    )
    db.close()
  })

  it('refuses an update whose version does not move forward by one', async () => {
    const db = new Database(':memory:')
    const store = createSQLiteStore(db)
    const t = Date.now()
    const record = {
      id: 'v',
      userId: null,
      version: 1,
      createdAt: t,
      lastSeenAt: t,
      expiresAt: t + 1000,
      absoluteExpiresAt: t + 1000,
      data: {},
      meta: {},
    }
    await store.create(record)
    await expect(store.update(record, 1)).rejects.toMatchObject({ code: 'invalid_argument' })
    db.close()
  })

  it('a closed database throws store_unavailable, never null', async () => {
    const db = new Database(':memory:')
    const store = createSQLiteStore(db)
    db.close()
    const error: unknown = await store.get('x').catch((caught: unknown) => caught)
    expect(isTesseraError(error, 'store_unavailable')).toBe(true)
    await expect(store.deleteByUser('u')).rejects.toMatchObject({ code: 'store_unavailable' })
  })
})
