import type { Kysely, Migration } from 'kysely'

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a migration sees the schema as it was then
type AnyDB = Kysely<any>

/**
 * Second factors (issue 13): TOTP authenticators, recovery codes and the sign-in challenges of
 * the second step. They live in the accounts database on every deployment (with Redis too), so
 * their compare-and-set updates are SQL's: one conditional UPDATE, on SQLite and PostgreSQL.
 */
export const m0004MFA: Migration = {
  async up(db: AnyDB): Promise<void> {
    // One authenticator per user: a pending enrolment (confirmed_at null) or an active one.
    await db.schema
      .createTable('mfa_totp')
      .addColumn('user_id', 'text', (c) =>
        c.primaryKey().references('users.id').onDelete('cascade'),
      )
      .addColumn('secret_sealed', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('confirmed_at', 'bigint')
      .addColumn('last_step', 'bigint')
      .execute()

    await db.schema
      .createTable('mfa_recovery_codes')
      .addColumn('code_hash', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('used_at', 'bigint')
      .execute()
    await db.schema
      .createIndex('mfa_recovery_codes_user_idx')
      .on('mfa_recovery_codes')
      .column('user_id')
      .execute()

    await db.schema
      .createTable('mfa_challenges')
      .addColumn('id_hash', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('purpose', 'text', (c) => c.notNull())
      .addColumn('continuation', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('claimed_at', 'bigint')
      .addColumn('used_at', 'bigint')
      .execute()
    await db.schema
      .createIndex('mfa_challenges_expires_idx')
      .on('mfa_challenges')
      .column('expires_at')
      .execute()
  },
  async down(db: AnyDB): Promise<void> {
    for (const table of ['mfa_challenges', 'mfa_recovery_codes', 'mfa_totp']) {
      await db.schema.dropTable(table).ifExists().execute()
    }
  },
}
