import { createHash, randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { TesseraDB } from './db/database.js'
import type { TesseraDatabase } from './db/schema.js'

/** Default reset token lifetime: 30 minutes, in seconds. */
export const RESET_TOKEN_TTL_SECONDS = 30 * 60

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/

/** SHA-256 of a reset token, base64url: the only form the database ever holds. */
export function hashResetToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url')
}

/** True when `token` has the shape of a reset token (43 base64url characters). */
export function isResetTokenShape(token: unknown): token is string {
  return typeof token === 'string' && TOKEN_SHAPE.test(token)
}

/**
 * Creates a reset token for a user and stores its hash. Returns the token, which exists only
 * in the e-mail from here on.
 */
export async function issueResetToken(
  db: TesseraDB,
  userId: string,
  options: { now: number; ttlSeconds: number },
): Promise<string> {
  // SECURITY: 256 bits from the CSPRNG; only SHA-256(token) is stored, so a database leak does
  // not yield usable links (ASVS 2.5.x, OWASP Forgot Password cheat sheet).
  const token = randomBytes(32).toString('base64url')
  await db
    .insertInto('password_reset_tokens')
    .values({
      token_hash: hashResetToken(token),
      user_id: userId,
      created_at: options.now,
      expires_at: options.now + options.ttlSeconds * 1000,
      used_at: null,
    })
    .execute()
  return token
}

/** The user a live, unused token belongs to (an active user), or `null`. Does not consume it. */
export async function peekResetToken(
  db: TesseraDB,
  token: string,
  now: number,
): Promise<string | null> {
  if (!isResetTokenShape(token)) return null
  const row = await db
    .selectFrom('password_reset_tokens')
    .innerJoin('users', 'users.id', 'password_reset_tokens.user_id')
    .select('password_reset_tokens.user_id')
    .where('password_reset_tokens.token_hash', '=', hashResetToken(token))
    .where('password_reset_tokens.used_at', 'is', null)
    .where('password_reset_tokens.expires_at', '>', now)
    .where('users.is_active', '=', 1)
    .executeTakeFirst()
  return row?.user_id ?? null
}

/**
 * Writes a new password hash as a password change: sets `password_changed_at` and voids every
 * unused reset token of the user. Run it inside a transaction with whatever else must be atomic.
 */
export async function applyPasswordChange(
  db: Kysely<TesseraDatabase>,
  userId: string,
  passwordHash: string,
  now: number,
): Promise<boolean> {
  const result = await db
    .updateTable('users')
    .set({ password_hash: passwordHash, password_changed_at: now })
    .where('id', '=', userId)
    .executeTakeFirst()
  // SECURITY: any password change voids every outstanding reset token.
  await db
    .updateTable('password_reset_tokens')
    .set({ used_at: now })
    .where('user_id', '=', userId)
    .where('used_at', 'is', null)
    .execute()
  return result.numUpdatedRows > 0n
}

/**
 * Consumes a token and sets the new password in one transaction. Returns the user id, or
 * `null` when the token is unknown, expired, used, voided, or its user inactive.
 *
 * The token is consumed by a conditional UPDATE (`used_at IS NULL AND expires_at > now`): of two
 * concurrent uses exactly one updates the row (PostgreSQL re-checks the condition after the row
 * lock; SQLite serialises writers), and the loser changes nothing.
 */
export async function consumeResetToken(
  db: TesseraDB,
  token: string,
  passwordHash: string,
  now: number,
): Promise<string | null> {
  if (!isResetTokenShape(token)) return null
  const tokenHash = hashResetToken(token)
  return db.transaction().execute(async (trx) => {
    const consumed = await trx
      .updateTable('password_reset_tokens')
      .set({ used_at: now })
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .returning('user_id')
      .executeTakeFirst()
    if (consumed === undefined) return null
    const user = await trx
      .selectFrom('users')
      .select('is_active')
      .where('id', '=', consumed.user_id)
      .executeTakeFirst()
    if (user === undefined || Number(user.is_active) !== 1) {
      // Leaves the token consumed: a disabled account cannot be reopened through a reset.
      return null
    }
    await applyPasswordChange(trx, consumed.user_id, passwordHash, now)
    return consumed.user_id
  })
}

/** Deletes expired and used tokens older than `now`; returns how many. */
export async function pruneResetTokens(db: TesseraDB, now: number): Promise<number> {
  const result = await db
    .deleteFrom('password_reset_tokens')
    .where((eb) => eb.or([eb('expires_at', '<=', now), eb('used_at', 'is not', null)]))
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}
