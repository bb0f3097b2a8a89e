/*
 * The panel's reads that the accounts and audit services do not offer yet, in one place so that
 * no route holds raw Kysely. Each belongs in a service (accounts: direct permissions, group grants
 * and member counts, the admin count; audit: counting events) and moves there once the accounts
 * split has landed (docs/decisions.md, "Admin panel").
 */
import type { TesseraDB } from '../../auth/db/database.js'

/** The panel's own reads over the accounts database. */
export interface AdminQueries {
  /** How many administrators exist (active or not). */
  countAdmins(): Promise<number>
  /** Failed logins (API and panel) at or after `since` (epoch ms). */
  countFailedLogins(since: number): Promise<number>
  /** Codenames granted to the user directly (not through a group), sorted. */
  directPermissions(userId: string): Promise<string[]>
  /** Codenames granted to the group directly. */
  groupPermissions(groupId: string): Promise<string[]>
  /** Every group grant, sorted by codename. */
  groupGrants(): Promise<Array<{ groupId: string; codename: string }>>
  /** Members per group id (groups without members are absent). */
  memberCounts(): Promise<Map<string, number>>
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
        .where('outcome', '=', 'failure')
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
  }
}
