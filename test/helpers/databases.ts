import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { describe, onTestFinished } from 'vitest'
import { createDatabase, migrateToLatest, type TesseraDB } from '../../src/auth/db/database.js'
import { describeWithService, uniqueName } from './services.js'

/** Opens a fresh, migrated accounts database for one test; closed and removed after it. */
export type OpenDatabase = () => Promise<TesseraDB>

/** A fresh SQLite file in a temp directory. */
export async function openSqlite(): Promise<TesseraDB> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-accounts-'))
  const db = await createDatabase(`sqlite:${join(dir, 'accounts.db')}`)
  onTestFinished(async () => {
    await db.destroy()
    rmSync(dir, { recursive: true, force: true })
  })
  await migrateToLatest(db)
  return db
}

/** A fresh schema on the shared PostgreSQL server, dropped after the test. */
export async function openPostgres(url: string): Promise<TesseraDB> {
  const schema = uniqueName('tessera_acct')
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  const db = await createDatabase({ dialect: 'postgres', connectionString: url, schema, max: 4 })
  onTestFinished(async () => {
    await db.destroy()
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await admin.end()
  })
  await migrateToLatest(db)
  return db
}

/**
 * Runs the same suite on SQLite and on the real PostgreSQL server (which must be there under
 * `TESSERA_REQUIRE_SERVICES=1`).
 */
export function describeEachDatabase(name: string, body: (open: OpenDatabase) => void): void {
  describe(`${name} [sqlite]`, () => body(openSqlite))
  describeWithService('postgres', `${name} [postgres]`, (url) => body(() => openPostgres(url)))
}
