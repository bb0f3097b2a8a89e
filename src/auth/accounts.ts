import type { AuditLog } from './audit.js'
import type { TesseraDB } from './db/database.js'
import { createGroupAccounts, type GroupAccounts } from './groups.js'
import {
  createPermissionAccounts,
  type PermissionAccounts,
  type UserWithPermissions,
} from './permissions.js'
import { createUserAccounts, type SessionRevoker, type UserAccounts } from './users.js'

export {
  isPermissionCodename,
  userHasPermission,
  type Permission,
  type PermissionAccounts,
  type UserWithPermissions,
} from './permissions.js'
export type { Group, GroupAccounts } from './groups.js'
export type {
  ActionContext,
  CreateUserInput,
  ListUsersOptions,
  SessionRevoker,
  User,
  UserAccounts,
} from './users.js'

/** Options of {@link createAccounts}. */
export interface AccountsOptions {
  /**
   * Ends every session of a user who is disabled or deleted. (A password change ends sessions
   * too, but that is the password operation's job: `changePassword` keeps the caller's
   * session, a reset or `setPassword` ends them all; see `createCredentials`.)
   */
  sessions: SessionRevoker
  /** Where security events go; none recorded when absent. */
  audit?: AuditLog
  /** @default Date.now */
  now?: () => number
}

/**
 * Users, groups and permissions over the accounts database: the three concepts of
 * `users.ts`, `groups.ts` and `permissions.ts` in one object. It never hands out a password
 * hash: those live in the credentials module (`createCredentials`), which only sign-in and
 * password-setting code uses.
 */
export interface Accounts extends UserAccounts, GroupAccounts, PermissionAccounts {}

/** The `user` object of the HTTP API: ISO 8601 times, groups and permission codenames. */
export interface PublicUser {
  id: string
  email: string
  /** True once the address was proved (API.md). */
  emailVerified: boolean
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
    emailVerified: user.emailVerifiedAt !== null,
    isAdmin: user.isAdmin,
    createdAt: new Date(user.createdAt).toISOString(),
    groups: [...user.groups],
    permissions: [...user.permissions],
  }
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
  const context = {
    db,
    sessions: options.sessions,
    audit: options.audit,
    now: options.now ?? Date.now,
  }
  return {
    ...createUserAccounts(context),
    ...createGroupAccounts(context),
    ...createPermissionAccounts(context),
  }
}
