import { sql, type Kysely, type Migration } from 'kysely'
import { createSigningKeyIndex } from '../kysely-key-storage.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a migration sees the schema as it was then
type AnyDB = Kysely<any>

/**
 * One current and one next signing key, enforced by the database (issue 12): a unique index on
 * `tessera_signing_keys.status` over `current` and `next`, after settling keys doubled by
 * processes that started at once on an empty database before this version.
 */
export const m0003SigningKeyUniqueness: Migration = {
  async up(db: AnyDB): Promise<void> {
    await createSigningKeyIndex(db)
  },
  async down(db: AnyDB): Promise<void> {
    await sql`DROP INDEX IF EXISTS tessera_signing_keys_one_per_status`.execute(db)
  },
}
