import { sql, type Selectable } from 'kysely'
import { TesseraError } from '../core/errors.js'
import type { TesseraDB } from './db/database.js'
import { newId } from './db/ids.js'
import { toMillis, type AuditEventsTable } from './db/schema.js'

/** The kinds of security event tessera records. */
export type AuditEventType =
  | 'signup'
  | 'login'
  | 'logout'
  | 'rate_limited'
  | 'password_changed'
  | 'password_reset_requested'
  | 'password_reset_used'
  | 'session_revoked'
  | 'user_created'
  | 'user_disabled'
  | 'user_enabled'
  | 'user_deleted'
  | 'permission_changed'
  | 'token_reused'
  | 'identity_linked'
  | 'identity_unlinked'

/** How the event ended. */
export type AuditOutcome = 'success' | 'failure' | 'denied'

/** A scalar detail value; nested objects are not stored. */
export type AuditDetailValue = string | number | boolean | null

/** Where a request came from, recorded with each event. */
export interface RequestContext {
  ip?: string | undefined
  userAgent?: string | undefined
}

/** One event to record. */
export interface AuditEventInput extends RequestContext {
  type: AuditEventType
  outcome: AuditOutcome
  userId?: string | null | undefined
  /** Small non-secret facts (`reason`, `groupId`, `codename`, …). Secret-looking keys are dropped. */
  detail?: Record<string, AuditDetailValue> | undefined
}

/** One stored event. */
export interface AuditEvent {
  id: string
  /** Epoch milliseconds. */
  at: number
  type: AuditEventType
  outcome: AuditOutcome
  userId: string | null
  ip: string | null
  userAgent: string | null
  detail: Record<string, AuditDetailValue>
}

/** Filters and paging for {@link AuditLog.list}. */
export interface AuditQuery {
  userId?: string
  type?: AuditEventType
  /** Only events at or after this time (epoch ms). */
  since?: number
  /** Only events before this time (epoch ms). */
  until?: number
  /** @default 50 (at most 500) */
  limit?: number
  /** @default 0 */
  offset?: number
}

/** Filters of {@link AuditLog.count} and {@link AuditLog.countOverTime}. */
export interface AuditCountQuery {
  userId?: string
  type?: AuditEventType
  /** Only these outcomes. @default every outcome */
  outcomes?: readonly AuditOutcome[]
  /** Only events at or after this time (epoch ms). */
  since?: number
  /** Only events before this time (epoch ms). */
  until?: number
}

/** One bucket of {@link AuditLog.countOverTime}: events of one outcome in `[start, start + size)`. */
export interface AuditTimeBucket {
  /** Epoch ms, a multiple of the bucket size (UTC-aligned). */
  start: number
  outcome: AuditOutcome
  count: number
}

/** Options of {@link createAuditLog}. */
export interface AuditLogOptions {
  /** @default Date.now */
  now?: () => number
}

/** The audit log: append, query, prune. */
export interface AuditLog {
  /** Appends one event. Never stores a password, token or hash (see {@link sanitizeAuditDetail}). */
  record(event: AuditEventInput): Promise<void>
  /** Newest first. */
  list(query?: AuditQuery): Promise<AuditEvent[]>
  /** How many events match (for dashboards: failed logins in the last day). */
  count(query?: AuditCountQuery): Promise<number>
  /**
   * Matching events counted per time bucket of `bucketSeconds` and per outcome, in one grouped
   * query (for charts). Buckets without events are absent.
   * @throws TesseraError `invalid_argument` unless `bucketSeconds` is a positive integer
   */
  countOverTime(query: AuditCountQuery & { bucketSeconds: number }): Promise<AuditTimeBucket[]>
  /** Deletes events older than `maxAgeSeconds`; returns how many. */
  prune(maxAgeSeconds: number): Promise<number>
}

// SECURITY: detail keys that could carry a credential are never stored (OWASP ASVS 7.1.1:
// no credentials or session tokens in logs). Matched case-insensitively anywhere in the key.
const SECRET_KEY = /pass|pwd|token|secret|hash|cookie|authorization|credential|otp|key/i
// SECURITY: values that look like password hashes or long opaque tokens are dropped even under
// an innocent key.
const SECRET_VALUE =
  /^\$(argon2|2[abxy]?\$|scrypt|pbkdf2)|^(pbkdf2_sha256|argon2|bcrypt)\$|^[A-Za-z0-9_-]{40,}$/
const MAX_VALUE_LENGTH = 256
const MAX_USER_AGENT = 512
const MAX_IP = 64

/** Removes secret-looking keys and values, nested values, and over-long strings. */
export function sanitizeAuditDetail(
  detail: Record<string, unknown> | undefined,
): Record<string, AuditDetailValue> {
  const out: Record<string, AuditDetailValue> = {}
  if (detail === undefined) return out
  for (const key of Object.keys(detail)) {
    if (SECRET_KEY.test(key) || key === '__proto__') continue
    const value = detail[key]
    if (typeof value === 'string') {
      if (SECRET_VALUE.test(value)) continue
      out[key] = value.slice(0, MAX_VALUE_LENGTH)
    } else if (typeof value === 'number' || typeof value === 'boolean' || value === null) {
      out[key] = value
    }
  }
  return out
}

function clip(value: string | undefined, max: number): string | null {
  return value === undefined || value === '' ? null : value.slice(0, max)
}

function toEvent(row: Selectable<AuditEventsTable>): AuditEvent {
  let detail: Record<string, AuditDetailValue> = {}
  if (row.detail !== null) {
    try {
      detail = JSON.parse(row.detail) as Record<string, AuditDetailValue>
    } catch {
      detail = {}
    }
  }
  return {
    id: row.id,
    at: toMillis(row.at),
    type: row.type as AuditEventType,
    outcome: row.outcome as AuditOutcome,
    userId: row.user_id,
    ip: row.ip,
    userAgent: row.user_agent,
    detail,
  }
}

function pageSize(limit: number | undefined): number {
  if (limit === undefined) return 50
  if (!Number.isInteger(limit) || limit < 1) {
    throw new TesseraError('invalid_argument', 'limit must be a positive integer')
  }
  return Math.min(limit, 500)
}

function pageOffset(offset: number | undefined): number {
  if (offset === undefined) return 0
  if (!Number.isInteger(offset) || offset < 0) {
    throw new TesseraError('invalid_argument', 'offset must be a non-negative integer')
  }
  return offset
}

/**
 * The audit log over the accounts database (`audit_events`).
 *
 * @example
 * ```ts
 * const audit = createAuditLog(db)
 * await audit.record({ type: 'login', outcome: 'failure', userId, ip, userAgent })
 * const recent = await audit.list({ type: 'login', limit: 20 })
 * ```
 */
export function createAuditLog(db: TesseraDB, options: AuditLogOptions = {}): AuditLog {
  const now = options.now ?? Date.now

  function matching(query: AuditCountQuery) {
    let q = db.selectFrom('audit_events')
    if (query.userId !== undefined) q = q.where('user_id', '=', query.userId)
    if (query.type !== undefined) q = q.where('type', '=', query.type)
    if (query.outcomes !== undefined) {
      // An empty list matches nothing (`in ()` is not SQL).
      q = q.where('outcome', 'in', query.outcomes.length === 0 ? [''] : [...query.outcomes])
    }
    if (query.since !== undefined) q = q.where('at', '>=', query.since)
    if (query.until !== undefined) q = q.where('at', '<', query.until)
    return q
  }

  return {
    async record(event: AuditEventInput): Promise<void> {
      const at = now()
      const detail = sanitizeAuditDetail(event.detail)
      await db
        .insertInto('audit_events')
        .values({
          id: newId(at),
          at,
          type: event.type,
          outcome: event.outcome,
          user_id: event.userId ?? null,
          ip: clip(event.ip, MAX_IP),
          user_agent: clip(event.userAgent, MAX_USER_AGENT),
          detail: Object.keys(detail).length === 0 ? null : JSON.stringify(detail),
        })
        .execute()
    },

    async list(query: AuditQuery = {}): Promise<AuditEvent[]> {
      let q = db.selectFrom('audit_events').selectAll()
      if (query.userId !== undefined) q = q.where('user_id', '=', query.userId)
      if (query.type !== undefined) q = q.where('type', '=', query.type)
      if (query.since !== undefined) q = q.where('at', '>=', query.since)
      if (query.until !== undefined) q = q.where('at', '<', query.until)
      const rows = await q
        .orderBy('at', 'desc')
        .orderBy('id', 'desc')
        .limit(pageSize(query.limit))
        .offset(pageOffset(query.offset))
        .execute()
      return rows.map(toEvent)
    },

    async count(query: AuditCountQuery = {}): Promise<number> {
      const row = await matching(query)
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
      return Number(row.n)
    },

    async countOverTime(query): Promise<AuditTimeBucket[]> {
      const size = query.bucketSeconds
      if (!Number.isSafeInteger(size) || size < 1) {
        throw new TesseraError('invalid_argument', 'bucketSeconds must be a positive integer')
      }
      const ms = size * 1000
      // Integer division on both databases (bigint / integer in PostgreSQL); the divisor is a
      // checked integer, inlined so PostgreSQL need not guess a parameter's type.
      const bucket = sql<number | string>`${sql.ref('at')} / ${sql.lit(ms)}`
      const rows = await matching(query)
        .select([bucket.as('bucket'), 'outcome', (eb) => eb.fn.countAll().as('n')])
        .groupBy([bucket, 'outcome'])
        .execute()
      return rows.map((row) => ({
        start: Number(row.bucket) * ms,
        outcome: row.outcome as AuditOutcome,
        count: Number(row.n),
      }))
    },

    async prune(maxAgeSeconds: number): Promise<number> {
      if (!Number.isFinite(maxAgeSeconds) || maxAgeSeconds < 0) {
        throw new TesseraError('invalid_argument', 'maxAgeSeconds must be a non-negative number')
      }
      const result = await db
        .deleteFrom('audit_events')
        .where('at', '<', now() - maxAgeSeconds * 1000)
        .executeTakeFirst()
      return Number(result.numDeletedRows)
    },
  }
}
