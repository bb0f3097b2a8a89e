import type { Transaction } from 'kysely'
import type { TesseraDatabase } from './db/schema.js'

/**
 * The ways an account can sign in: a password, identities at identity providers, passkeys.
 * Read inside the transaction that removes one (after it has taken the account's lock, as
 * `identities.unlink` and passkey removal do), so "never the last way in" is decided on what
 * that transaction sees.
 */
export interface WaysIn {
  password: boolean
  identities: number
  passkeys: number
}

/**
 * Takes the account's row lock inside `trx` (a no-op write: PostgreSQL locks the row, SQLite's
 * write transaction is already exclusive). Every removal of a way in takes it before any read,
 * so two concurrent removals of an account's last two ways in are decided one after the other
 * and cannot both pass the check (write skew).
 */
export async function lockAccount(
  trx: Transaction<TesseraDatabase>,
  userId: string,
): Promise<void> {
  await trx
    .updateTable('users')
    .set((eb) => ({ is_active: eb.ref('is_active') }))
    .where('id', '=', userId)
    .execute()
}

/** Counts the ways in of `userId` inside `trx`. */
export async function waysIn(trx: Transaction<TesseraDatabase>, userId: string): Promise<WaysIn> {
  const user = await trx
    .selectFrom('users')
    .select('password_hash')
    .where('id', '=', userId)
    .executeTakeFirst()
  const identities = await trx
    .selectFrom('identities')
    .select((eb) => eb.fn.countAll<number | string>().as('count'))
    .where('user_id', '=', userId)
    .executeTakeFirstOrThrow()
  const passkeys = await trx
    .selectFrom('passkeys')
    .select((eb) => eb.fn.countAll<number | string>().as('count'))
    .where('user_id', '=', userId)
    .executeTakeFirstOrThrow()
  return {
    password: (user?.password_hash ?? null) !== null,
    identities: Number(identities.count),
    passkeys: Number(passkeys.count),
  }
}

/** How many ways in are left once one identity or one passkey is removed. */
export function waysLeft(ways: WaysIn, removing: 'identity' | 'passkey'): number {
  return (
    (ways.password ? 1 : 0) +
    ways.identities -
    (removing === 'identity' ? 1 : 0) +
    ways.passkeys -
    (removing === 'passkey' ? 1 : 0)
  )
}
