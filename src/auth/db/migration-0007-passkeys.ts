import type { Kysely, Migration } from 'kysely'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a migration sees the schema as it was then
type AnyDB = Kysely<any>

/**
 * The `passkeys` table: the WebAuthn credentials of each user (docs/passkeys.md). One row per
 * credential; `credential_id` (base64url, as the browser sends it) is unique across all users,
 * so an assertion names exactly one account. Portable types as in 0001: times are `bigint`
 * epoch ms, flags `integer` 0/1, lists JSON `text`.
 */
export const m0007Passkeys: Migration = {
  async up(db: AnyDB): Promise<void> {
    await db.schema
      .createTable('passkeys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('credential_id', 'text', (c) => c.notNull().unique())
      .addColumn('public_key', 'text', (c) => c.notNull())
      .addColumn('counter', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('transports', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('device_type', 'text', (c) => c.notNull())
      .addColumn('backed_up', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('aaguid', 'text')
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('last_used_at', 'bigint')
      .execute()
    await db.schema
      .createIndex('passkeys_user_idx')
      .on('passkeys')
      .columns(['user_id', 'created_at'])
      .execute()
  },
  async down(db: AnyDB): Promise<void> {
    await db.schema.dropTable('passkeys').ifExists().execute()
  },
}
