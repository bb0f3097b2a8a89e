import type BetterSqlite3 from 'better-sqlite3'
import { PUBLIC_ID_LENGTH } from '../core/session-store.js'
import type { SessionRecord, SessionStore } from '../core/session-store.js'
import {
  checkIdentifier,
  checkRecord,
  recordColumns,
  rowToRecord,
  type SessionRow,
} from './record-codec.js'
import { toStoreUnavailable } from './unavailable.js'

/** Options of {@link createSQLiteStore}. */
export interface SQLiteStoreOptions {
  /** Table of the sessions, created when missing. Plain identifier only. @default 'tessera_sessions' */
  table?: string
  /** Clock in epoch milliseconds, for `listByUser` and `purgeExpired`. @default Date.now */
  now?: () => number
}

/** The SQLite session store: a {@link SessionStore} plus a purge of expired rows. */
export interface SQLiteStore extends SessionStore {
  /**
   * Deletes every row past `min(expiresAt, absoluteExpiresAt)` at the store's clock; returns how
   * many. Run it now and then (an interval, a cron); nothing else removes expired rows.
   */
  purgeExpired(): Promise<number>
}

/**
 * A session store in a better-sqlite3 database, the embedded default.
 *
 * Switches the database to WAL (readers do not block the writer), creates the table with indexes
 * on the user and on the expiry when missing, and prepares every statement once. The database
 * stays the caller's: the store never closes it. Records are kept until `purgeExpired()` removes
 * them; `get` returns a record even past its expiry (the session manager decides expiry).
 *
 * @throws TesseraError `config_invalid` for a table name that is not a plain identifier.
 * Operations throw `store_unavailable` when the database is closed, busy past its timeout,
 * or cannot be read or written (I/O error, disk full, read-only).
 *
 * @example
 * ```ts
 * import Database from 'better-sqlite3'
 * import { createSQLiteStore } from 'tessera-auth/stores/sqlite'
 *
 * const db = new Database('data/sessions.db')
 * const store = createSQLiteStore(db)
 * setInterval(() => void store.purgeExpired(), 60 * 60 * 1000).unref()
 * ```
 */
export function createSQLiteStore(
  db: BetterSqlite3.Database,
  options: SQLiteStoreOptions = {},
): SQLiteStore {
  const table = checkIdentifier(
    'createSQLiteStore options.table',
    options.table ?? 'tessera_sessions',
  )
  const now = options.now ?? Date.now

  guard(() => {
    // WAL lets readers run beside the one writer; an in-memory database keeps its own mode.
    if (!db.memory && !db.readonly) db.pragma('journal_mode = WAL')
    db.exec(`
      CREATE TABLE IF NOT EXISTS "${table}" (
        id TEXT PRIMARY KEY NOT NULL,
        user_id TEXT,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        absolute_expires_at INTEGER NOT NULL,
        dies_at INTEGER NOT NULL,
        data TEXT NOT NULL,
        meta TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS "${table}_user_id" ON "${table}" (user_id) WHERE user_id IS NOT NULL;
      CREATE INDEX IF NOT EXISTS "${table}_dies_at" ON "${table}" (dies_at);
    `)
  })

  const columns =
    'id, user_id, version, created_at, last_seen_at, expires_at, absolute_expires_at, data, meta'
  const statements = guard(() => ({
    get: db.prepare<[string], SessionRow>(`SELECT ${columns} FROM "${table}" WHERE id = ?`),
    insert: db.prepare(
      `INSERT OR REPLACE INTO "${table}" (${columns}, dies_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    update: db.prepare(
      `UPDATE "${table}" SET user_id = ?, version = ?, created_at = ?, last_seen_at = ?,
         expires_at = ?, absolute_expires_at = ?, data = ?, meta = ?, dies_at = ?
       WHERE id = ? AND version = ?`,
    ),
    delete: db.prepare(`DELETE FROM "${table}" WHERE id = ?`),
    listByUser: db.prepare<[string, number], SessionRow>(
      `SELECT ${columns} FROM "${table}" WHERE user_id = ? AND dies_at > ?`,
    ),
    // A range of the primary key (BINARY collation: byte order), so one index seek: every
    // stored id is base64url, whose characters all sort below '~'. The unary + keeps the
    // planner off the user_id index (a scan of every session of the user).
    getByPublicId: db.prepare<[string, string, string, number], SessionRow>(
      `SELECT ${columns} FROM "${table}" WHERE id >= ? AND id < ? AND +user_id = ? AND dies_at > ? LIMIT 1`,
    ),
    deleteByUser: db.prepare(`DELETE FROM "${table}" WHERE user_id = ?`),
    deleteByUserExcept: db.prepare(`DELETE FROM "${table}" WHERE user_id = ? AND id <> ?`),
    purge: db.prepare(`DELETE FROM "${table}" WHERE dies_at <= ?`),
  }))

  return {
    get(id: string): Promise<SessionRecord | null> {
      return settle(() => {
        const row = statements.get.get(id)
        return row === undefined ? null : rowToRecord(row)
      })
    },

    create(record: SessionRecord): Promise<void> {
      return settle(() => {
        checkRecord(record)
        statements.insert.run(record.id, ...recordColumns(record))
      })
    },

    update(record: SessionRecord, expectedVersion: number): Promise<boolean> {
      return settle(() => {
        checkRecord(record, expectedVersion)
        // Compare-and-set in one statement: the row changes only if its version is still the
        // one the caller read, and a deleted row stays deleted.
        const result = statements.update.run(...recordColumns(record), record.id, expectedVersion)
        return result.changes === 1
      })
    },

    delete(id: string): Promise<void> {
      return settle(() => {
        statements.delete.run(id)
      })
    },

    listByUser(userId: string): Promise<SessionRecord[]> {
      return settle(() => statements.listByUser.all(userId, now()).map(rowToRecord))
    },

    getByPublicId(userId: string, publicId: string): Promise<SessionRecord | null> {
      return settle(() => {
        if (publicId.length !== PUBLIC_ID_LENGTH) return null
        const row = statements.getByPublicId.get(publicId, `${publicId}~`, userId, now())
        return row === undefined ? null : rowToRecord(row)
      })
    },

    deleteByUser(userId: string, deleteOptions: { except?: string } = {}): Promise<number> {
      const except = deleteOptions.except
      return settle(
        () =>
          (except === undefined
            ? statements.deleteByUser.run(userId)
            : statements.deleteByUserExcept.run(userId, except)
          ).changes,
      )
    },

    purgeExpired(): Promise<number> {
      return settle(() => statements.purge.run(now()).changes)
    },
  }
}

/** Runs a synchronous database call as a promise: errors become rejections, never throws. */
function settle<T>(call: () => T): Promise<T> {
  return new Promise((resolve) => resolve(guard(call)))
}

/** Runs a synchronous database call, turning unavailability into `store_unavailable`. */
function guard<T>(call: () => T): T {
  try {
    return call()
  } catch (error) {
    throw toStoreUnavailable(error, 'SQLite session store')
  }
}
