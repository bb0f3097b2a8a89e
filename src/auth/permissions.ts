import { sql, type CompiledQuery, type Selectable } from 'kysely'
import { TesseraError } from '../core/errors.js'
import { directReader } from './db/database.js'
import { toBool, type UsersTable } from './db/schema.js'
import {
  recordPermissionChange,
  toUser,
  type AccountsContext,
  type ActionContext,
  type User,
} from './users.js'

/** A user with the names of their groups and the codenames granted to them (directly or through a group). */
export interface UserWithPermissions extends User {
  groups: string[]
  permissions: string[]
}

/** A permission codename (`app.action`) with its description. */
export interface Permission {
  codename: string
  description: string
}

/** The permissions part of `Accounts`: codenames, grants, and Django's rule for checking them. */
export interface PermissionAccounts {
  /** Creates the permission, or updates its description when it exists. */
  definePermission(codename: string, options?: { description?: string }): Promise<Permission>
  listPermissions(): Promise<Permission[]>
  deletePermission(codename: string, context?: ActionContext): Promise<boolean>
  /** Grants to a user directly; defines the permission when needed. */
  grantPermission(userId: string, codename: string, context?: ActionContext): Promise<void>
  revokePermission(userId: string, codename: string, context?: ActionContext): Promise<void>
  grantGroupPermission(groupId: string, codename: string, context?: ActionContext): Promise<void>
  revokeGroupPermission(groupId: string, codename: string, context?: ActionContext): Promise<void>
  /** Codenames granted to the user directly or through groups (sorted, unique). */
  getUserPermissions(userId: string): Promise<string[]>
  /** Codenames granted to the user directly, not through a group (sorted). */
  listDirectPermissions(userId: string): Promise<string[]>
  /** The codenames granted to each group, by group id (sorted; groups without any are absent). */
  listGroupPermissions(): Promise<Map<string, string[]>>
  /**
   * Django's rule: an inactive user has no permission; an active admin has every permission
   * (like `is_superuser`); anyone else has what is granted directly or through a group.
   */
  hasPermission(user: User | string, codename: string): Promise<boolean>
  getUserWithPermissions(userId: string): Promise<UserWithPermissions | null>
}

const CODENAME = /^[a-z][a-z0-9_-]{0,63}\.[a-z][a-z0-9_-]{0,99}$/

/** Checks an `app.action` codename (lower case letters, digits, `_` and `-`). */
export function isPermissionCodename(codename: unknown): codename is string {
  return typeof codename === 'string' && CODENAME.test(codename)
}

/**
 * Django's rule for a user already read with their grants: an inactive user has no permission,
 * an active admin has every one, anyone else what is granted directly or through a group.
 */
export function userHasPermission(user: UserWithPermissions, codename: string): boolean {
  if (!isPermissionCodename(codename) || !user.isActive) return false
  return user.isAdmin || user.permissions.includes(codename)
}

function requireCodename(codename: string): string {
  if (!isPermissionCodename(codename)) {
    throw new TesseraError(
      'invalid_argument',
      'permission codename must look like app.action (lower case letters, digits, _ or -)',
    )
  }
  return codename
}

/** A row of the one query behind `getUserWithPermissions` (`k`: 0 user, 1 group, 2 permission). */
interface UserWithPermissionsRow {
  k: number | string
  /** The user id (k = 0), a group name (1) or a permission codename (2). */
  name: string
  email: string | null
  is_admin: Selectable<UsersTable>['is_admin'] | null
  is_active: Selectable<UsersTable>['is_active'] | null
  created_at: Selectable<UsersTable>['created_at'] | null
  last_login_at: Selectable<UsersTable>['last_login_at']
  password_changed_at: Selectable<UsersTable>['password_changed_at']
  email_verified_at: Selectable<UsersTable>['email_verified_at']
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** The permissions functions of `createAccounts`. */
export function createPermissionAccounts(ctx: AccountsContext): PermissionAccounts {
  const { db, audit, now } = ctx
  let userWithPermissionsQuery: CompiledQuery<UserWithPermissionsRow> | undefined
  const direct = directReader(db)

  const permissions: PermissionAccounts = {
    async definePermission(
      codename: string,
      opts: { description?: string } = {},
    ): Promise<Permission> {
      requireCodename(codename)
      const description = opts.description ?? ''
      await db
        .insertInto('permissions')
        .values({ codename, description, created_at: now() })
        .onConflict((oc) =>
          opts.description === undefined
            ? oc.column('codename').doNothing()
            : oc.column('codename').doUpdateSet({ description }),
        )
        .execute()
      const row = await db
        .selectFrom('permissions')
        .select(['codename', 'description'])
        .where('codename', '=', codename)
        .executeTakeFirstOrThrow()
      return row
    },

    async listPermissions(): Promise<Permission[]> {
      return db
        .selectFrom('permissions')
        .select(['codename', 'description'])
        .orderBy('codename')
        .execute()
    },

    async deletePermission(codename: string, context?: ActionContext): Promise<boolean> {
      const deleted = await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('user_permissions').where('codename', '=', codename).execute()
        await trx.deleteFrom('group_permissions').where('codename', '=', codename).execute()
        const result = await trx
          .deleteFrom('permissions')
          .where('codename', '=', codename)
          .executeTakeFirst()
        return result.numDeletedRows > 0n
      })
      if (deleted) {
        await recordPermissionChange(
          audit,
          { change: 'permission_deleted', codename },
          null,
          context,
        )
      }
      return deleted
    },

    async grantPermission(
      userId: string,
      codename: string,
      context?: ActionContext,
    ): Promise<void> {
      requireCodename(codename)
      await permissions.definePermission(codename)
      await db
        .insertInto('user_permissions')
        .values({ user_id: userId, codename })
        .onConflict((oc) => oc.doNothing())
        .execute()
      await recordPermissionChange(audit, { change: 'granted', codename }, userId, context)
    },

    async revokePermission(
      userId: string,
      codename: string,
      context?: ActionContext,
    ): Promise<void> {
      await db
        .deleteFrom('user_permissions')
        .where('user_id', '=', userId)
        .where('codename', '=', codename)
        .execute()
      await recordPermissionChange(audit, { change: 'revoked', codename }, userId, context)
    },

    async grantGroupPermission(
      groupId: string,
      codename: string,
      context?: ActionContext,
    ): Promise<void> {
      requireCodename(codename)
      await permissions.definePermission(codename)
      await db
        .insertInto('group_permissions')
        .values({ group_id: groupId, codename })
        .onConflict((oc) => oc.doNothing())
        .execute()
      await recordPermissionChange(
        audit,
        { change: 'group_granted', groupId, codename },
        null,
        context,
      )
    },

    async revokeGroupPermission(
      groupId: string,
      codename: string,
      context?: ActionContext,
    ): Promise<void> {
      await db
        .deleteFrom('group_permissions')
        .where('group_id', '=', groupId)
        .where('codename', '=', codename)
        .execute()
      await recordPermissionChange(
        audit,
        { change: 'group_revoked', groupId, codename },
        null,
        context,
      )
    },

    async listDirectPermissions(userId: string): Promise<string[]> {
      const rows = await db
        .selectFrom('user_permissions')
        .select('codename')
        .where('user_id', '=', userId)
        .orderBy('codename')
        .execute()
      return rows.map((row) => row.codename)
    },

    async listGroupPermissions(): Promise<Map<string, string[]>> {
      const rows = await db
        .selectFrom('group_permissions')
        .select(['group_id', 'codename'])
        .orderBy('codename')
        .execute()
      const grants = new Map<string, string[]>()
      for (const row of rows) {
        const list = grants.get(row.group_id)
        if (list === undefined) grants.set(row.group_id, [row.codename])
        else list.push(row.codename)
      }
      return grants
    },

    async getUserPermissions(userId: string): Promise<string[]> {
      const rows = await db
        .selectFrom('user_permissions')
        .select('codename')
        .where('user_id', '=', userId)
        .union(
          db
            .selectFrom('group_permissions')
            .innerJoin('user_groups', 'user_groups.group_id', 'group_permissions.group_id')
            .select('group_permissions.codename')
            .where('user_groups.user_id', '=', userId),
        )
        .execute()
      return [...new Set(rows.map((row) => row.codename))].sort()
    },

    async hasPermission(user: User | string, codename: string): Promise<boolean> {
      if (!isPermissionCodename(codename)) return false
      // SECURITY: re-read the flags rather than trust a possibly stale User object passed in,
      // so a disable or demotion takes effect at once.
      const fresh = await db
        .selectFrom('users')
        .select(['id', 'is_admin', 'is_active'])
        .where('id', '=', typeof user === 'string' ? user : user.id)
        .executeTakeFirst()
      if (fresh === undefined || !toBool(fresh.is_active)) return false
      if (toBool(fresh.is_admin)) return true
      const row = await db
        .selectFrom('user_permissions')
        .select('codename')
        .where('user_id', '=', fresh.id)
        .where('codename', '=', codename)
        .union(
          db
            .selectFrom('group_permissions')
            .innerJoin('user_groups', 'user_groups.group_id', 'group_permissions.group_id')
            .select('group_permissions.codename')
            .where('user_groups.user_id', '=', fresh.id)
            .where('group_permissions.codename', '=', codename),
        )
        .executeTakeFirst()
      return row !== undefined
    },

    async getUserWithPermissions(userId: string): Promise<UserWithPermissions | null> {
      // The hot path of every authenticated request: one statement, compiled once, for the
      // user, their groups and their permissions (direct and through groups). Nothing is cached
      // across requests, so a disable, demotion or revoked permission counts at the next one.
      userWithPermissionsQuery ??= sql<UserWithPermissionsRow>`
        select 0 as k, id as name, email, is_admin, is_active, created_at, last_login_at,
          password_changed_at, email_verified_at
        from users where id = ${''}
        union all
        select 1, g.name, null, null, null, null, null, null, null
        from groups g inner join user_groups ug on ug.group_id = g.id where ug.user_id = ${''}
        union all
        select 2, codename, null, null, null, null, null, null, null
        from user_permissions where user_id = ${''}
        union all
        select 2, gp.codename, null, null, null, null, null, null, null
        from group_permissions gp inner join user_groups ug on ug.group_id = gp.group_id
        where ug.user_id = ${''}`.compile(db)
      const query = userWithPermissionsQuery
      const parameters = [userId, userId, userId, userId]
      const rows =
        (direct?.(query.sql, parameters) as UserWithPermissionsRow[] | undefined) ??
        (await db.executeQuery<UserWithPermissionsRow>({ ...query, parameters })).rows
      let user: User | null = null
      const groups: string[] = []
      const granted = new Set<string>()
      for (const row of rows) {
        const kind = Number(row.k)
        if (kind === 0) {
          user = toUser({
            id: row.name,
            email: row.email ?? '',
            is_admin: row.is_admin ?? 0,
            is_active: row.is_active ?? 0,
            created_at: row.created_at ?? 0,
            last_login_at: row.last_login_at,
            password_changed_at: row.password_changed_at,
            email_verified_at: row.email_verified_at,
          })
        } else if (kind === 1) groups.push(row.name)
        else granted.add(row.name)
      }
      if (user === null) return null
      return {
        ...user,
        groups: groups.sort(compareText),
        permissions: [...granted].sort(),
      }
    },
  }
  return permissions
}
