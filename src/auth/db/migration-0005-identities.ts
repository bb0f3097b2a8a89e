import type { Kysely, Migration } from 'kysely'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a migration sees the schema as it was then
type AnyDB = Kysely<any>

/**
 * The `identities` table: an account's sign-ins at identity providers (OpenID Connect, GitHub).
 * One row per (provider, subject): the pair is the identity, unique across accounts, so one
 * provider account can never sign in to two tessera accounts. The e-mail the provider gave is
 * kept for display and audit only; it never decides which account an identity belongs to.
 */
export const m0005Identities: Migration = {
  async up(db: AnyDB): Promise<void> {
    await db.schema
      .createTable('identities')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('provider', 'text', (c) => c.notNull())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('email', 'text')
      .addColumn('email_verified', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('last_used_at', 'bigint')
      .addUniqueConstraint('identities_provider_subject_key', ['provider', 'subject'])
      .execute()
    await db.schema.createIndex('identities_user_idx').on('identities').column('user_id').execute()
  },
  async down(db: AnyDB): Promise<void> {
    await db.schema.dropTable('identities').ifExists().execute()
  },
}
