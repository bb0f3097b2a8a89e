import type { Insertable, Selectable } from 'kysely'
import type { AuditLog, RequestContext } from './audit.js'
import { isUniqueViolation, type TesseraDB } from './db/database.js'
import { newId } from './db/ids.js'
import { toBool, toMillis, toMillisOrNull, type IdentitiesTable } from './db/schema.js'
import type { ActionContext } from './users.js'
import { lockAccount, waysIn, waysLeft } from './ways-in.js'

/** An account's identity at an identity provider. Times are epoch milliseconds. */
export interface Identity {
  id: string
  userId: string
  /** The configured provider name (`google`, `github`, ...). */
  provider: string
  /** The provider's stable id of the person (`sub`). */
  subject: string
  /** The address the provider last gave, for display; never used to find an account. */
  email: string | null
  emailVerified: boolean
  createdAt: number
  lastUsedAt: number | null
}

/** The API shape of an identity (`GET /auth/identities`). */
export interface PublicIdentity {
  id: string
  provider: string
  subject: string
  email: string | null
  createdAt: string
}

/** What a provider said about the person who signed in there. */
export interface ProviderIdentity {
  provider: string
  subject: string
  email: string | null
  emailVerified: boolean
}

/** The outcome of {@link Identities.link}. */
export type LinkResult =
  | { ok: true; identity: Identity; created: boolean }
  | { ok: false; code: 'conflict'; reason: 'identity_in_use' }

/** The outcome of {@link Identities.unlink}. */
export type UnlinkResult =
  | { ok: true; identity: Identity }
  | { ok: false; code: 'not_found' }
  | { ok: false; code: 'conflict'; reason: 'last_sign_in_method' }

/** The identities of accounts: find by provider and subject, list, link, unlink. */
export interface Identities {
  /** The identity a provider's (provider, subject) names, or `null`. */
  find(provider: string, subject: string): Promise<Identity | null>
  /** The user's identities, oldest first. */
  listByUser(userId: string): Promise<Identity[]>
  /**
   * Links an identity to `userId`. Already linked to this user: its e-mail is refreshed and
   * `created` is false. Linked to another account: refused (`identity_in_use`), nothing
   * changes. Audited as `identity_linked` when it is new.
   */
  link(userId: string, identity: ProviderIdentity, context?: ActionContext): Promise<LinkResult>
  /**
   * Creates an account without a password and its first identity, in one transaction: a
   * sign-up through a provider. `conflict` when the e-mail is taken by another account or the
   * identity by another account (a concurrent sign-up): nothing is created.
   */
  createAccount(
    email: string,
    identity: ProviderIdentity,
  ): Promise<{ ok: true; userId: string; identity: Identity } | { ok: false; code: 'conflict' }>
  /** Records a sign-in with the identity: `last_used_at`, and the e-mail the provider gave now. */
  touch(identity: Identity, given: ProviderIdentity): Promise<void>
  /**
   * Removes one of the user's identities. Refused with `last_sign_in_method` when the account
   * would be left with no way to sign in (no password and no other identity); another user's
   * identity is `not_found`. Audited as `identity_unlinked` (with `actorId` for an
   * administrator).
   */
  unlink(userId: string, identityId: string, context?: ActionContext): Promise<UnlinkResult>
}

/** The API shape of an identity: ISO 8601 times. */
export function toPublicIdentity(identity: Identity): PublicIdentity {
  return {
    id: identity.id,
    provider: identity.provider,
    subject: identity.subject,
    email: identity.email,
    createdAt: new Date(identity.createdAt).toISOString(),
  }
}

function toIdentity(row: Selectable<IdentitiesTable>): Identity {
  return {
    id: row.id,
    userId: row.user_id,
    provider: row.provider,
    subject: row.subject,
    email: row.email,
    emailVerified: toBool(row.email_verified),
    createdAt: toMillis(row.created_at),
    lastUsedAt: toMillisOrNull(row.last_used_at),
  }
}

function requestOf(context: RequestContext | undefined): RequestContext {
  return { ip: context?.ip, userAgent: context?.userAgent }
}

/**
 * The identities table (migration 0005) over a migrated accounts database.
 *
 * @example
 * ```ts
 * const identities = createIdentities(db, { audit })
 * const found = await identities.find('google', claims.sub)
 * ```
 */
export function createIdentities(
  db: TesseraDB,
  options: { audit?: AuditLog | undefined; now?: (() => number) | undefined } = {},
): Identities {
  const now = options.now ?? Date.now
  const audit = options.audit

  async function find(provider: string, subject: string): Promise<Identity | null> {
    const row = await db
      .selectFrom('identities')
      .selectAll()
      .where('provider', '=', provider)
      .where('subject', '=', subject)
      .executeTakeFirst()
    return row === undefined ? null : toIdentity(row)
  }

  function newRow(
    userId: string,
    given: ProviderIdentity,
    at: number,
  ): Insertable<IdentitiesTable> & Selectable<IdentitiesTable> {
    return {
      id: newId(at),
      user_id: userId,
      provider: given.provider,
      subject: given.subject,
      email: given.email,
      email_verified: given.emailVerified ? 1 : 0,
      created_at: at,
      last_used_at: at,
    }
  }

  return {
    find,

    async listByUser(userId: string): Promise<Identity[]> {
      const rows = await db
        .selectFrom('identities')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('created_at')
        .orderBy('id')
        .execute()
      return rows.map(toIdentity)
    },

    async link(userId, given, context): Promise<LinkResult> {
      const existing = await find(given.provider, given.subject)
      if (existing !== null) {
        // SECURITY: an identity belongs to one account; linking it elsewhere would let whoever
        // holds the provider account into both (and take one of them over).
        if (existing.userId !== userId)
          return { ok: false, code: 'conflict', reason: 'identity_in_use' }
        return { ok: true, identity: existing, created: false }
      }
      const row = newRow(userId, given, now())
      try {
        await db.insertInto('identities').values(row).execute()
      } catch (error) {
        if (!isUniqueViolation(error)) throw error
        // Linked by a concurrent request: to this user is fine, to another is refused.
        const raced = await find(given.provider, given.subject)
        if (raced?.userId === userId) return { ok: true, identity: raced, created: false }
        return { ok: false, code: 'conflict', reason: 'identity_in_use' }
      }
      const identity = toIdentity(row)
      await audit?.record({
        type: 'identity_linked',
        outcome: 'success',
        userId,
        ...requestOf(context),
        detail: {
          provider: given.provider,
          identityId: identity.id,
          ...(context?.actorId === undefined ? {} : { actorId: context.actorId }),
        },
      })
      return { ok: true, identity, created: true }
    },

    async createAccount(email, given) {
      const at = now()
      const userId = newId(at)
      const row = newRow(userId, given, at)
      try {
        await db.transaction().execute(async (trx) => {
          await trx
            .insertInto('users')
            .values({
              id: userId,
              email,
              password_hash: null,
              is_admin: 0,
              is_active: 1,
              created_at: at,
            })
            .execute()
          await trx.insertInto('identities').values(row).execute()
        })
      } catch (error) {
        if (isUniqueViolation(error)) return { ok: false, code: 'conflict' }
        throw error
      }
      return { ok: true, userId, identity: toIdentity(row) }
    },

    async touch(identity, given): Promise<void> {
      await db
        .updateTable('identities')
        .set({
          last_used_at: now(),
          email: given.email,
          email_verified: given.emailVerified ? 1 : 0,
        })
        .where('id', '=', identity.id)
        .execute()
    },

    async unlink(userId, identityId, context): Promise<UnlinkResult> {
      const outcome = await db.transaction().execute(async (trx): Promise<UnlinkResult> => {
        // SECURITY: a no-op write first takes the account's row lock (PostgreSQL) or the
        // database's write lock (SQLite; before any read, so two writers queue rather than
        // deadlock): two concurrent unlinks of the last two identities are decided one after
        // the other and cannot both pass the check below (write skew).
        await lockAccount(trx, userId)
        const row = await trx
          .selectFrom('identities')
          .selectAll()
          .where('id', '=', identityId)
          .where('user_id', '=', userId)
          .executeTakeFirst()
        if (row === undefined) return { ok: false, code: 'not_found' }
        // SECURITY: never leave an account no way in (API.md: the last way to sign in cannot be
        // removed): a password, another identity or a passkey must remain.
        if (waysLeft(await waysIn(trx, userId), 'identity') === 0) {
          return { ok: false, code: 'conflict', reason: 'last_sign_in_method' }
        }
        const deleted = await trx
          .deleteFrom('identities')
          .where('id', '=', identityId)
          .where('user_id', '=', userId)
          .executeTakeFirst()
        if (deleted.numDeletedRows === 0n) return { ok: false, code: 'not_found' }
        return { ok: true, identity: toIdentity(row) }
      })
      if (outcome.ok || outcome.code === 'conflict') {
        await audit?.record({
          type: 'identity_unlinked',
          outcome: outcome.ok ? 'success' : 'denied',
          userId,
          ...requestOf(context),
          detail: {
            identityId,
            ...(outcome.ok ? { provider: outcome.identity.provider } : { reason: outcome.reason }),
            ...(context?.actorId === undefined ? {} : { actorId: context.actorId }),
          },
        })
      }
      return outcome
    },
  }
}
