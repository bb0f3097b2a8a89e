import { sql, type Kysely } from 'kysely'
import { TesseraError } from '../core/errors.js'
import { toStoreUnavailable } from '../stores/unavailable.js'
import { isUniqueViolation } from './db/database.js'
import type { AsymmetricAlgorithm, KeyStatus, KeyStorage, StoredSigningKey } from './keys.js'

/** The signing-key table. Times are epoch milliseconds. */
export interface SigningKeyTable {
  kid: string
  alg: string
  status: string
  public_jwk: string
  sealed_private_key: string
  created_at: number | string | bigint
  activated_at: number | string | bigint | null
  retired_at: number | string | bigint | null
}

/** Options of {@link createKyselyKeyStorage}. */
export interface KyselyKeyStorageOptions {
  /** Table name. @default 'tessera_signing_keys' */
  table?: string
}

/** A {@link KeyStorage} over a Kysely database, with its own idempotent migration. */
export interface KyselyKeyStorage extends KeyStorage {
  /** Creates the table when it does not exist. Safe to run on every start. */
  migrate(): Promise<void>
}

type Database = Record<string, SigningKeyTable>

/**
 * Stores signing keys in a table of a Kysely database (SQLite or PostgreSQL). The private key
 * column holds only the sealed text the key set gives it.
 *
 * @example
 * ```ts
 * const storage = createKyselyKeyStorage(db)
 * await storage.migrate()
 * const keys = createKeySet({ storage, sealer })
 * ```
 */
export function createKyselyKeyStorage(
  // The caller's database type is theirs; this module only touches its own table.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  database: Kysely<any>,
  options: KyselyKeyStorageOptions = {},
): KyselyKeyStorage {
  const table = options.table ?? 'tessera_signing_keys'
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(table)) {
    throw new TesseraError('config_invalid', 'table must be a lower-case SQL identifier')
  }
  const db = database as Kysely<Database>

  async function guard<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work()
    } catch (cause) {
      throw toStoreUnavailable(cause, `signing keys: ${what} failed`)
    }
  }

  return {
    migrate: () =>
      guard('migrate', async () => {
        await createSigningKeyTable(db, table)
        await createSigningKeyIndex(db, table)
      }),
    commit: (change) =>
      guard('commit', async () => {
        const expected = new Map(change.expect.map((entry) => [entry.kid, entry.status]))
        try {
          await db.transaction().execute(async (trx) => {
            // Every statement writes (no read first), so on SQLite the transaction takes the
            // write lock at its first statement, waiting for another writer instead of failing
            // on a stale snapshot; on PostgreSQL each UPDATE waits for a concurrent one on the
            // same row and then sees its result.
            for (const [kid, status] of expected) {
              const key = change.write.find((written) => written.kid === kid)
              const result = await trx
                .updateTable(table)
                .set(
                  key === undefined
                    ? { status }
                    : {
                        status: key.status,
                        activated_at: key.activatedAt,
                        retired_at: key.retiredAt,
                      },
                )
                .where('kid', '=', kid)
                .where('status', '=', status)
                .executeTakeFirst()
              if (result.numUpdatedRows !== 1n) throw new KeysMoved()
            }
            for (const key of change.write) {
              if (expected.has(key.kid)) continue
              // SECURITY: the unique index on status (current, next) refuses a second current
              // or next key, whichever process inserts it (migration 0003).
              await trx.insertInto(table).values(toRow(key)).execute()
            }
          })
          return true
        } catch (error) {
          if (error instanceof KeysMoved || isUniqueViolation(error)) return false
          throw error
        }
      }),
    list: () =>
      guard('list', async () => {
        const rows = await db.selectFrom(table).selectAll().execute()
        return rows.map(toKey)
      }),
    put: (key) =>
      guard('put', async () => {
        await db
          .insertInto(table)
          .values(toRow(key))
          .onConflict((conflict) =>
            conflict.column('kid').doUpdateSet({
              status: sql`excluded.status`,
              activated_at: sql`excluded.activated_at`,
              retired_at: sql`excluded.retired_at`,
            }),
          )
          .execute()
      }),
    delete: (kid) =>
      guard('delete', async () => {
        await db.deleteFrom(table).where('kid', '=', kid).execute()
      }),
  }
}

/**
 * Creates the signing-key table when it does not exist: used by {@link KyselyKeyStorage.migrate}
 * and by the accounts database migration `0002_signing_keys`, so both paths make one table.
 */
export async function createSigningKeyTable(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a migration sees any schema
  db: Kysely<any>,
  table = 'tessera_signing_keys',
): Promise<void> {
  await db.schema
    .createTable(table)
    .ifNotExists()
    .addColumn('kid', 'varchar(128)', (column) => column.primaryKey())
    .addColumn('alg', 'varchar(16)', (column) => column.notNull())
    .addColumn('status', 'varchar(16)', (column) => column.notNull())
    .addColumn('public_jwk', 'text', (column) => column.notNull())
    .addColumn('sealed_private_key', 'text', (column) => column.notNull())
    .addColumn('created_at', 'bigint', (column) => column.notNull())
    .addColumn('activated_at', 'bigint')
    .addColumn('retired_at', 'bigint')
    .execute()
}

/** Thrown inside a commit's transaction when an expected key moved: rolls it back. */
class KeysMoved extends Error {}

function toRow(key: StoredSigningKey): SigningKeyTable {
  return {
    kid: key.kid,
    alg: key.alg,
    status: key.status,
    public_jwk: key.publicJwk,
    sealed_private_key: key.sealedPrivateKey,
    created_at: key.createdAt,
    activated_at: key.activatedAt,
    retired_at: key.retiredAt,
  }
}

/**
 * At most one `current` and one `next` key, enforced by the database: a unique index on `status`
 * over those two values (SQLite and PostgreSQL both have partial indexes). Keys left doubled by
 * earlier versions (two processes starting at once) are settled first: the newest `current`
 * stays, older ones become `previous` (they keep verifying until their tokens expire); extra
 * `next` keys, which never signed, are deleted. Idempotent; used by migration
 * `0003_signing_key_uniqueness` and by {@link KyselyKeyStorage.migrate}.
 */
export async function createSigningKeyIndex(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a migration sees any schema
  db: Kysely<any>,
  table = 'tessera_signing_keys',
  at: number = Date.now(),
): Promise<void> {
  const keys = db as Kysely<Database>
  const rows = await keys.selectFrom(table).selectAll().execute()
  const newestFirst = (a: SigningKeyTable, b: SigningKeyTable): number =>
    Number(b.activated_at ?? b.created_at) - Number(a.activated_at ?? a.created_at)
  const currents = rows.filter((row) => row.status === 'current').sort(newestFirst)
  for (const extra of currents.slice(1)) {
    await keys
      .updateTable(table)
      .set({ status: 'previous', retired_at: at })
      .where('kid', '=', extra.kid)
      .where('status', '=', 'current')
      .execute()
  }
  const nexts = rows.filter((row) => row.status === 'next').sort(newestFirst)
  for (const extra of nexts.slice(1)) {
    await keys.deleteFrom(table).where('kid', '=', extra.kid).where('status', '=', 'next').execute()
  }
  await sql`CREATE UNIQUE INDEX IF NOT EXISTS ${sql.id(`${table}_one_per_status`)} ON ${sql.table(table)} (status) WHERE status IN ('current', 'next')`.execute(
    db,
  )
}

function toKey(row: SigningKeyTable): StoredSigningKey {
  const time = (value: number | string | bigint | null): number | null =>
    value === null ? null : Number(value)
  return {
    kid: row.kid,
    alg: row.alg as AsymmetricAlgorithm,
    status: row.status as KeyStatus,
    publicJwk: row.public_jwk,
    sealedPrivateKey: row.sealed_private_key,
    createdAt: Number(row.created_at),
    activatedAt: time(row.activated_at),
    retiredAt: time(row.retired_at),
  }
}
