import { TesseraError } from '../core/errors.js'
import type { SessionMeta, SessionRecord } from '../core/session-store.js'

/** The row shape the SQL stores keep: one column per field, `data` and `meta` as JSON text. */
export interface SessionRow {
  id: string
  user_id: string | null
  version: number | string
  created_at: number | string
  last_seen_at: number | string
  expires_at: number | string
  absolute_expires_at: number | string
  data: string
  meta: string
}

/** The time after which a record is dead: the earlier of its idle and absolute expiry. */
export function deathTime(record: SessionRecord): number {
  return Math.min(record.expiresAt, record.absoluteExpiresAt)
}

/** Turns a row (numbers may arrive as strings from BIGINT columns) back into a record. */
/**
 * The stored columns of a record after `id`, in the order both SQL stores declare them:
 * user, version, four times, data and meta as JSON, and the death time the purge uses.
 */
export function recordColumns(
  record: SessionRecord,
): [string | null, number, number, number, number, number, string, string, number] {
  return [
    record.userId,
    record.version,
    record.createdAt,
    record.lastSeenAt,
    record.expiresAt,
    record.absoluteExpiresAt,
    JSON.stringify(record.data),
    JSON.stringify(record.meta),
    deathTime(record),
  ]
}

export function rowToRecord(row: SessionRow): SessionRecord {
  return {
    id: row.id,
    userId: row.user_id,
    version: Number(row.version),
    createdAt: Number(row.created_at),
    lastSeenAt: Number(row.last_seen_at),
    expiresAt: Number(row.expires_at),
    absoluteExpiresAt: Number(row.absolute_expires_at),
    data: JSON.parse(row.data) as SessionRecord['data'],
    meta: JSON.parse(row.meta) as SessionMeta,
  }
}

/**
 * Checks what a store would otherwise write silently wrong: non-integer times or versions
 * (the SQL columns are integers) and an update whose version does not move forward by one.
 *
 * @throws TesseraError `invalid_argument`
 */
export function checkRecord(record: SessionRecord, expectedVersion?: number): void {
  for (const field of [
    'version',
    'createdAt',
    'lastSeenAt',
    'expiresAt',
    'absoluteExpiresAt',
  ] as const) {
    if (!Number.isSafeInteger(record[field])) {
      throw new TesseraError('invalid_argument', `SessionRecord.${field} must be a safe integer`)
    }
  }
  if (expectedVersion !== undefined && record.version !== expectedVersion + 1) {
    throw new TesseraError(
      'invalid_argument',
      'update(record, expectedVersion) expects record.version === expectedVersion + 1',
    )
  }
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/**
 * Validates a table or schema name given in options (it is spliced into SQL, so only plain
 * identifiers are accepted).
 *
 * @throws TesseraError `config_invalid`
 */
export function checkIdentifier(option: string, value: string): string {
  if (!IDENTIFIER.test(value)) {
    throw new TesseraError(
      'config_invalid',
      `${option} must be a plain SQL identifier (letters, digits, underscore; at most 63 characters)`,
    )
  }
  return value
}
