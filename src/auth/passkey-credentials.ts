import type { Selectable } from 'kysely'
import type { TesseraDB } from './db/database.js'
import { newId } from './db/ids.js'
import { toBool, toMillis, toMillisOrNull, type PasskeysTable } from './db/schema.js'
import { isUniqueViolation } from './db/database.js'
import { lockAccount, waysIn, waysLeft } from './ways-in.js'

/** A user's passkey as tessera keeps it (the public key is not part of what it shows). */
export interface Passkey {
  /** Opaque id (not the WebAuthn credential id): what the API and the admin panel name. */
  id: string
  userId: string
  /** The WebAuthn credential id, base64url. */
  credentialId: string
  name: string
  /** The transports the browser reported at registration (`internal`, `hybrid`, `usb`, ...). */
  transports: string[]
  /** `multiDevice` for a synced passkey, `singleDevice` for one bound to its authenticator. */
  deviceType: 'singleDevice' | 'multiDevice'
  /** Whether it is backed up (synced), as of its last use. */
  backedUp: boolean
  /** The authenticator model's AAGUID (all zeros when it does not say). */
  aaguid: string | null
  /** The last signature counter seen; 0 for authenticators that keep none. */
  counter: number
  createdAt: number
  lastUsedAt: number | null
}

/** A passkey with its public key: what verification needs. */
export interface StoredPasskey extends Passkey {
  /** The COSE public key. */
  publicKey: Uint8Array<ArrayBuffer>
}

/** What a verified registration gives to store. */
export interface NewPasskey {
  userId: string
  credentialId: string
  publicKey: Uint8Array
  counter: number
  transports: readonly string[]
  deviceType: 'singleDevice' | 'multiDevice'
  backedUp: boolean
  aaguid: string | null
  name: string
}

/** The `passkeys` table (migration 0007): the only module that reads or writes it. */
export interface PasskeyCredentials {
  /** Stores a new passkey; `null` when its credential id is already registered (to anyone). */
  insert(passkey: NewPasskey): Promise<Passkey | null>
  /** The passkey with this WebAuthn credential id, with its public key. */
  findByCredentialId(credentialId: string): Promise<StoredPasskey | null>
  /** The user's passkeys, oldest first. */
  listByUser(userId: string): Promise<Passkey[]>
  countByUser(userId: string): Promise<number>
  /**
   * Records a use: the new counter, backup state and last-used time, only if the stored counter
   * is still `expectedCounter` (compare-and-set: of two uses racing with one counter, one wins).
   */
  recordUse(
    id: string,
    expectedCounter: number,
    use: { counter: number; backedUp: boolean; at: number },
  ): Promise<boolean>
  /** Renames the user's passkey; false when it is not theirs or gone. */
  rename(userId: string, id: string, name: string): Promise<boolean>
  /**
   * Deletes the user's passkey: the deleted row, `null` when it is not theirs or gone, or
   * `'last_sign_in_method'` when it is the account's only way to sign in (nothing is deleted).
   */
  remove(userId: string, id: string): Promise<Passkey | 'last_sign_in_method' | null>
}

const ID_PATTERN = /^[0-9a-f-]{36}$/

function parseTransports(text: string): string[] {
  try {
    const value: unknown = JSON.parse(text)
    return Array.isArray(value) ? value.filter((t): t is string => typeof t === 'string') : []
  } catch {
    return []
  }
}

function toPasskey(row: Selectable<PasskeysTable>): Passkey {
  return {
    id: row.id,
    userId: row.user_id,
    credentialId: row.credential_id,
    name: row.name,
    transports: parseTransports(row.transports),
    deviceType: row.device_type === 'multiDevice' ? 'multiDevice' : 'singleDevice',
    backedUp: toBool(row.backed_up),
    aaguid: row.aaguid,
    counter: toMillis(row.counter),
    createdAt: toMillis(row.created_at),
    lastUsedAt: toMillisOrNull(row.last_used_at),
  }
}

/**
 * The passkeys of accounts over a migrated accounts database (SQLite or PostgreSQL).
 */
export function createPasskeyCredentials(
  db: TesseraDB,
  options: { now?: () => number } = {},
): PasskeyCredentials {
  const now = options.now ?? Date.now
  return {
    async insert(passkey): Promise<Passkey | null> {
      const at = now()
      const row = {
        id: newId(at),
        user_id: passkey.userId,
        credential_id: passkey.credentialId,
        public_key: Buffer.from(passkey.publicKey).toString('base64url'),
        counter: passkey.counter,
        transports: JSON.stringify(passkey.transports),
        device_type: passkey.deviceType,
        backed_up: passkey.backedUp ? 1 : 0,
        aaguid: passkey.aaguid,
        name: passkey.name,
        created_at: at,
        last_used_at: null,
      }
      try {
        await db.insertInto('passkeys').values(row).execute()
      } catch (error) {
        if (isUniqueViolation(error)) return null
        throw error
      }
      return toPasskey(row)
    },

    async findByCredentialId(credentialId): Promise<StoredPasskey | null> {
      const row = await db
        .selectFrom('passkeys')
        .selectAll()
        .where('credential_id', '=', credentialId)
        .executeTakeFirst()
      if (row === undefined) return null
      return {
        ...toPasskey(row),
        publicKey: new Uint8Array(Buffer.from(row.public_key, 'base64url')),
      }
    },

    async listByUser(userId): Promise<Passkey[]> {
      const rows = await db
        .selectFrom('passkeys')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('created_at')
        .orderBy('id')
        .execute()
      return rows.map(toPasskey)
    },

    async countByUser(userId): Promise<number> {
      const row = await db
        .selectFrom('passkeys')
        .select((eb) => eb.fn.countAll<number | string>().as('count'))
        .where('user_id', '=', userId)
        .executeTakeFirst()
      return Number(row?.count ?? 0)
    },

    async recordUse(id, expectedCounter, use): Promise<boolean> {
      const result = await db
        .updateTable('passkeys')
        .set({ counter: use.counter, backed_up: use.backedUp ? 1 : 0, last_used_at: use.at })
        .where('id', '=', id)
        .where('counter', '=', expectedCounter)
        .executeTakeFirst()
      return result.numUpdatedRows > 0n
    },

    async rename(userId, id, name): Promise<boolean> {
      if (!ID_PATTERN.test(id)) return false
      const result = await db
        .updateTable('passkeys')
        .set({ name })
        .where('id', '=', id)
        .where('user_id', '=', userId)
        .executeTakeFirst()
      return result.numUpdatedRows > 0n
    },

    async remove(userId, id): Promise<Passkey | 'last_sign_in_method' | null> {
      if (!ID_PATTERN.test(id)) return null
      return db.transaction().execute(async (trx) => {
        // SECURITY: the account's row lock first (as identities.unlink takes it), so two
        // removals of the last two ways in are decided one after the other (write skew).
        await lockAccount(trx, userId)
        const row = await trx
          .selectFrom('passkeys')
          .selectAll()
          .where('id', '=', id)
          .where('user_id', '=', userId)
          .executeTakeFirst()
        if (row === undefined) return null
        // SECURITY: never the last way to sign in: a password, an identity or another passkey
        // must remain (an account made through an identity provider has no password).
        if (waysLeft(await waysIn(trx, userId), 'passkey') === 0) return 'last_sign_in_method'
        await trx
          .deleteFrom('passkeys')
          .where('id', '=', id)
          .where('user_id', '=', userId)
          .execute()
        return toPasskey(row)
      })
    },
  }
}
