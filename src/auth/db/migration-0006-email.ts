import type { Kysely, Migration } from 'kysely'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a migration sees the schema as it was then
type AnyDB = Kysely<any>

/**
 * E-mail verification, address change and sign-in codes (issue 16): `users.email_verified_at`
 * and the `email_tokens` table of mailed secrets (hashes only). Portable types, as 0001.
 */
export const m0006Email: Migration = {
  async up(db: AnyDB): Promise<void> {
    await db.schema.alterTable('users').addColumn('email_verified_at', 'bigint').execute()
    await db.schema
      .createTable('email_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('token_hash', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('purpose', 'text', (c) => c.notNull())
      .addColumn('email', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('used_at', 'bigint')
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .execute()
    await db.schema
      .createIndex('email_tokens_hash_idx')
      .on('email_tokens')
      .column('token_hash')
      .execute()
    await db.schema
      .createIndex('email_tokens_user_idx')
      .on('email_tokens')
      .columns(['user_id', 'purpose'])
      .execute()
  },
  async down(db: AnyDB): Promise<void> {
    await db.schema.dropTable('email_tokens').ifExists().execute()
    await db.schema.alterTable('users').dropColumn('email_verified_at').execute()
  },
}
