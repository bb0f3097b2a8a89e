import { TesseraError } from '../core/errors.js'
import { toStoreUnavailable } from '../stores/unavailable.js'
import {
  applyBackoff,
  applyRefund,
  applyWindow,
  type BackoffPolicy,
  type RateLimitDecision,
  type RateLimitState,
  type RateLimitStore,
  type WindowPolicy,
} from './rate-limit.js'

/**
 * The table both SQL backends use (one row per key; times are epoch milliseconds):
 *
 * ```sql
 * CREATE TABLE tessera_rate_limits (
 *   key TEXT PRIMARY KEY, hits INTEGER NOT NULL, delay_ms BIGINT NOT NULL,
 *   blocked_until BIGINT NOT NULL, expires_at BIGINT NOT NULL)
 * ```
 */
export const RATE_LIMIT_TABLE = 'tessera_rate_limits'

/** A rate-limit store over SQL, with its own small table. */
export interface SQLRateLimitStore extends RateLimitStore {
  /** Creates the table and its index if they do not exist; safe to run at every start. */
  migrate(): Promise<void>
  /** Deletes rows whose expiry has passed; returns how many. */
  prune(now?: number): Promise<number>
}

type Row = {
  hits: number | string
  delay_ms: number | string
  blocked_until: number | string
  expires_at: number | string
}

function toState(row: Row | undefined): RateLimitState | null {
  if (row === undefined) return null
  return {
    hits: Number(row.hits),
    delayMs: Number(row.delay_ms),
    blockedUntil: Number(row.blocked_until),
    expiresAt: Number(row.expires_at),
  }
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

function checkIdentifier(name: string, value: string): string {
  if (!IDENTIFIER.test(value)) {
    throw new TesseraError('config_invalid', `${name} must be a plain SQL identifier`)
  }
  return `"${value}"`
}

/** The one unavailability rule of every SQL path (src/stores/unavailable.ts). */
function storeError(error: unknown): unknown {
  return toStoreUnavailable(error, 'the rate-limit database did not answer')
}

/** Runs a synchronous better-sqlite3 call as a promise, its errors mapped by {@link storeError}. */
function settle<T>(call: () => T): Promise<T> {
  return new Promise<T>((resolve) => {
    try {
      resolve(call())
    } catch (error) {
      throw storeError(error)
    }
  })
}

// ---------------------------------------------------------------------------------------------
// SQLite (better-sqlite3)

/** The part of a better-sqlite3 `Database` this store uses. */
export interface SQLiteDatabaseLike {
  prepare(sql: string): {
    run(...params: unknown[]): { changes: number }
    get(...params: unknown[]): unknown
  }
  exec(sql: string): unknown
  transaction<T>(fn: () => T): { immediate(): T }
}

/** Options of {@link createSQLiteRateLimitStore}. */
export interface SQLiteRateLimitStoreOptions {
  /** Table name. @default 'tessera_rate_limits' */
  table?: string
}

/**
 * Counters in a SQLite database through better-sqlite3. Each step is one `BEGIN IMMEDIATE`
 * transaction, so processes sharing the file enforce one limit.
 *
 * @throws TesseraError `config_invalid` for a table name that is not a plain identifier.
 * @example
 * ```ts
 * const store = createSQLiteRateLimitStore(new Database('tessera.db'))
 * await store.migrate()
 * ```
 */
export function createSQLiteRateLimitStore(
  db: SQLiteDatabaseLike,
  options: SQLiteRateLimitStoreOptions = {},
): SQLRateLimitStore {
  const table = checkIdentifier('table', options.table ?? RATE_LIMIT_TABLE)
  let statements:
    | {
        select: ReturnType<SQLiteDatabaseLike['prepare']>
        upsert: ReturnType<SQLiteDatabaseLike['prepare']>
        remove: ReturnType<SQLiteDatabaseLike['prepare']>
      }
    | undefined

  function prepared(): NonNullable<typeof statements> {
    statements ??= {
      select: db.prepare(
        `SELECT hits, delay_ms, blocked_until, expires_at FROM ${table} WHERE key = ?`,
      ),
      upsert: db.prepare(
        `INSERT INTO ${table} (key, hits, delay_ms, blocked_until, expires_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET hits = excluded.hits, delay_ms = excluded.delay_ms,
           blocked_until = excluded.blocked_until, expires_at = excluded.expires_at`,
      ),
      remove: db.prepare(`DELETE FROM ${table} WHERE key = ?`),
    }
    return statements
  }

  function step<T>(
    key: string,
    apply: (state: RateLimitState | null) => { next: RateLimitState | null; result: T },
  ): Promise<T> {
    return settle(() => {
      const s = prepared()
      const run = db.transaction((): T => {
        const { next, result } = apply(toState(s.select.get(key) as Row | undefined))
        if (next === null) s.remove.run(key)
        else s.upsert.run(key, next.hits, next.delayMs, next.blockedUntil, next.expiresAt)
        return result
      })
      // SECURITY: IMMEDIATE takes the write lock before reading, so two processes cannot both
      // read the same count and both admit an attempt.
      return run.immediate()
    })
  }

  return {
    hitBackoff(key: string, now: number, policy: BackoffPolicy): Promise<RateLimitDecision> {
      return step(key, (state) => {
        const { next, decision } = applyBackoff(state, now, policy)
        return { next, result: decision }
      })
    },
    hitWindow(key: string, now: number, policy: WindowPolicy): Promise<RateLimitDecision> {
      return step(key, (state) => {
        const { next, decision } = applyWindow(state, now, policy)
        return { next, result: decision }
      })
    },
    refundWindow(key: string, now: number): Promise<void> {
      return step(key, (state) => ({ next: applyRefund(state, now), result: undefined }))
    },
    reset(key: string): Promise<void> {
      return settle(() => void prepared().remove.run(key))
    },
    migrate(): Promise<void> {
      return settle(() => {
        db.exec(
          `CREATE TABLE IF NOT EXISTS ${table} (key TEXT PRIMARY KEY, hits INTEGER NOT NULL,
             delay_ms INTEGER NOT NULL, blocked_until INTEGER NOT NULL, expires_at INTEGER NOT NULL);
           CREATE INDEX IF NOT EXISTS ${checkIdentifier('table', `${options.table ?? RATE_LIMIT_TABLE}_expires`)}
             ON ${table} (expires_at);`,
        )
      })
    },
    prune(now: number = Date.now()): Promise<number> {
      return settle(() => db.prepare(`DELETE FROM ${table} WHERE expires_at <= ?`).run(now).changes)
    },
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL (pg)

/** A connection checked out of a pg `Pool`. */
export interface PgClientLike {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>
  release(error?: Error | boolean): void
}

/** The part of a pg `Pool` this store uses. */
export interface PgPoolLike {
  connect(): Promise<PgClientLike>
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>
}

/** Options of {@link createPostgresRateLimitStore}. */
export interface PostgresRateLimitStoreOptions {
  /** Schema of the table. @default the connection's search_path */
  schema?: string
  /** Table name. @default 'tessera_rate_limits' */
  table?: string
}

/**
 * Counters in PostgreSQL through a pg `Pool`. Each step locks its row (`INSERT … ON CONFLICT DO
 * UPDATE`) inside a transaction, so every process on the database enforces one limit.
 *
 * @throws TesseraError `config_invalid` for a schema or table name that is not a plain identifier.
 * @example
 * ```ts
 * const store = createPostgresRateLimitStore(new pg.Pool({ connectionString }))
 * await store.migrate()
 * ```
 */
export function createPostgresRateLimitStore(
  pool: PgPoolLike,
  options: PostgresRateLimitStoreOptions = {},
): SQLRateLimitStore {
  const tableName = options.table ?? RATE_LIMIT_TABLE
  const schema = options.schema === undefined ? '' : `${checkIdentifier('schema', options.schema)}.`
  const table = `${schema}${checkIdentifier('table', tableName)}`
  const index = checkIdentifier('table', `${tableName}_expires`)

  async function step<T>(
    key: string,
    apply: (state: RateLimitState | null) => { next: RateLimitState | null; result: T },
  ): Promise<T> {
    let client: PgClientLike
    try {
      client = await pool.connect()
    } catch (error) {
      throw storeError(error)
    }
    let broken: Error | undefined
    try {
      await client.query('BEGIN')
      // SECURITY: the no-op upsert takes the row lock (creating a placeholder row if needed) before
      // the state is read, so concurrent steps on one key run one after the other.
      const locked = await client.query(
        `INSERT INTO ${table} AS t (key, hits, delay_ms, blocked_until, expires_at)
         VALUES ($1, 0, 0, 0, 0)
         ON CONFLICT (key) DO UPDATE SET key = t.key
         RETURNING hits, delay_ms, blocked_until, expires_at`,
        [key],
      )
      const { next, result } = apply(toState(locked.rows[0] as Row | undefined))
      if (next === null) {
        await client.query(`DELETE FROM ${table} WHERE key = $1`, [key])
      } else {
        await client.query(
          `UPDATE ${table} SET hits = $2, delay_ms = $3, blocked_until = $4, expires_at = $5
           WHERE key = $1`,
          [key, next.hits, next.delayMs, next.blockedUntil, next.expiresAt],
        )
      }
      await client.query('COMMIT')
      return result
    } catch (error) {
      broken = error instanceof Error ? error : new Error(String(error))
      await client.query('ROLLBACK').catch(() => undefined)
      throw storeError(error)
    } finally {
      client.release(broken)
    }
  }

  async function run(text: string, values?: unknown[]): Promise<number> {
    try {
      return (await pool.query(text, values)).rowCount ?? 0
    } catch (error) {
      throw storeError(error)
    }
  }

  return {
    hitBackoff(key: string, now: number, policy: BackoffPolicy): Promise<RateLimitDecision> {
      return step(key, (state) => {
        const { next, decision } = applyBackoff(state, now, policy)
        return { next, result: decision }
      })
    },
    hitWindow(key: string, now: number, policy: WindowPolicy): Promise<RateLimitDecision> {
      return step(key, (state) => {
        const { next, decision } = applyWindow(state, now, policy)
        return { next, result: decision }
      })
    },
    refundWindow(key: string, now: number): Promise<void> {
      return step(key, (state) => ({ next: applyRefund(state, now), result: undefined }))
    },
    async reset(key: string): Promise<void> {
      await run(`DELETE FROM ${table} WHERE key = $1`, [key])
    },
    async migrate(): Promise<void> {
      await run(
        `CREATE TABLE IF NOT EXISTS ${table} (key TEXT PRIMARY KEY, hits INTEGER NOT NULL,
           delay_ms BIGINT NOT NULL, blocked_until BIGINT NOT NULL, expires_at BIGINT NOT NULL)`,
      )
      await run(`CREATE INDEX IF NOT EXISTS ${index} ON ${table} (expires_at)`)
    },
    prune(now: number = Date.now()): Promise<number> {
      return run(`DELETE FROM ${table} WHERE expires_at <= $1`, [now])
    },
  }
}
