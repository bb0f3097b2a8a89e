import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { TesseraDB } from './db/database.js'
import { newId } from './db/ids.js'
import type { TesseraDatabase } from './db/schema.js'

/** What a mailed link is for. */
export type EmailTokenPurpose = 'verify' | 'change' | 'report'

/** The address a consumed link was about, and whose it is. */
export interface ConsumedEmailToken {
  userId: string
  email: string
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/
const CODE_SHAPE = /^[0-9]{8}$/

/** Wrong tries after which a sign-in code is dead. */
export const MAX_CODE_ATTEMPTS = 5

/** True when `token` has the shape of a mailed link's token (43 base64url characters). */
export function isEmailTokenShape(token: unknown): token is string {
  return typeof token === 'string' && TOKEN_SHAPE.test(token)
}

/** True when `code` has the shape of a sign-in code (8 digits). */
export function isSignInCodeShape(code: unknown): code is string {
  return typeof code === 'string' && CODE_SHAPE.test(code)
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('base64url')
}

/**
 * Creates a link token for `purpose` and stores its hash; returns the token, which from here on
 * exists only in the mail.
 */
export async function issueEmailToken(
  db: TesseraDB,
  input: {
    userId: string
    purpose: EmailTokenPurpose
    email: string
    now: number
    ttlSeconds: number
  },
): Promise<string> {
  // SECURITY: 256 bits from the CSPRNG; only SHA-256(token) is stored, so a database leak
  // yields no usable link (ASVS 2.5.x, as the reset tokens).
  const token = randomBytes(32).toString('base64url')
  await db
    .insertInto('email_tokens')
    .values({
      id: newId(input.now),
      token_hash: sha256(token),
      user_id: input.userId,
      purpose: input.purpose,
      email: input.email,
      created_at: input.now,
      expires_at: input.now + input.ttlSeconds * 1000,
      used_at: null,
    })
    .execute()
  return token
}

/** The live, unused token of `purpose` without consuming it (the page that shows a button). */
export async function peekEmailToken(
  db: TesseraDB,
  token: string,
  purpose: EmailTokenPurpose,
  now: number,
): Promise<ConsumedEmailToken | null> {
  if (!isEmailTokenShape(token)) return null
  const row = await db
    .selectFrom('email_tokens')
    .select(['user_id', 'email'])
    .where('token_hash', '=', sha256(token))
    .where('purpose', '=', purpose)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst()
  return row === undefined ? null : { userId: row.user_id, email: row.email }
}

/**
 * Consumes a live token of `purpose`: a conditional UPDATE (`used_at IS NULL AND expires_at >
 * now`), so of two concurrent uses exactly one wins. `null` for unknown, used, expired, voided or
 * malformed tokens.
 */
export async function consumeEmailToken(
  db: Kysely<TesseraDatabase>,
  token: string,
  purpose: EmailTokenPurpose,
  now: number,
): Promise<ConsumedEmailToken | null> {
  if (!isEmailTokenShape(token)) return null
  const row = await db
    .updateTable('email_tokens')
    .set({ used_at: now })
    .where('token_hash', '=', sha256(token))
    .where('purpose', '=', purpose)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .returning(['user_id', 'email'])
    .executeTakeFirst()
  return row === undefined ? null : { userId: row.user_id, email: row.email }
}

/** Voids every unused secret of the user for the given purposes; returns how many. */
export async function voidEmailTokens(
  db: Kysely<TesseraDatabase>,
  userId: string,
  purposes: ReadonlyArray<EmailTokenPurpose | 'code'>,
  now: number,
): Promise<number> {
  const result = await db
    .updateTable('email_tokens')
    .set({ used_at: now })
    .where('user_id', '=', userId)
    .where('purpose', 'in', [...purposes])
    .where('used_at', 'is', null)
    .executeTakeFirst()
  return Number(result.numUpdatedRows)
}

/**
 * A new 8-digit sign-in code for the user, replacing any earlier one (only the newest mail
 * works). Stored as SHA-256 of `id:code`; returns the code.
 */
export async function issueSignInCode(
  db: TesseraDB,
  input: { userId: string; email: string; now: number; ttlSeconds: number },
): Promise<string> {
  // SECURITY: uniform over 10^8 from the CSPRNG (randomInt rejects modulo bias).
  const code = String(randomInt(0, 100_000_000)).padStart(8, '0')
  const id = newId(input.now)
  await db.transaction().execute(async (trx) => {
    await voidEmailTokens(trx, input.userId, ['code'], input.now)
    await trx
      .insertInto('email_tokens')
      .values({
        id,
        token_hash: sha256(`${id}:${code}`),
        user_id: input.userId,
        purpose: 'code',
        email: input.email,
        created_at: input.now,
        expires_at: input.now + input.ttlSeconds * 1000,
        used_at: null,
        attempts: 0,
      })
      .execute()
  })
  return code
}

/** How a try at a sign-in code ended. */
export type SignInCodeCheck =
  { ok: true; email: string } | { ok: false; reason: 'no_code' | 'wrong_code' }

/**
 * Tries `code` against the user's live code. Each try first takes one of the code's
 * {@link MAX_CODE_ATTEMPTS} tries by a conditional UPDATE, so concurrent guesses cannot share
 * one; the fifth wrong try kills the code; the right one consumes it.
 */
export async function checkSignInCode(
  db: TesseraDB,
  userId: string,
  code: string,
  now: number,
): Promise<SignInCodeCheck> {
  // SECURITY: the try is counted before the comparison, atomically (PostgreSQL re-checks the
  // condition after the row lock; SQLite serialises writers): at most 5 guesses per code,
  // however many arrive at once (ASVS 2.7.x, NIST SP 800-63B 5.2.2).
  const taken = await db
    .updateTable('email_tokens')
    .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
    .where('user_id', '=', userId)
    .where('purpose', '=', 'code')
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .where('attempts', '<', MAX_CODE_ATTEMPTS)
    .returning(['id', 'token_hash', 'attempts', 'email'])
    .executeTakeFirst()
  if (taken === undefined) return { ok: false, reason: 'no_code' }
  const given = Buffer.from(sha256(`${taken.id}:${isSignInCodeShape(code) ? code : ''}`))
  const stored = Buffer.from(taken.token_hash)
  if (given.length === stored.length && timingSafeEqual(given, stored)) {
    const used = await db
      .updateTable('email_tokens')
      .set({ used_at: now })
      .where('id', '=', taken.id)
      .where('used_at', 'is', null)
      .executeTakeFirst()
    if (Number(used.numUpdatedRows) === 1) return { ok: true, email: taken.email }
    return { ok: false, reason: 'no_code' }
  }
  if (Number(taken.attempts) >= MAX_CODE_ATTEMPTS) {
    await db
      .updateTable('email_tokens')
      .set({ used_at: now })
      .where('id', '=', taken.id)
      .where('used_at', 'is', null)
      .execute()
  }
  return { ok: false, reason: 'wrong_code' }
}

/** Deletes expired and used secrets; returns how many. */
export async function pruneEmailTokens(db: TesseraDB, now: number): Promise<number> {
  const result = await db
    .deleteFrom('email_tokens')
    .where((eb) => eb.or([eb('expires_at', '<=', now), eb('used_at', 'is not', null)]))
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}
