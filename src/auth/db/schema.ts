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
  /** When the address was proved by a mailed link or code (migration 0006); null: never. */
  email_verified_at: ColumnType<number | string | null, number | null | undefined, number | null>
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

/**
 * Secrets mailed to an address (migration 0006), stored only as SHA-256: verification links
 * (`verify`), confirmations of a new address (`change`), the old address's report link
 * (`report`) and one-time sign-in codes (`code`).
 */
export interface EmailTokensTable {
  /** UUIDv7. */
  id: string
  /** base64url SHA-256 of the token (of `id:code` for a code); not unique for codes. */
  token_hash: string
  user_id: string
  purpose: 'verify' | 'change' | 'report' | 'code'
  /** The address the secret is about: verified, changed to, or (report) the old one. */
  email: string
  created_at: Millis
  expires_at: Millis
  /** Set once: used, voided, or (a code) dead after its last wrong try. */
  used_at: NullableMillis
  /** Tries at a code so far. */
  attempts: ColumnType<number, number | undefined, number>
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

/** A user's WebAuthn credential (a passkey); see docs/passkeys.md. */
export interface PasskeysTable {
  /** Opaque id (UUIDv7), the one the API and the admin panel show. */
  id: string
  user_id: string
  /** The credential id as the browser sends it (base64url); unique across users. */
  credential_id: string
  /** The COSE public key, base64url. */
  public_key: string
  /** The last signature counter the authenticator reported (0 for most synced passkeys). */
  counter: ColumnType<number | string, number | undefined, number>
  /** JSON array of the transports the browser reported (`internal`, `hybrid`, `usb`, ...). */
  transports: string
  /** `singleDevice` or `multiDevice` (a synced passkey). */
  device_type: string
  /** Whether the credential is backed up (synced) as of its last use. */
  backed_up: Flag
  aaguid: string | null
  /** A name the user chose, e.g. "Laptop". */
  name: string
  created_at: Millis
  last_used_at: NullableMillis
}

/** A user's TOTP authenticator (issue 13): pending until `confirmed_at` is set. */
export interface MFATotpTable {
  user_id: string
  /** The base32 secret sealed with the keyring purpose `mfa-totp`; never stored in clear. */
  secret_sealed: string
  created_at: Millis
  confirmed_at: NullableMillis
  /** The last accepted RFC 6238 time step, moved forward only by a conditional UPDATE. */
  last_step: NullableMillis
}

/** One recovery code, stored only as SHA-256; `used_at` is set once by a conditional UPDATE. */
export interface MFARecoveryCodesTable {
  code_hash: string
  user_id: string
  created_at: Millis
  used_at: NullableMillis
}

/** The second step of a sign-in: a challenge stored as SHA-256 of its opaque value. */
export interface MFAChallengesTable {
  id_hash: string
  user_id: string
  /** What the first step would have given: `login` (a session cookie) or `token`. */
  purpose: string
  /** The pipeline's `SignInContinuation`, JSON. */
  continuation: string
  created_at: Millis
  expires_at: Millis
  attempts: ColumnType<number, number | undefined, number>
  /** Set while one request verifies a code with it (compare-and-set), cleared on a wrong code. */
  claimed_at: NullableMillis
  used_at: NullableMillis
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
  email_tokens: EmailTokensTable
  audit_events: AuditEventsTable
  passkeys: PasskeysTable
  mfa_totp: MFATotpTable
  mfa_recovery_codes: MFARecoveryCodesTable
  mfa_challenges: MFAChallengesTable
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
