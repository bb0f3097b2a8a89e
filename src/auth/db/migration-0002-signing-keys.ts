import type { Kysely, Migration } from 'kysely'
import { createSigningKeyTable } from '../kysely-key-storage.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a migration sees the schema as it was then
type AnyDB = Kysely<any>

/**
 * The JWT signing-key table (`tessera_signing_keys`) of `createKyselyKeyStorage`. Idempotent
 * (`IF NOT EXISTS`), so a database where the storage's own `migrate()` already ran takes it too.
 */
export const m0002SigningKeys: Migration = {
  async up(db: AnyDB): Promise<void> {
    await createSigningKeyTable(db)
  },
  async down(db: AnyDB): Promise<void> {
    await db.schema.dropTable('tessera_signing_keys').ifExists().execute()
  },
}
