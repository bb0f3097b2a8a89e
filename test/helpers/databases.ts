import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { describe, onTestFinished } from 'vitest'
import { createDatabase, migrateToLatest, type TesseraDB } from '../../src/auth/db/database.js'
import { describeWithService, uniqueName } from './services.js'

/**
 * Opens a fresh, migrated accounts database for one test, closed and removed after it. With
 * `connections: 2` it returns two independent handles (two SQLite connections to one file, two
 * pg pools on one schema), as two processes would have.
 */
export interface OpenDatabase {
  (): Promise<TesseraDB>
  pair(): Promise<[TesseraDB, TesseraDB]>
  /** `count` independent handles on one fresh database. */
  many(count: number): Promise<TesseraDB[]>
}

async function sqliteHandles(count: number): Promise<TesseraDB[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-accounts-'))
  const file = join(dir, 'accounts.db')
  const dbs: TesseraDB[] = []
  onTestFinished(async () => {
    for (const db of dbs) await db.destroy()
    rmSync(dir, { recursive: true, force: true })
  })
  for (let i = 0; i < count; i += 1) dbs.push(await createDatabase(`sqlite:${file}`))
  await migrateToLatest(dbs[0] as TesseraDB)
  return dbs
}

async function postgresHandles(url: string, count: number): Promise<TesseraDB[]> {
  const schema = uniqueName('tessera_acct')
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  const dbs: TesseraDB[] = []
  onTestFinished(async () => {
    for (const db of dbs) await db.destroy()
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await admin.end()
  })
  for (let i = 0; i < count; i += 1) {
    dbs.push(await createDatabase({ dialect: 'postgres', connectionString: url, schema, max: 4 }))
  }
  await migrateToLatest(dbs[0] as TesseraDB)
  return dbs
}

function opener(handles: (count: number) => Promise<TesseraDB[]>): OpenDatabase {
  const open = async (): Promise<TesseraDB> => (await handles(1))[0] as TesseraDB
  open.pair = async (): Promise<[TesseraDB, TesseraDB]> => {
    const [a, b] = await handles(2)
    return [a as TesseraDB, b as TesseraDB]
  }
  open.many = handles
  return open
}

/** A fresh SQLite file in a temp directory. */
export const openSqlite: OpenDatabase = opener(sqliteHandles)

/** A fresh schema on the shared PostgreSQL server, dropped after the test. */
export function openPostgres(url: string): OpenDatabase {
  return opener((count) => postgresHandles(url, count))
}

/**
 * Runs the same suite on SQLite and on the real PostgreSQL server (which must be there under
 * `TESSERA_REQUIRE_SERVICES=1`).
 */
export function describeEachDatabase(name: string, body: (open: OpenDatabase) => void): void {
  describe(`${name} [sqlite]`, () => body(openSqlite))
  describeWithService('postgres', `${name} [postgres]`, (url) => body(openPostgres(url)))
}
