import type { Kysely, Migration, MigrationProvider } from 'kysely'
import { m0002SigningKeys } from './migration-0002-signing-keys.js'
import { m0003SigningKeyUniqueness } from './migration-0003-signing-key-uniqueness.js'
import { m0005Identities } from './migration-0005-identities.js'

/*
 * Versioned migrations, kept in code (not read from files at run time) so they ship inside the
 * package and run the same from `tessera migrate`, the server and the tests. Names sort in
 * order; a migration is never edited after release, only followed by a new one.
 *
 * Portable types only, so one migration serves SQLite and PostgreSQL:
 * - times are `bigint` epoch milliseconds (SQLite INTEGER affinity; pg int8),
 * - booleans are `integer` 0/1,
 * - ids are `text` (UUIDv7), JSON is `text`.
 */

// Kysely's migration API is untyped on purpose: a migration sees the schema as it was then.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDB = Kysely<any>

const m0001: Migration = {
  async up(db: AnyDB): Promise<void> {
    await db.schema
      .createTable('users')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('email', 'text', (c) => c.notNull().unique())
      .addColumn('password_hash', 'text')
      .addColumn('is_admin', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('is_active', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('last_login_at', 'bigint')
      .addColumn('password_changed_at', 'bigint')
      .execute()
    await db.schema.createIndex('users_created_at_idx').on('users').column('created_at').execute()

    await db.schema
      .createTable('groups')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute()

    await db.schema
      .createTable('permissions')
      .addColumn('codename', 'text', (c) => c.primaryKey())
      .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute()

    await db.schema
      .createTable('user_groups')
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('group_id', 'text', (c) => c.notNull().references('groups.id').onDelete('cascade'))
      .addPrimaryKeyConstraint('user_groups_pk', ['user_id', 'group_id'])
      .execute()
    await db.schema
      .createIndex('user_groups_group_idx')
      .on('user_groups')
      .column('group_id')
      .execute()

    await db.schema
      .createTable('group_permissions')
      .addColumn('group_id', 'text', (c) => c.notNull().references('groups.id').onDelete('cascade'))
      .addColumn('codename', 'text', (c) =>
        c.notNull().references('permissions.codename').onDelete('cascade'),
      )
      .addPrimaryKeyConstraint('group_permissions_pk', ['group_id', 'codename'])
      .execute()

    await db.schema
      .createTable('user_permissions')
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('codename', 'text', (c) =>
        c.notNull().references('permissions.codename').onDelete('cascade'),
      )
      .addPrimaryKeyConstraint('user_permissions_pk', ['user_id', 'codename'])
      .execute()

    await db.schema
      .createTable('password_reset_tokens')
      .addColumn('token_hash', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('used_at', 'bigint')
      .execute()
    await db.schema
      .createIndex('password_reset_tokens_user_idx')
      .on('password_reset_tokens')
      .column('user_id')
      .execute()

    await db.schema
      .createTable('audit_events')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text')
      .addColumn('ip', 'text')
      .addColumn('user_agent', 'text')
      .addColumn('outcome', 'text', (c) => c.notNull())
      .addColumn('detail', 'text')
      .execute()
    await db.schema
      .createIndex('audit_events_at_idx')
      .on('audit_events')
      .columns(['at', 'id'])
      .execute()
    await db.schema
      .createIndex('audit_events_user_idx')
      .on('audit_events')
      .columns(['user_id', 'at', 'id'])
      .execute()
    await db.schema
      .createIndex('audit_events_type_idx')
      .on('audit_events')
      .columns(['type', 'at', 'id'])
      .execute()
  },
  async down(db: AnyDB): Promise<void> {
    for (const table of [
      'audit_events',
      'password_reset_tokens',
      'user_permissions',
      'group_permissions',
      'user_groups',
      'permissions',
      'groups',
      'users',
    ]) {
      await db.schema.dropTable(table).ifExists().execute()
    }
  },
}

/** Every migration by name, oldest first. */
export const MIGRATIONS: Readonly<Record<string, Migration>> = Object.freeze({
  '0001_accounts': m0001,
  '0002_signing_keys': m0002SigningKeys,
  '0003_signing_key_uniqueness': m0003SigningKeyUniqueness,
  '0005_identities': m0005Identities,
})

/** The in-code {@link MigrationProvider} for Kysely's `Migrator`. */
export const migrationProvider: MigrationProvider = {
  getMigrations(): Promise<Record<string, Migration>> {
    return Promise.resolve({ ...MIGRATIONS })
  },
}
