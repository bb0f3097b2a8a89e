import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { createDatabase } from '../../src/auth/db/database.js'
import { TesseraError } from '../../src/core/errors.js'
import { isDatabaseUnavailable, toStoreUnavailable } from '../../src/stores/unavailable.js'

function coded(code: string, message = 'driver error'): Error {
  return Object.assign(new Error(message), { code })
}

describe('the one database unavailability rule', () => {
  it.each([
    ['a refused connection', coded('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432')],
    [
      'an admin shutdown (57P01)',
      coded('57P01', 'terminating connection due to administrator command'),
    ],
    ['a server shutting down (57P03)', coded('57P03', 'the database system is shutting down')],
    ['a server starting up (57P03)', coded('57P03', 'the database system is starting up')],
    ['a pool timeout', new Error('timeout exceeded when trying to connect')],
    ['a terminated connection', new Error('Connection terminated unexpectedly')],
    ['a query timeout', new Error('Query read timeout')],
    ['too many connections (53300)', coded('53300', 'sorry, too many clients already')],
    ['a connect to every address failing', new AggregateError([coded('ECONNREFUSED')], '')],
    ['a busy SQLite file', coded('SQLITE_BUSY', 'database is locked')],
    ['a full disk under SQLite', coded('SQLITE_FULL', 'database or disk is full')],
  ])('%s is store_unavailable', (_what, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true)
    const mapped = toStoreUnavailable(error, 'accounts')
    expect(mapped).toBeInstanceOf(TesseraError)
    expect(mapped).toMatchObject({ code: 'store_unavailable', cause: error })
  })

  it.each([
    ['a unique violation', coded('23505', 'duplicate key value')],
    ['a missing table', coded('42P01', 'relation "users" does not exist')],
    ['a syntax error', coded('42601', 'syntax error')],
    ['a SQLite constraint', coded('SQLITE_CONSTRAINT_UNIQUE', 'UNIQUE constraint failed')],
    ['a bug', new TypeError('x is not a function')],
  ])('%s is left as it is', (_what, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false)
    expect(toStoreUnavailable(error, 'accounts')).toBe(error)
  })

  it('every Kysely query of the accounts layer goes through it (a closed SQLite database)', async () => {
    const sqlite = new Database(':memory:')
    const db = await createDatabase({ dialect: 'sqlite', database: sqlite })
    sqlite.close()
    await expect(db.selectFrom('users').selectAll().execute()).rejects.toMatchObject({
      code: 'store_unavailable',
    })
    await expect(
      db.transaction().execute((trx) => trx.selectFrom('users').selectAll().execute()),
    ).rejects.toMatchObject({ code: 'store_unavailable' })
  })

  it('a refused PostgreSQL connection reaches the accounts layer as store_unavailable', async () => {
    const db = await createDatabase('postgres://postgres@127.0.0.1:1/none')
    try {
      await expect(db.selectFrom('users').selectAll().execute()).rejects.toMatchObject({
        code: 'store_unavailable',
      })
    } finally {
      await db.destroy()
    }
  })
})
