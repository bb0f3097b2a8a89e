import { sql, type CompiledQuery, type Selectable } from 'kysely'
import { TesseraError } from '../core/errors.js'
import type { AuditLog, RequestContext } from './audit.js'
import { directReader, isUniqueViolation, type TesseraDB } from './db/database.js'
import { newId } from './db/ids.js'
import { toBool, toMillis, toMillisOrNull, type UsersTable } from './db/schema.js'
import { normalizeEmail, parseEmail } from './email.js'
import { applyPasswordChange } from './reset.js'

/** An account, without its password hash. Times are epoch milliseconds. */
export interface User {
  id: string
  /** The normalised e-mail. */
  email: string
  isAdmin: boolean
  isActive: boolean
  createdAt: number
  lastLoginAt: number | null
  passwordChangedAt: number | null
}

/** A user with the names of their groups and the codenames granted to them (directly or through a group). */
export interface UserWithPermissions extends User {
  groups: string[]
  permissions: string[]
}

/** A group of users sharing permissions. */
export interface Group {
  id: string
  name: string
  createdAt: number
}

/** A permission codename (`app.action`) with its description. */
export interface Permission {
  codename: string
  description: string
}

/**
 * What the accounts layer needs from the session layer: ending every session of a user.
 * The session manager (`createSessionManager`) satisfies it.
 */
export interface SessionRevoker {
  /** Deletes every session of the user; returns how many. */
  revokeAll(userId: string): Promise<number>
}

/** Options of {@link createAccounts}. */
export interface AccountsOptions {
  /** Ends sessions when a user is disabled, deleted or their password changes. */
  sessions: SessionRevoker
  /** Where security events go; none recorded when absent. */
  audit?: AuditLog
  /** @default Date.now */
  now?: () => number
}

/** Fields of a new user. Anything else is ignored. */
export interface CreateUserInput {
  email: string
  /** An already-hashed password (see `hashPassword`); omit for an account without one. */
  passwordHash?: string | null
  /** @default false */
  isAdmin?: boolean
  /** @default true */
  isActive?: boolean
}

/** Filters and paging for {@link Accounts.listUsers}. */
export interface ListUsersOptions {
  /** Substring of the e-mail (normalised like e-mails; `%` and `_` match literally). */
  search?: string
  /** @default 50 (at most 500) */
  limit?: number
  /** @default 0 */
  offset?: number
}

/** Who did something and from where, for the audit log. */
export interface ActionContext extends RequestContext {
  /** The user performing an administrative action, when not the subject themself. */
  actorId?: string | undefined
}

/** Users, groups and permissions over the accounts database. */
export interface Accounts {
  createUser(input: CreateUserInput, context?: ActionContext): Promise<User>
  findUserById(id: string): Promise<User | null>
  /** Looks up by e-mail after normalisation; `null` for an unknown or malformed address. */
  findUserByEmail(email: string): Promise<User | null>
  listUsers(options?: ListUsersOptions): Promise<{ users: User[]; total: number }>
  /** Marks the user inactive and revokes all their sessions. False when there is no such user. */
  disableUser(id: string, context?: ActionContext): Promise<boolean>
  enableUser(id: string, context?: ActionContext): Promise<boolean>
  /** Deletes the user (groups, grants and reset tokens with it) and revokes all their sessions. */
  deleteUser(id: string, context?: ActionContext): Promise<boolean>
  setAdmin(id: string, options: { isAdmin: boolean }, context?: ActionContext): Promise<boolean>

  /** The stored hash for login; `null` for an unknown user or one without a password. */
  getPasswordHash(userId: string): Promise<string | null>
  /**
   * The user and stored hash for an e-mail in one query (login: known and unknown e-mails cost
   * the same number of queries). `null` for an unknown or malformed address.
   */
  findCredentialsByEmail(email: string): Promise<{ user: User; passwordHash: string | null } | null>
  /**
   * Sets a new password hash: a password change. In the same transaction every unused reset
   * token of the user is voided and `password_changed_at` is set. Does not touch sessions.
   */
  setPasswordHash(userId: string, passwordHash: string): Promise<boolean>
  /**
   * Replaces the hash of the same password by a stronger one (rehash on login). Conditional on
   * the old hash still being stored, so it never overwrites a concurrent password change.
   */
  upgradePasswordHash(userId: string, oldHash: string, newHash: string): Promise<boolean>
  recordLogin(userId: string): Promise<void>

  createGroup(name: string, context?: ActionContext): Promise<Group>
  findGroupByName(name: string): Promise<Group | null>
  listGroups(): Promise<Group[]>
  deleteGroup(id: string, context?: ActionContext): Promise<boolean>
  addUserToGroup(userId: string, groupId: string, context?: ActionContext): Promise<void>
  removeUserFromGroup(userId: string, groupId: string, context?: ActionContext): Promise<void>
  listUserGroups(userId: string): Promise<Group[]>

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
  /**
   * Django's rule: an inactive user has no permission; an active admin has every permission
   * (like `is_superuser`); anyone else has what is granted directly or through a group.
   */
  hasPermission(user: User | string, codename: string): Promise<boolean>
  getUserWithPermissions(userId: string): Promise<UserWithPermissions | null>
}

/** The `user` object of the HTTP API: ISO 8601 times, groups and permission codenames. */
export interface PublicUser {
  id: string
  email: string
  isAdmin: boolean
  createdAt: string
  groups: string[]
  permissions: string[]
}

/** The API shape of a user (`shared/API.md`): no hash, no internal flags beyond `isAdmin`. */
export function toPublicUser(user: UserWithPermissions): PublicUser {
  return {
    id: user.id,
    email: user.email,
    isAdmin: user.isAdmin,
    createdAt: new Date(user.createdAt).toISOString(),
    groups: [...user.groups],
    permissions: [...user.permissions],
  }
}

const CODENAME = /^[a-z][a-z0-9_-]{0,63}\.[a-z][a-z0-9_-]{0,99}$/
const GROUP_NAME_MAX = 150

/** Checks an `app.action` codename (lower case letters, digits, `_` and `-`). */
export function isPermissionCodename(codename: unknown): codename is string {
  return typeof codename === 'string' && CODENAME.test(codename)
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

function toUser(row: Selectable<UsersTable>): User {
  return {
    id: row.id,
    email: row.email,
    isAdmin: toBool(row.is_admin),
    isActive: toBool(row.is_active),
    createdAt: toMillis(row.created_at),
    lastLoginAt: toMillisOrNull(row.last_login_at),
    passwordChangedAt: toMillisOrNull(row.password_changed_at),
  }
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
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

const USER_COLUMNS = [
  'id',
  'email',
  'is_admin',
  'is_active',
  'created_at',
  'last_login_at',
  'password_changed_at',
] as const

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`)
}

/**
 * Users, groups and permissions (Django's model) over a migrated accounts database.
 *
 * @example
 * ```ts
 * const accounts = createAccounts(db, { sessions: manager, audit })
 * const editors = await accounts.createGroup('editors')
 * await accounts.grantGroupPermission(editors.id, 'posts.publish')
 * await accounts.addUserToGroup(user.id, editors.id)
 * await accounts.hasPermission(user, 'posts.publish') // true
 * ```
 */
export function createAccounts(db: TesseraDB, options: AccountsOptions): Accounts {
  const now = options.now ?? Date.now
  const { sessions, audit } = options

  let userWithPermissionsQuery: CompiledQuery<UserWithPermissionsRow> | undefined
  const direct = directReader(db)

  async function permissionChanged(
    detail: Record<string, string | boolean>,
    userId: string | null,
    context: ActionContext | undefined,
  ): Promise<void> {
    await audit?.record({
      type: 'permission_changed',
      outcome: 'success',
      userId,
      ip: context?.ip,
      userAgent: context?.userAgent,
      detail: context?.actorId === undefined ? detail : { ...detail, actorId: context.actorId },
    })
  }

  async function setActive(
    id: string,
    isActive: boolean,
    context?: ActionContext,
  ): Promise<boolean> {
    const result = await db
      .updateTable('users')
      .set({ is_active: isActive ? 1 : 0 })
      .where('id', '=', id)
      .executeTakeFirst()
    const found = result.numUpdatedRows > 0n
    // SECURITY: a disabled account keeps no live session (ASVS 3.3.1); revoke even if the row
    // was already inactive, so a retry after a failed revoke finishes the job.
    if (found && !isActive) await sessions.revokeAll(id)
    if (found) {
      await audit?.record({
        type: isActive ? 'user_enabled' : 'user_disabled',
        outcome: 'success',
        userId: id,
        ip: context?.ip,
        userAgent: context?.userAgent,
        ...(context?.actorId === undefined ? {} : { detail: { actorId: context.actorId } }),
      })
    }
    return found
  }

  const accounts: Accounts = {
    async createUser(input: CreateUserInput, context?: ActionContext): Promise<User> {
      const email = parseEmail(input.email)
      if (email === null) throw new TesseraError('invalid_argument', 'email is not a valid address')
      const at = now()
      const row = {
        id: newId(at),
        email,
        password_hash: input.passwordHash ?? null,
        is_admin: input.isAdmin === true ? 1 : 0,
        is_active: input.isActive === false ? 0 : 1,
        created_at: at,
        last_login_at: null,
        password_changed_at: input.passwordHash == null ? null : at,
      }
      try {
        await db.insertInto('users').values(row).execute()
      } catch (error) {
        if (isUniqueViolation(error)) {
          throw new TesseraError('conflict', 'an account with this email already exists', {
            cause: error,
          })
        }
        throw error
      }
      await audit?.record({
        type: 'user_created',
        outcome: 'success',
        userId: row.id,
        ip: context?.ip,
        userAgent: context?.userAgent,
        detail: {
          isAdmin: row.is_admin === 1,
          ...(context?.actorId ? { actorId: context.actorId } : {}),
        },
      })
      return toUser(row)
    },

    async findUserById(id: string): Promise<User | null> {
      const row = await db
        .selectFrom('users')
        .select(USER_COLUMNS)
        .where('id', '=', id)
        .executeTakeFirst()
      return row === undefined ? null : toUser({ ...row, password_hash: null })
    },

    async findUserByEmail(email: string): Promise<User | null> {
      const normalized = parseEmail(email)
      if (normalized === null) return null
      const row = await db
        .selectFrom('users')
        .select(USER_COLUMNS)
        .where('email', '=', normalized)
        .executeTakeFirst()
      return row === undefined ? null : toUser({ ...row, password_hash: null })
    },

    async listUsers(opts: ListUsersOptions = {}): Promise<{ users: User[]; total: number }> {
      const limit = opts.limit ?? 50
      const offset = opts.offset ?? 0
      if (!Number.isInteger(limit) || limit < 1 || !Number.isInteger(offset) || offset < 0) {
        throw new TesseraError('invalid_argument', 'limit must be >= 1 and offset >= 0 (integers)')
      }
      let base = db.selectFrom('users')
      if (opts.search !== undefined && opts.search !== '') {
        const pattern = `%${escapeLike(normalizeEmail(opts.search))}%`
        base = base.where(sql<boolean>`email like ${pattern} escape '\\'`)
      }
      const [rows, count] = await Promise.all([
        base
          .select(USER_COLUMNS)
          .orderBy('email')
          .limit(Math.min(limit, 500))
          .offset(offset)
          .execute(),
        base.select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow(),
      ])
      return {
        users: rows.map((row) => toUser({ ...row, password_hash: null })),
        total: Number(count.n),
      }
    },

    disableUser(id: string, context?: ActionContext): Promise<boolean> {
      return setActive(id, false, context)
    },

    enableUser(id: string, context?: ActionContext): Promise<boolean> {
      return setActive(id, true, context)
    },

    async deleteUser(id: string, context?: ActionContext): Promise<boolean> {
      const deleted = await db.transaction().execute(async (trx) => {
        // Explicit deletes: a user-supplied SQLite connection may run without foreign keys.
        await trx.deleteFrom('user_groups').where('user_id', '=', id).execute()
        await trx.deleteFrom('user_permissions').where('user_id', '=', id).execute()
        await trx.deleteFrom('password_reset_tokens').where('user_id', '=', id).execute()
        const result = await trx.deleteFrom('users').where('id', '=', id).executeTakeFirst()
        return result.numDeletedRows > 0n
      })
      // SECURITY: a deleted account keeps no live session; revoke whether or not the row was
      // still there (a retry after a failed revoke must finish the job).
      await sessions.revokeAll(id)
      if (deleted) {
        await audit?.record({
          type: 'user_deleted',
          outcome: 'success',
          userId: id,
          ip: context?.ip,
          userAgent: context?.userAgent,
          ...(context?.actorId === undefined ? {} : { detail: { actorId: context.actorId } }),
        })
      }
      return deleted
    },

    async setAdmin(
      id: string,
      opts: { isAdmin: boolean },
      context?: ActionContext,
    ): Promise<boolean> {
      const result = await db
        .updateTable('users')
        .set({ is_admin: opts.isAdmin ? 1 : 0 })
        .where('id', '=', id)
        .executeTakeFirst()
      const found = result.numUpdatedRows > 0n
      if (found)
        await permissionChanged({ change: 'set_admin', isAdmin: opts.isAdmin }, id, context)
      return found
    },

    async findCredentialsByEmail(
      email: string,
    ): Promise<{ user: User; passwordHash: string | null } | null> {
      const normalized = parseEmail(email)
      if (normalized === null) return null
      const row = await db
        .selectFrom('users')
        .selectAll()
        .where('email', '=', normalized)
        .executeTakeFirst()
      return row === undefined ? null : { user: toUser(row), passwordHash: row.password_hash }
    },

    async getPasswordHash(userId: string): Promise<string | null> {
      const row = await db
        .selectFrom('users')
        .select('password_hash')
        .where('id', '=', userId)
        .executeTakeFirst()
      return row?.password_hash ?? null
    },

    async setPasswordHash(userId: string, passwordHash: string): Promise<boolean> {
      const at = now()
      return db.transaction().execute((trx) => applyPasswordChange(trx, userId, passwordHash, at))
    },

    async upgradePasswordHash(userId: string, oldHash: string, newHash: string): Promise<boolean> {
      const result = await db
        .updateTable('users')
        .set({ password_hash: newHash })
        .where('id', '=', userId)
        .where('password_hash', '=', oldHash)
        .executeTakeFirst()
      return result.numUpdatedRows > 0n
    },

    async recordLogin(userId: string): Promise<void> {
      await db.updateTable('users').set({ last_login_at: now() }).where('id', '=', userId).execute()
    },

    async createGroup(name: string, context?: ActionContext): Promise<Group> {
      const trimmed = name.normalize('NFKC').trim()
      if (trimmed === '' || trimmed.length > GROUP_NAME_MAX) {
        throw new TesseraError(
          'invalid_argument',
          `group name must be 1 to ${GROUP_NAME_MAX} characters`,
        )
      }
      const at = now()
      const group = { id: newId(at), name: trimmed, created_at: at }
      try {
        await db.insertInto('groups').values(group).execute()
      } catch (error) {
        if (isUniqueViolation(error)) {
          throw new TesseraError('conflict', 'a group with this name already exists', {
            cause: error,
          })
        }
        throw error
      }
      await permissionChanged({ change: 'group_created', groupId: group.id }, null, context)
      return { id: group.id, name: group.name, createdAt: at }
    },

    async findGroupByName(name: string): Promise<Group | null> {
      const row = await db
        .selectFrom('groups')
        .selectAll()
        .where('name', '=', name.normalize('NFKC').trim())
        .executeTakeFirst()
      return row === undefined
        ? null
        : { id: row.id, name: row.name, createdAt: toMillis(row.created_at) }
    },

    async listGroups(): Promise<Group[]> {
      const rows = await db.selectFrom('groups').selectAll().orderBy('name').execute()
      return rows.map((row) => ({
        id: row.id,
        name: row.name,
        createdAt: toMillis(row.created_at),
      }))
    },

    async deleteGroup(id: string, context?: ActionContext): Promise<boolean> {
      const deleted = await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('user_groups').where('group_id', '=', id).execute()
        await trx.deleteFrom('group_permissions').where('group_id', '=', id).execute()
        const result = await trx.deleteFrom('groups').where('id', '=', id).executeTakeFirst()
        return result.numDeletedRows > 0n
      })
      if (deleted) await permissionChanged({ change: 'group_deleted', groupId: id }, null, context)
      return deleted
    },

    async addUserToGroup(userId: string, groupId: string, context?: ActionContext): Promise<void> {
      await db
        .insertInto('user_groups')
        .values({ user_id: userId, group_id: groupId })
        .onConflict((oc) => oc.doNothing())
        .execute()
      await permissionChanged({ change: 'group_added', groupId }, userId, context)
    },

    async removeUserFromGroup(
      userId: string,
      groupId: string,
      context?: ActionContext,
    ): Promise<void> {
      await db
        .deleteFrom('user_groups')
        .where('user_id', '=', userId)
        .where('group_id', '=', groupId)
        .execute()
      await permissionChanged({ change: 'group_removed', groupId }, userId, context)
    },

    async listUserGroups(userId: string): Promise<Group[]> {
      const rows = await db
        .selectFrom('groups')
        .innerJoin('user_groups', 'user_groups.group_id', 'groups.id')
        .select(['groups.id', 'groups.name', 'groups.created_at'])
        .where('user_groups.user_id', '=', userId)
        .orderBy('groups.name')
        .execute()
      return rows.map((row) => ({
        id: row.id,
        name: row.name,
        createdAt: toMillis(row.created_at),
      }))
    },

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
      if (deleted)
        await permissionChanged({ change: 'permission_deleted', codename }, null, context)
      return deleted
    },

    async grantPermission(
      userId: string,
      codename: string,
      context?: ActionContext,
    ): Promise<void> {
      requireCodename(codename)
      await accounts.definePermission(codename)
      await db
        .insertInto('user_permissions')
        .values({ user_id: userId, codename })
        .onConflict((oc) => oc.doNothing())
        .execute()
      await permissionChanged({ change: 'granted', codename }, userId, context)
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
      await permissionChanged({ change: 'revoked', codename }, userId, context)
    },

    async grantGroupPermission(
      groupId: string,
      codename: string,
      context?: ActionContext,
    ): Promise<void> {
      requireCodename(codename)
      await accounts.definePermission(codename)
      await db
        .insertInto('group_permissions')
        .values({ group_id: groupId, codename })
        .onConflict((oc) => oc.doNothing())
        .execute()
      await permissionChanged({ change: 'group_granted', groupId, codename }, null, context)
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
      await permissionChanged({ change: 'group_revoked', groupId, codename }, null, context)
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
      const fresh = await accounts.findUserById(typeof user === 'string' ? user : user.id)
      if (fresh === null || !fresh.isActive) return false
      if (fresh.isAdmin) return true
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
          password_changed_at
        from users where id = ${''}
        union all
        select 1, g.name, null, null, null, null, null, null
        from groups g inner join user_groups ug on ug.group_id = g.id where ug.user_id = ${''}
        union all
        select 2, codename, null, null, null, null, null, null
        from user_permissions where user_id = ${''}
        union all
        select 2, gp.codename, null, null, null, null, null, null
        from group_permissions gp inner join user_groups ug on ug.group_id = gp.group_id
        where ug.user_id = ${''}`.compile(db)
      const query = userWithPermissionsQuery
      const parameters = [userId, userId, userId, userId]
      const rows =
        (direct?.(query.sql, parameters) as UserWithPermissionsRow[] | undefined) ??
        (await db.executeQuery<UserWithPermissionsRow>({ ...query, parameters })).rows
      let user: User | null = null
      const groups: string[] = []
      const permissions = new Set<string>()
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
            password_hash: null,
          })
        } else if (kind === 1) groups.push(row.name)
        else permissions.add(row.name)
      }
      if (user === null) return null
      return {
        ...user,
        groups: groups.sort(compareText),
        permissions: [...permissions].sort(),
      }
    },
  }
  return accounts
}
