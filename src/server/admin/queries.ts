/*
 * The panel's reads that the accounts and audit services do not offer yet, in one place so that
 * no route holds raw Kysely. Each belongs in a service (accounts: direct permissions, group grants
 * and member counts, the admin count; audit: counting events) and moves there once the accounts
 * split has landed (docs/decisions.md, "Admin panel").
 */
import { sql } from 'kysely'
import type { TesseraDB } from '../../auth/db/database.js'
import { TesseraError } from '../../core/errors.js'

/** The panel's own reads over the accounts database. */
export interface AdminQueries {
  /** How many administrators exist (active or not). */
  countAdmins(): Promise<number>
  /** Logins (API and panel) that did not sign anyone in, at or after `since` (epoch ms). */
  countFailedLogins(since: number): Promise<number>
  /** Codenames granted to the user directly (not through a group), sorted. */
  directPermissions(userId: string): Promise<string[]>
  /** Codenames granted to the group directly. */
  groupPermissions(groupId: string): Promise<string[]>
  /** Every group grant, sorted by codename. */
  groupGrants(): Promise<Array<{ groupId: string; codename: string }>>
  /** Members per group id (groups without members are absent). */
  memberCounts(): Promise<Map<string, number>>
  /**
   * Logins (API and panel) at or after `since`, counted per time bucket of `bucketMs` (bucket
   * `n` covers `[n * bucketMs, (n + 1) * bucketMs)`, UTC-aligned) and per result: `success`, or
   * `failure` for every other outcome (a wrong password, a refused account).
   */
  loginCounts(
    since: number,
    bucketMs: number,
  ): Promise<Array<{ bucket: number; result: 'success' | 'failure'; count: number }>>
  /** The e-mails of the users among `ids` that exist. */
  emailsOf(ids: readonly string[]): Promise<Map<string, string>>
  /**
   * Users by their latest sign-in (or creation, for one who never signed in), newest first: the
   * candidates of the active-sessions view.
   */
  usersBySignIn(limit: number, offset: number): Promise<Array<{ id: string; email: string }>>
}

/** How many administrators exist (active or not). */
export async function countAdmins(db: TesseraDB): Promise<number> {
  const row = await db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('is_admin', '=', 1)
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

/** The panel's reads over `db`. */
export function createAdminQueries(db: TesseraDB): AdminQueries {
  return {
    countAdmins: () => countAdmins(db),

    async countFailedLogins(since) {
      const row = await db
        .selectFrom('audit_events')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('type', '=', 'login')
        .where('outcome', '!=', 'success')
        .where('at', '>=', since)
        .executeTakeFirstOrThrow()
      return Number(row.n)
    },

    async directPermissions(userId) {
      const rows = await db
        .selectFrom('user_permissions')
        .select('codename')
        .where('user_id', '=', userId)
        .orderBy('codename')
        .execute()
      return rows.map((row) => row.codename)
    },

    async groupPermissions(groupId) {
      const rows = await db
        .selectFrom('group_permissions')
        .select('codename')
        .where('group_id', '=', groupId)
        .execute()
      return rows.map((row) => row.codename)
    },

    async groupGrants() {
      const rows = await db
        .selectFrom('group_permissions')
        .select(['group_id', 'codename'])
        .orderBy('codename')
        .execute()
      return rows.map((row) => ({ groupId: row.group_id, codename: row.codename }))
    },

    async memberCounts() {
      const rows = await db
        .selectFrom('user_groups')
        .select(['group_id', (eb) => eb.fn.countAll().as('n')])
        .groupBy('group_id')
        .execute()
      return new Map(rows.map((row) => [row.group_id, Number(row.n)]))
    },

    async loginCounts(since, bucketMs) {
      if (!Number.isSafeInteger(bucketMs) || bucketMs < 1) {
        throw new TesseraError(
          'invalid_argument',
          'loginCounts: bucketMs must be a positive integer',
        )
      }
      // Integer division on both databases (bigint / integer in PostgreSQL); the divisor is our
      // own integer constant, inlined so PostgreSQL does not have to guess a parameter's type.
      const bucket = sql<number | string>`${sql.ref('at')} / ${sql.lit(bucketMs)}`
      const result = sql<string>`case when ${sql.ref('outcome')} = 'success' then 'success' else 'failure' end`
      const rows = await db
        .selectFrom('audit_events')
        .select([bucket.as('bucket'), result.as('result'), (eb) => eb.fn.countAll().as('n')])
        .where('type', '=', 'login')
        .where('at', '>=', since)
        .groupBy([bucket, result])
        .execute()
      return rows.map((row) => ({
        bucket: Number(row.bucket),
        result: row.result === 'success' ? 'success' : 'failure',
        count: Number(row.n),
      }))
    },

    async emailsOf(ids) {
      const unique = [...new Set(ids)]
      if (unique.length === 0) return new Map()
      const rows = await db
        .selectFrom('users')
        .select(['id', 'email'])
        .where('id', 'in', unique)
        .execute()
      return new Map(rows.map((row) => [row.id, row.email]))
    },

    async usersBySignIn(limit, offset) {
      const lastSeen = sql<number>`coalesce(${sql.ref('last_login_at')}, ${sql.ref('created_at')})`
      return db
        .selectFrom('users')
        .select(['id', 'email'])
        .orderBy(lastSeen, 'desc')
        .orderBy('id')
        .limit(limit)
        .offset(offset)
        .execute()
    },
  }
}
