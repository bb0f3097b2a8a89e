import {
  Kysely,
  Migrator,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryResult,
  PostgresAdapter,
  PostgresDialect,
  SqliteDialect,
  sql,
  type SqliteDatabase as KyselySqliteDatabase,
  type SqliteStatement as KyselySqliteStatement,
  type MigrationResult,
  type PostgresPool,
} from 'kysely'
import { TesseraError } from '../../core/errors.js'
import { toStoreUnavailable } from '../../stores/unavailable.js'
import { migrationProvider } from './migrations.js'
import { loadOptionalPeer } from './optional-peer.js'
import type { TesseraDatabase } from './schema.js'

/** The Kysely instance the accounts layer runs on. */
export type TesseraDB = Kysely<TesseraDatabase>

// The public types below are structural on purpose: a declaration that imported `pg` or
// `better-sqlite3` types would not typecheck (skipLibCheck: false) in an application that has
// neither installed, and both are optional peers. Kysely, a dependency, has the shapes.

/** A prepared statement of an open better-sqlite3 database, as tessera uses it. */
export interface SqliteStatement extends KyselySqliteStatement {
  /** True while the statement is iterating (better-sqlite3's `busy`). */
  readonly busy: boolean
}

/**
 * An open better-sqlite3 database (`new Database(file)`), as tessera uses it: the part of
 * better-sqlite3's `Database` that `createDatabase` calls. Any better-sqlite3 database fits.
 */
export interface SqliteConnection extends KyselySqliteDatabase {
  prepare(sql: string): SqliteStatement
  pragma(source: string): unknown
  /** True while a transaction is open on the connection. */
  readonly inTransaction: boolean
}

/** A pg `Pool` (`new pg.Pool(...)`), as Kysely uses it. Any pg pool fits. */
export type PostgresConnectionPool = PostgresPool

/**
 * Where a database is, as a URL names it: what {@link parseDatabaseURL} returns and what the
 * server's configuration holds (`ServerConfig.database`). One of the forms of
 * {@link DatabaseConfig}, so it can be passed to {@link createDatabase} as it is.
 */
export type DatabaseLocation =
  | { dialect: 'sqlite'; /** a file path, or `:memory:` */ filename: string }
  | { dialect: 'postgres'; connectionString: string }

/**
 * Where the accounts database lives.
 *
 * - `'sqlite:./data/tessera.db'`, `'sqlite::memory:'`: SQLite through better-sqlite3;
 * - `'postgres://user@host:5432/db'` (or `postgresql://`): PostgreSQL through a new pg `Pool`;
 * - an object naming the dialect ({@link DatabaseLocation}), to pass an open better-sqlite3
 *   database or pg pool, or a PostgreSQL `schema` (sets the connection's `search_path`).
 */
export type DatabaseConfig =
  | string
  | { dialect: 'sqlite'; filename: string }
  | { dialect: 'sqlite'; database: SqliteConnection }
  | { dialect: 'postgres'; connectionString: string; schema?: string; max?: number }
  | { dialect: 'postgres'; pool: PostgresConnectionPool }

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/**
 * Builds a Kysely for the accounts layer from a URL or a dialect object. SQLite connections get
 * `foreign_keys=ON`, `busy_timeout=5000` and WAL for files. The drivers are loaded on demand, so
 * an application using one database does not need the other's driver installed.
 *
 * `db.destroy()` closes what this function opened (and, per Kysely, a pool you passed).
 *
 * @throws TesseraError `config_invalid` for an unknown URL scheme or a bad schema name, or when
 * the driver the URL needs (`better-sqlite3`, `pg`) is not installed, naming the package.
 * @example
 * ```ts
 * const db = await createDatabase(process.env.DATABASE_URL ?? 'sqlite:./data/tessera.db')
 * await migrateToLatest(db)
 * ```
 */
export async function createDatabase(config: DatabaseConfig): Promise<TesseraDB> {
  const resolved: Exclude<DatabaseConfig, string> =
    typeof config === 'string' ? parseDatabaseURL(config) : config
  if (resolved.dialect === 'sqlite') {
    let database: SqliteConnection
    let isFile = false
    if ('database' in resolved) {
      database = resolved.database
    } else {
      const { default: BetterSqlite3 } = await loadOptionalPeer(
        () => import('better-sqlite3'),
        'better-sqlite3',
        'createDatabase: SQLite needs a driver',
      )
      database = new BetterSqlite3(resolved.filename)
      isFile = resolved.filename !== ':memory:' && resolved.filename !== ''
    }
    database.pragma('foreign_keys = ON')
    database.pragma('busy_timeout = 5000')
    if (isFile) database.pragma('journal_mode = WAL')
    const cached = cachingStatements(database)
    const kysely = new Kysely<TesseraDatabase>({
      dialect: mappingUnavailable(new SqliteDialect({ database: cached }), 'SQLite'),
    })
    directReaders.set(kysely, (text, parameters) => {
      // SECURITY: inside an open transaction (Kysely holds the one connection across awaits),
      // a direct read would see that transaction's uncommitted writes: go through Kysely,
      // which waits for the transaction to end.
      if (database.inTransaction) return undefined
      try {
        return cached.prepare(text).all(parameters)
      } catch (error) {
        throw toStoreUnavailable(error, 'SQLite')
      }
    })
    return kysely
  }
  if ('pool' in resolved) {
    keepClientErrors(resolved.pool)
    return new Kysely<TesseraDatabase>({
      dialect: mappingUnavailable(new PostgresDialect({ pool: resolved.pool }), 'PostgreSQL'),
    })
  }
  if (resolved.schema !== undefined && !SCHEMA_NAME.test(resolved.schema)) {
    throw new TesseraError(
      'config_invalid',
      'database schema must be a plain identifier (letters, digits, underscore)',
    )
  }
  const pg = await loadOptionalPeer(
    () => import('pg'),
    'pg',
    'createDatabase: PostgreSQL needs a driver',
  )
  const pool = new pg.default.Pool({
    connectionString: resolved.connectionString,
    max: resolved.max ?? 10,
    connectionTimeoutMillis: 5000,
    ...(resolved.schema === undefined ? {} : { options: `-c search_path=${resolved.schema}` }),
  })
  keepClientErrors(pool)
  return new Kysely<TesseraDatabase>({
    dialect: mappingUnavailable(new PostgresDialect({ pool }), 'PostgreSQL'),
  })
}

/**
 * Gives every connection of a pg pool an `error` listener for its whole life. pg-pool listens
 * only while a connection is idle; a checked-out connection between two queries (inside a
 * transaction, or just acquired) that the server terminates (`57P01` when PostgreSQL stops) emits
 * `error` with no listener, which crashes the process. With this, the connection is marked
 * unusable instead: its next query fails (`store_unavailable`, answered 503) and the pool drops
 * it when it is released.
 */
function keepClientErrors(pool: PostgresConnectionPool): void {
  const events = pool as unknown as {
    on?: (
      event: 'connect',
      listener: (client: { on(e: 'error', l: () => void): void }) => void,
    ) => void
  }
  // SECURITY: an outage of the database must fail requests closed (503), not stop the process.
  events.on?.('connect', (client) => client.on('error', () => undefined))
}

/**
 * `dialect` with every driver error passed through the one unavailability rule
 * (`toStoreUnavailable`, src/stores/unavailable.ts): a refused connection, a pool timeout, a
 * terminated connection or a server shutting down reaches every query of the accounts layer
 * (users, credentials, permissions, audit, reset tokens, signing keys) as `store_unavailable`,
 * answered 503 with Retry-After like a session store's; a bug in a query stays what it is.
 */
function mappingUnavailable(dialect: Dialect, what: string): Dialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createDriver: () => mappingDriver(dialect.createDriver(), what),
  }
}

function mappingDriver(driver: Driver, what: string): Driver {
  // Kysely hands the driver back the connection it acquired: keep the driver's own object.
  const inner = new WeakMap<DatabaseConnection, DatabaseConnection>()
  const unwrap = (connection: DatabaseConnection): DatabaseConnection =>
    inner.get(connection) ?? connection
  const mapped = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work()
    } catch (error) {
      throw toStoreUnavailable(error, what)
    }
  }
  const wrapped: Driver = {
    init: () => mapped(() => driver.init()),
    acquireConnection: () =>
      mapped(async () => {
        const connection = await driver.acquireConnection()
        const outer: DatabaseConnection = {
          executeQuery: <R>(query: Parameters<DatabaseConnection['executeQuery']>[0]) =>
            mapped<QueryResult<R>>(() => connection.executeQuery<R>(query)),
          streamQuery: <R>(
            query: Parameters<DatabaseConnection['streamQuery']>[0],
            chunkSize?: number,
          ) => connection.streamQuery<R>(query, chunkSize),
        }
        inner.set(outer, connection)
        return outer
      }),
    beginTransaction: (connection, settings) =>
      mapped(() => driver.beginTransaction(unwrap(connection), settings)),
    commitTransaction: (connection) => mapped(() => driver.commitTransaction(unwrap(connection))),
    rollbackTransaction: (connection) =>
      mapped(() => driver.rollbackTransaction(unwrap(connection))),
    releaseConnection: (connection) => driver.releaseConnection(unwrap(connection)),
    destroy: () => driver.destroy(),
  }
  if (driver.savepoint !== undefined) {
    const savepoint = driver.savepoint.bind(driver)
    wrapped.savepoint = (connection, name, compile) =>
      mapped(() => savepoint(unwrap(connection), name, compile))
  }
  if (driver.rollbackToSavepoint !== undefined) {
    const rollback = driver.rollbackToSavepoint.bind(driver)
    wrapped.rollbackToSavepoint = (connection, name, compile) =>
      mapped(() => rollback(unwrap(connection), name, compile))
  }
  if (driver.releaseSavepoint !== undefined) {
    const release = driver.releaseSavepoint.bind(driver)
    wrapped.releaseSavepoint = (connection, name, compile) =>
      mapped(() => release(unwrap(connection), name, compile))
  }
  return wrapped
}

/**
 * Runs one read-only statement synchronously on a SQLite database, or returns `undefined` when
 * it cannot right now (a transaction is open) and the caller must go through Kysely.
 */
export type DirectReader = (sql: string, parameters: readonly unknown[]) => unknown[] | undefined

const directReaders = new WeakMap<TesseraDB, DirectReader>()

/**
 * A synchronous reader for a database {@link createDatabase} opened on SQLite (`undefined` for
 * PostgreSQL or a Kysely built elsewhere). For the per-request hot path only: it skips Kysely's
 * connection queue, plugins and promise chain (about half the time of `getUserWithPermissions`
 * in a profile), and declines while a transaction is open.
 */
export function directReader(db: TesseraDB): DirectReader | undefined {
  return directReaders.get(db)
}

/** How many distinct SQL texts keep a prepared SQLite statement. */
const STATEMENT_CACHE_SIZE = 256

/**
 * Kysely's SQLite driver prepares every query afresh (`db.prepare(sql)` per execution), and
 * SQLite's prepare (parse + plan) was the largest single cost of `GET /auth/session` in a CPU
 * profile. This keeps prepared statements by SQL text (bounded; least recently used dropped),
 * and prepares a fresh one when the cached statement is still iterating (a stream).
 */
function cachingStatements(database: SqliteConnection): KyselySqliteDatabase {
  const cache = new Map<string, SqliteStatement>()
  return {
    close: () => {
      cache.clear()
      database.close()
    },
    prepare: (text) => {
      const cached = cache.get(text)
      if (cached !== undefined && !cached.busy) {
        // Re-insert: Map order is the recency order.
        cache.delete(text)
        cache.set(text, cached)
        return cached
      }
      const statement = database.prepare(text)
      if (cached === undefined) {
        cache.set(text, statement)
        if (cache.size > STATEMENT_CACHE_SIZE) {
          const oldest = cache.keys().next().value
          if (oldest !== undefined) cache.delete(oldest)
        }
      }
      return statement
    },
  }
}

/**
 * Parses `sqlite:path`, `sqlite://path`, `postgres://…` and `postgresql://…`.
 *
 * @throws TesseraError `config_invalid` for anything else.
 */
export function parseDatabaseURL(url: string): DatabaseLocation {
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    return { dialect: 'postgres', connectionString: url }
  }
  if (url.startsWith('sqlite:')) {
    let filename = url.slice('sqlite:'.length)
    if (filename.startsWith('//')) filename = filename.slice(2)
    if (filename === '') {
      throw new TesseraError('config_invalid', 'database URL sqlite: needs a file path or :memory:')
    }
    return { dialect: 'sqlite', filename }
  }
  throw new TesseraError(
    'config_invalid',
    'database URL must start with sqlite: or postgres:// (e.g. sqlite:./data/tessera.db)',
  )
}

/** @deprecated renamed {@link parseDatabaseURL} (STYLE.md: acronyms upper case). */
export const parseDatabaseUrl = parseDatabaseURL

/** What {@link migrateToLatest} applied. */
export interface MigrationReport {
  /** Names of the migrations applied by this call, oldest first. */
  applied: string[]
}

/**
 * Applies every pending migration, in order, each in a transaction, under Kysely's migration
 * lock (two processes starting together apply each migration once).
 *
 * @throws TesseraError `store_unavailable` when a migration fails, with the cause attached.
 */
export async function migrateToLatest(db: TesseraDB): Promise<MigrationReport> {
  // Our own migration tables, so an application's Kysely migrations in the same database never
  // mix with ours; and on PostgreSQL pinned to the connection's schema, because Kysely otherwise
  // finds a migration table of the same name in any schema and skips creating its own.
  const schema =
    db.getExecutor().adapter instanceof PostgresAdapter
      ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(db)).rows[0]
          ?.schema
      : undefined
  const migrator = new Migrator({
    db,
    provider: migrationProvider,
    migrationTableName: 'tessera_migration',
    migrationLockTableName: 'tessera_migration_lock',
    ...(schema === undefined ? {} : { migrationTableSchema: schema }),
  })
  let { error, results } = await migrator.migrateToLatest()
  // Kysely's migrator introspects every schema of the database (pg_get_serial_sequence,
  // has_schema_privilege by name). A schema or table another session drops meanwhile makes that
  // query fail with 3F000/42P01/42703 although ours is fine: retry a few times (applied migrations are
  // recorded, so a retry only applies what is still pending).
  for (let attempt = 1; attempt < 5 && isConcurrentDdlError(error); attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 20 * attempt))
    ;({ error, results } = await migrator.migrateToLatest())
  }
  if (error !== undefined) {
    const failed = results?.find((r: MigrationResult) => r.status === 'Error')
    throw new TesseraError(
      'store_unavailable',
      `database migration ${failed?.migrationName ?? ''} failed`.replace('  ', ' '),
      { cause: error },
    )
  }
  return {
    applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName),
  }
}

/** A PostgreSQL error caused by another session dropping a schema or table mid-query. */
function isConcurrentDdlError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const code = (error as { code?: unknown }).code
  // 3F000 schema, 42P01 table, 42703 column ("column ... of relation ... does not exist" when a
  // table is dropped between the catalog read and pg_get_serial_sequence).
  return code === '3F000' || code === '42P01' || code === '42703'
}

/** True when `error` is a unique-constraint violation on SQLite or PostgreSQL. */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const code = (error as { code?: unknown }).code
  return (
    code === '23505' ||
    code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  )
}
