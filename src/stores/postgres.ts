import { createHash } from 'node:crypto'
import type { Pool, QueryResultRow } from 'pg'
import { TesseraError } from '../core/errors.js'
import { PUBLIC_ID_LENGTH } from '../core/session-store.js'
import type { SessionRecord, SessionStore } from '../core/session-store.js'
import { timeoutMs, withDeadline } from './deadline.js'
import { toStoreUnavailable } from './unavailable.js'
import {
  checkIdentifier,
  checkRecord,
  recordColumns,
  rowToRecord,
  type SessionRow,
} from './record-codec.js'

/** Options of {@link createPostgresStore}. */
export interface PostgresStoreOptions {
  /** Table of the sessions. Plain identifier only. @default 'tessera_sessions' */
  table?: string
  /**
   * Schema of the table; `migrate()` creates it when missing. Plain identifier only.
   * @default the connection's `search_path` (usually `public`)
   */
  schema?: string
  /** Clock in epoch milliseconds, for `listByUser` and `purgeExpired`. @default Date.now */
  now?: () => number
  /**
   * Seconds one store call may take, waiting for a pooled connection included, before it
   * rejects with `store_unavailable`. Set the pool's own `connectionTimeoutMillis` too, so the
   * pool stops waiting as well. @default 1
   */
  timeout?: number
}

/** The PostgreSQL session store: a {@link SessionStore} plus its migration and a purge. */
export interface PostgresStore extends SessionStore {
  /**
   * Creates the schema (when one is configured), the table and its indexes when missing. Safe to
   * run from several processes at once (it takes an advisory lock) and on every start.
   */
  migrate(): Promise<void>
  /**
   * Deletes every row past `min(expiresAt, absoluteExpiresAt)` at the store's clock; returns how
   * many. Run it now and then; nothing else removes expired rows.
   */
  purgeExpired(): Promise<number>
}

/**
 * A session store in PostgreSQL over a `pg` Pool the caller created (and ends).
 *
 * Call `await store.migrate()` once at start. Compare-and-set is one
 * `UPDATE … WHERE id = $1 AND version = $2`; statements are named, so each pooled connection
 * prepares them once. `data` and `meta` are kept as JSON text (not `jsonb`, which refuses `\u0000`
 * and reorders keys): the store does not interpret them.
 *
 * Errors that mean the server cannot be reached (refused or reset connections, a pool or call
 * timeout, a server shutting down) become `TesseraError('store_unavailable')` with the driver's
 * error as `cause`; any other error (a bug in a query, a missing table) is thrown as it is.
 *
 * @throws TesseraError `config_invalid` for a table or schema that is not a plain identifier or
 * a timeout that is not a positive number.
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { createPostgresStore } from 'tessera-auth/stores/postgres'
 *
 * const pool = new pg.Pool({
 *   connectionString: process.env.DATABASE_URL,
 *   connectionTimeoutMillis: 1000, // give up on a connection after 1 s
 *   query_timeout: 1000, // and on a query after 1 s
 * })
 * pool.on('error', (error) => console.error('idle PostgreSQL client failed', error))
 * const store = createPostgresStore(pool)
 * await store.migrate()
 * ```
 */
export function createPostgresStore(pool: Pool, options: PostgresStoreOptions = {}): PostgresStore {
  const table = checkIdentifier(
    'createPostgresStore options.table',
    options.table ?? 'tessera_sessions',
  )
  const schema =
    options.schema === undefined
      ? undefined
      : checkIdentifier('createPostgresStore options.schema', options.schema)
  const now = options.now ?? Date.now
  const deadline = timeoutMs('createPostgresStore options.timeout', options.timeout ?? 1)
  const qualified = schema === undefined ? `"${table}"` : `"${schema}"."${table}"`
  // Statement names are per connection; the digest keeps two stores on one pool apart.
  const tag = createHash('sha256').update(qualified).digest('hex').slice(0, 12)
  const columns =
    'id, user_id, version, created_at, last_seen_at, expires_at, absolute_expires_at, data, meta'

  const sql = {
    get: `SELECT ${columns} FROM ${qualified} WHERE id = $1`,
    insert: `INSERT INTO ${qualified} (${columns}, dies_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
      ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, version = EXCLUDED.version,
        created_at = EXCLUDED.created_at, last_seen_at = EXCLUDED.last_seen_at,
        expires_at = EXCLUDED.expires_at, absolute_expires_at = EXCLUDED.absolute_expires_at,
        data = EXCLUDED.data, meta = EXCLUDED.meta, dies_at = EXCLUDED.dies_at`,
    update: `UPDATE ${qualified} SET user_id = $1, version = $2, created_at = $3, last_seen_at = $4,
        expires_at = $5, absolute_expires_at = $6, data = $7, meta = $8, dies_at = $9
      WHERE id = $10 AND version = $11`,
    delete: `DELETE FROM ${qualified} WHERE id = $1`,
    listByUser: `SELECT ${columns} FROM ${qualified} WHERE user_id = $1 AND dies_at > $2`,
    // The expression of the "<table>_public_id" index: an equality, so whatever the collation.
    getByPublicId: `SELECT ${columns} FROM ${qualified}
      WHERE substr(id, 1, ${PUBLIC_ID_LENGTH}) = $1 AND user_id = $2 AND dies_at > $3 LIMIT 1`,
    deleteByUser: `DELETE FROM ${qualified} WHERE user_id = $1 AND ($2::text IS NULL OR id <> $2::text)`,
    purge: `DELETE FROM ${qualified} WHERE dies_at <= $1`,
  } as const

  async function query<R extends QueryResultRow>(
    name: keyof typeof sql,
    values: unknown[],
  ): Promise<{ rows: R[]; rowCount: number }> {
    try {
      const result = await withDeadline(
        pool.query<R>({ name: `tessera_${name}_${tag}`, text: sql[name], values }),
        deadline,
        'PostgreSQL',
      )
      return { rows: result.rows, rowCount: result.rowCount ?? 0 }
    } catch (error) {
      throw toStoreError(error)
    }
  }

  return {
    async migrate(): Promise<void> {
      try {
        const client = await withDeadline(pool.connect(), deadline, 'PostgreSQL')
        try {
          await client.query('BEGIN')
          // Two processes starting together must not race on CREATE TABLE IF NOT EXISTS.
          await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`tessera:${qualified}`])
          if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`)
          await client.query(`
            CREATE TABLE IF NOT EXISTS ${qualified} (
              id text PRIMARY KEY,
              user_id text,
              version bigint NOT NULL,
              created_at bigint NOT NULL,
              last_seen_at bigint NOT NULL,
              expires_at bigint NOT NULL,
              absolute_expires_at bigint NOT NULL,
              dies_at bigint NOT NULL,
              data text NOT NULL,
              meta text NOT NULL
            )`)
          await client.query(
            `CREATE INDEX IF NOT EXISTS "${table}_user_id" ON ${qualified} (user_id) WHERE user_id IS NOT NULL`,
          )
          await client.query(
            `CREATE INDEX IF NOT EXISTS "${table}_dies_at" ON ${qualified} (dies_at)`,
          )
          // getByPublicId: a bearer request's live-session check is one index lookup.
          await client.query(
            `CREATE INDEX IF NOT EXISTS "${table}_public_id" ON ${qualified} (substr(id, 1, ${PUBLIC_ID_LENGTH}))`,
          )
          await client.query('COMMIT')
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined)
          throw error
        } finally {
          client.release()
        }
      } catch (error) {
        throw toStoreError(error)
      }
    },

    async get(id: string): Promise<SessionRecord | null> {
      if (!storable(id)) return null
      const { rows } = await query<SessionRow>('get', [id])
      const row = rows[0]
      return row === undefined ? null : rowToRecord(row)
    },

    async create(record: SessionRecord): Promise<void> {
      checkRecord(record)
      if (!storable(record.id) || (record.userId !== null && !storable(record.userId))) {
        throw new TesseraError('invalid_argument', 'PostgreSQL cannot store U+0000 in an id')
      }
      await query('insert', [record.id, ...recordColumns(record)])
    },

    async update(record: SessionRecord, expectedVersion: number): Promise<boolean> {
      checkRecord(record, expectedVersion)
      if (!storable(record.id)) return false
      if (record.userId !== null && !storable(record.userId)) {
        throw new TesseraError('invalid_argument', 'PostgreSQL cannot store U+0000 in an id')
      }
      const { rowCount } = await query('update', [
        ...recordColumns(record),
        record.id,
        expectedVersion,
      ])
      return rowCount === 1
    },

    async delete(id: string): Promise<void> {
      if (!storable(id)) return
      await query('delete', [id])
    },

    async listByUser(userId: string): Promise<SessionRecord[]> {
      if (!storable(userId)) return []
      const { rows } = await query<SessionRow>('listByUser', [userId, now()])
      return rows.map(rowToRecord)
    },

    async getByPublicId(userId: string, publicId: string): Promise<SessionRecord | null> {
      if (!storable(userId) || !storable(publicId) || publicId.length !== PUBLIC_ID_LENGTH) {
        return null
      }
      const { rows } = await query<SessionRow>('getByPublicId', [publicId, userId, now()])
      const row = rows[0]
      return row === undefined ? null : rowToRecord(row)
    },

    async deleteByUser(userId: string, deleteOptions: { except?: string } = {}): Promise<number> {
      if (!storable(userId)) return 0
      const except = deleteOptions.except
      // An `except` no row can have protects nothing.
      const keep = except !== undefined && storable(except) ? except : null
      const { rowCount } = await query('deleteByUser', [userId, keep])
      return rowCount
    },

    async purgeExpired(): Promise<number> {
      const { rowCount } = await query('purge', [now()])
      return rowCount
    },
  }
}

/** PostgreSQL text cannot hold U+0000, so no stored id or user id contains it. */
function storable(value: string): boolean {
  return !value.includes('\u0000')
}

export { isPostgresUnavailable } from './unavailable.js'

function toStoreError(error: unknown): unknown {
  return toStoreUnavailable(error, 'PostgreSQL session store')
}
