import type { ColumnType } from 'kysely'

/**
 * A time in epoch milliseconds. Stored as `bigint` (PostgreSQL `int8`, SQLite `INTEGER`).
 * node-postgres returns `int8` as a string by default, so reads are typed `number | string`
 * and always go through {@link toMillis}; writes take a number.
 */
export type Millis = ColumnType<number | string, number, number>

/** Same as {@link Millis} for a nullable column. */
export type NullableMillis = ColumnType<number | string | null, number | null, number | null>

/**
 * A boolean stored as an integer 0 or 1 on both databases (SQLite has no boolean type; one
 * representation keeps every query the same). Read through {@link toBool}.
 */
export type Flag = ColumnType<number, number | undefined, number>

/** The `users` table. One row per account; credentials other than a password come later. */
export interface UsersTable {
  /** Opaque id: a UUIDv7 as text (see `newId`). */
  id: string
  /** Normalised e-mail (see `normalizeEmail`); unique. */
  email: string
  /** PHC (or imported legacy) hash string; null for an account without a password. */
  password_hash: string | null
  is_admin: Flag
  is_active: Flag
  created_at: Millis
  last_login_at: NullableMillis
  password_changed_at: NullableMillis
}

/** The `groups` table. */
export interface GroupsTable {
  id: string
  name: string
  created_at: Millis
}

/** The `permissions` table: one row per `app.action` codename. */
export interface PermissionsTable {
  codename: string
  description: ColumnType<string, string | undefined, string>
  created_at: Millis
}

/** Membership of a user in a group. */
export interface UserGroupsTable {
  user_id: string
  group_id: string
}

/** A permission granted to a group. */
export interface GroupPermissionsTable {
  group_id: string
  codename: string
}

/** A permission granted to a user directly. */
export interface UserPermissionsTable {
  user_id: string
  codename: string
}

/** Password reset tokens, stored only as SHA-256 of the token. */
export interface PasswordResetTokensTable {
  /** base64url SHA-256 of the token. */
  token_hash: string
  user_id: string
  created_at: Millis
  expires_at: Millis
  /** Set once, by the conditional UPDATE that consumes the token (or voids it). */
  used_at: NullableMillis
}

/** The audit log. `user_id` has no foreign key so events outlive a deleted user. */
export interface AuditEventsTable {
  /** UUIDv7: sorts by creation time, the tie-breaker for events in the same millisecond. */
  id: string
  at: Millis
  type: string
  user_id: string | null
  ip: string | null
  user_agent: string | null
  outcome: string
  /** JSON object with non-secret details, or null. */
  detail: string | null
}

/**
 * An account's identity at an identity provider (`identities`, migration 0005): unique per
 * (`provider`, `subject`).
 */
export interface IdentitiesTable {
  /** UUIDv7. */
  id: string
  user_id: string
  /** The configured provider name (`google`, `github`, ...). */
  provider: string
  /** The provider's stable id of the person (`sub`; GitHub's numeric user id). */
  subject: string
  /** The address the provider last gave; display and audit only, never used to match. */
  email: string | null
  /** 1 when the provider said the address is verified (`email_verified: true`). */
  email_verified: Flag
  created_at: Millis
  last_used_at: NullableMillis
}

/** Every table tessera's accounts layer uses, for `Kysely<TesseraDatabase>`. */
export interface TesseraDatabase {
  users: UsersTable
  groups: GroupsTable
  permissions: PermissionsTable
  user_groups: UserGroupsTable
  group_permissions: GroupPermissionsTable
  user_permissions: UserPermissionsTable
  password_reset_tokens: PasswordResetTokensTable
  audit_events: AuditEventsTable
  identities: IdentitiesTable
}

/** Converts a stored time (number on SQLite, string from pg `int8`) to epoch milliseconds. */
export function toMillis(value: number | string | bigint): number {
  return typeof value === 'number' ? value : Number(value)
}

/** Same as {@link toMillis}, keeping null. */
export function toMillisOrNull(value: number | string | bigint | null): number | null {
  return value === null ? null : toMillis(value)
}

/** Converts a stored 0/1 flag to a boolean. */
export function toBool(value: number | string | boolean): boolean {
  return value === true || value === 1 || value === '1'
}
