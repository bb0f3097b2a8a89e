import { TesseraError } from '../core/errors.js'

/*
 * The one rule for "this database driver error means the database cannot serve us now", for
 * PostgreSQL (pg) and SQLite (better-sqlite3). Every SQL path maps its driver errors through
 * {@link toStoreUnavailable}: the session stores, the accounts database (every Kysely query, see
 * `createDatabase`), the audit log, signing keys and the SQL rate-limit stores. Such an error
 * becomes `TesseraError('store_unavailable')` (HTTP 503 with Retry-After); any other error (a
 * bug in a query, a constraint) is left as it is.
 */

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ENOENT', // a Unix socket that is not there: the server is not running
])

// SQLSTATEs of a server that is going away or cannot take the query now: connection exceptions
// (class 08), shutdowns and start-ups (57P01 admin shutdown, 57P02 crash shutdown, 57P03 "the
// database system is starting up / shutting down"), statement timeout / cancel (57014), out of
// resources (class 53: too many connections, disk full, out of memory).
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[1-3]|57014|53...)$/

// pg's own errors carry no code: a pool that waited too long for a connection, a connection
// that ended or was terminated under a query, a query past `query_timeout`.
const UNAVAILABLE_MESSAGE =
  /timeout exceeded when trying to connect|connection terminated|query read timeout|connection timeout|not queryable|connection ended|server closed the connection|client has encountered a connection error|cannot use a pool after calling end|the database system is (shutting down|starting up)/i

// SQLite result codes that mean "the database cannot be used right now", not a bug in a query.
const UNAVAILABLE_SQLITE_CODE =
  /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|NOTADB|CORRUPT|PROTOCOL)/

/** True when a pg error says the server cannot be reached or did not answer, not that a query is wrong. */
export function isPostgresUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const { code, message, errors } = error as { code?: unknown; message?: unknown; errors?: unknown }
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code))) {
    return true
  }
  if (typeof message === 'string' && UNAVAILABLE_MESSAGE.test(message)) return true
  // Node reports a failed connect to every address of a name (localhost: ::1 and 127.0.0.1)
  // as an AggregateError.
  return Array.isArray(errors) && errors.some(isPostgresUnavailable)
}

/** True when a better-sqlite3 error says the database file cannot be used now (busy, I/O, full, closed). */
export function isSQLiteUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && UNAVAILABLE_SQLITE_CODE.test(code)) return true
  return error instanceof TypeError && /database connection is not open/i.test(error.message)
}

/** True when a pg or better-sqlite3 error means the database is unavailable (see the module). */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (error instanceof TesseraError) return error.code === 'store_unavailable'
  return isPostgresUnavailable(error) || isSQLiteUnavailable(error)
}

/**
 * `error` as the caller should throw it: `store_unavailable` (naming `what`, the driver's error
 * as `cause`) when it means the database is unavailable, else `error` unchanged. A
 * {@link TesseraError} is returned as it is.
 *
 * @example
 * ```ts
 * try { return await pool.query(text) } catch (error) { throw toStoreUnavailable(error, 'audit log') }
 * ```
 */
export function toStoreUnavailable(error: unknown, what: string): unknown {
  if (error instanceof TesseraError || !isDatabaseUnavailable(error)) return error
  return new TesseraError('store_unavailable', `${what}: ${describeError(error)}`, {
    cause: error,
  })
}

/** The error's message, or its class name when it has none. */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  if (error.message !== '') return error.message
  const nested = (error as { errors?: unknown }).errors
  if (Array.isArray(nested) && nested[0] instanceof Error && nested[0].message !== '') {
    return nested[0].message
  }
  return error.constructor.name
}
