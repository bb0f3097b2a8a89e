import type { TesseraDB } from './db/database.js'
import { parseEmail } from './email.js'
import { applyPasswordChange } from './reset.js'
import { toUser, type User } from './users.js'

/**
 * Password hashes of accounts: the only module that reads or writes `users.password_hash`.
 * Sign-in (`createSignIn`), password change and reset, and the administrator's or CLI's
 * set-password use it; the public `Accounts` interface never hands out a hash.
 */
export interface Credentials {
  /**
   * The user and stored hash for an e-mail in one query (sign-in: known and unknown e-mails
   * cost the same number of queries). `null` for an unknown or malformed address.
   */
  findCredentialsByEmail(email: string): Promise<{ user: User; passwordHash: string | null } | null>
  /** The stored hash; `null` for an unknown user or one without a password. */
  getPasswordHash(userId: string): Promise<string | null>
  /**
   * Sets a new password hash: a password change. In the same transaction every unused reset
   * token of the user is voided and `password_changed_at` is set. It ends no session: the
   * operation that calls it decides which survive (`changePassword` keeps the caller's,
   * a reset or an administrator's `setPassword` ends them all).
   */
  setPasswordHash(userId: string, passwordHash: string): Promise<boolean>
  /**
   * Replaces the hash of the same password by a stronger one (rehash on sign-in). Conditional
   * on the old hash still being stored, so it never overwrites a concurrent password change.
   */
  upgradePasswordHash(userId: string, oldHash: string, newHash: string): Promise<boolean>
}

/**
 * The password-hash store over a migrated accounts database.
 *
 * @example
 * ```ts
 * const credentials = createCredentials(db)
 * await credentials.setPasswordHash(user.id, await hashPassword(newPassword))
 * await sessions.revokeAll(user.id) // a password set for someone ends their sessions
 * ```
 */
export function createCredentials(
  db: TesseraDB,
  options: { now?: () => number } = {},
): Credentials {
  const now = options.now ?? Date.now
  return {
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
  }
}
