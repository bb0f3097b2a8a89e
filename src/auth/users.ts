import { sql, type Selectable } from 'kysely'
import { TesseraError } from '../core/errors.js'
import type { AuditLog, RequestContext } from './audit.js'
import { isUniqueViolation, type TesseraDB } from './db/database.js'
import { newId } from './db/ids.js'
import { toBool, toMillis, toMillisOrNull, type UsersTable } from './db/schema.js'
import { normalizeEmail, parseEmail } from './email.js'

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
  /** When the address was proved (a mailed link or code, or an administrator); null: never. */
  emailVerifiedAt: number | null
}

/**
 * What the accounts layer needs from the session layer: ending every session of a user.
 * The session manager (`createSessionManager`) satisfies it.
 */
export interface SessionRevoker {
  /** Deletes every session of the user; returns how many. */
  revokeAll(userId: string): Promise<number>
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

/** Filters and paging for {@link UserAccounts.listUsers}. */
export interface ListUsersOptions {
  /** Substring of the e-mail (normalised like e-mails; `%` and `_` match literally). */
  search?: string
  /** @default 50 (at most 500) */
  limit?: number
  /** @default 0 */
  offset?: number
  /**
   * `email`, or `recent_sign_in`: latest sign-in first (creation for one who never signed in),
   * as a list of who may have live sessions. @default 'email'
   */
  orderBy?: 'email' | 'recent_sign_in'
}

/** Who did something and from where, for the audit log. */
export interface ActionContext extends RequestContext {
  /** The user performing an administrative action, when not the subject themself. */
  actorId?: string | undefined
}

/** What the account modules share: the database, sessions to end, the audit log, the clock. */
export interface AccountsContext {
  db: TesseraDB
  sessions: SessionRevoker
  audit: AuditLog | undefined
  now: () => number
}

/** The users part of `Accounts`: create, find, list, disable, delete, promote. */
export interface UserAccounts {
  createUser(input: CreateUserInput, context?: ActionContext): Promise<User>
  findUserById(id: string): Promise<User | null>
  /** Looks up by e-mail after normalisation; `null` for an unknown or malformed address. */
  findUserByEmail(email: string): Promise<User | null>
  listUsers(options?: ListUsersOptions): Promise<{ users: User[]; total: number }>
  /** The e-mails of the users among `ids` that exist (to show people instead of ids). */
  findEmails(ids: readonly string[]): Promise<Map<string, string>>
  /** How many administrators exist (active or not). */
  countAdmins(): Promise<number>
  /** Marks the user inactive and revokes all their sessions. False when there is no such user. */
  disableUser(id: string, context?: ActionContext): Promise<boolean>
  enableUser(id: string, context?: ActionContext): Promise<boolean>
  /** Deletes the user (groups, grants and reset tokens with it) and revokes all their sessions. */
  deleteUser(id: string, context?: ActionContext): Promise<boolean>
  setAdmin(id: string, options: { isAdmin: boolean }, context?: ActionContext): Promise<boolean>
  recordLogin(userId: string): Promise<void>
}

/** The columns of a {@link User}: every column of `users` except the password hash. */
export const USER_COLUMNS = [
  'id',
  'email',
  'is_admin',
  'is_active',
  'created_at',
  'last_login_at',
  'password_changed_at',
  'email_verified_at',
] as const

/** A `users` row (with or without its hash) as a {@link User}. */
export function toUser(row: Omit<Selectable<UsersTable>, 'password_hash'>): User {
  return {
    id: row.id,
    email: row.email,
    isAdmin: toBool(row.is_admin),
    isActive: toBool(row.is_active),
    createdAt: toMillis(row.created_at),
    lastLoginAt: toMillisOrNull(row.last_login_at),
    passwordChangedAt: toMillisOrNull(row.password_changed_at),
    emailVerifiedAt: toMillisOrNull(row.email_verified_at ?? null),
  }
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`)
}

/** Records a change of who may do what (`permission_changed`), naming the acting administrator. */
export async function recordPermissionChange(
  audit: AuditLog | undefined,
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

/** The users functions of `createAccounts`. */
export function createUserAccounts(ctx: AccountsContext): UserAccounts {
  const { db, sessions, audit, now } = ctx

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

  return {
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
        email_verified_at: null,
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
      return row === undefined ? null : toUser(row)
    },

    async findUserByEmail(email: string): Promise<User | null> {
      const normalized = parseEmail(email)
      if (normalized === null) return null
      const row = await db
        .selectFrom('users')
        .select(USER_COLUMNS)
        .where('email', '=', normalized)
        .executeTakeFirst()
      return row === undefined ? null : toUser(row)
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
      const lastSeen = sql<number>`coalesce(${sql.ref('last_login_at')}, ${sql.ref('created_at')})`
      const ordered =
        opts.orderBy === 'recent_sign_in'
          ? base.select(USER_COLUMNS).orderBy(lastSeen, 'desc').orderBy('id')
          : base.select(USER_COLUMNS).orderBy('email')
      const [rows, count] = await Promise.all([
        ordered.limit(Math.min(limit, 500)).offset(offset).execute(),
        base.select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow(),
      ])
      return { users: rows.map(toUser), total: Number(count.n) }
    },

    async findEmails(ids: readonly string[]): Promise<Map<string, string>> {
      const unique = [...new Set(ids)]
      if (unique.length === 0) return new Map()
      const rows = await db
        .selectFrom('users')
        .select(['id', 'email'])
        .where('id', 'in', unique)
        .execute()
      return new Map(rows.map((row) => [row.id, row.email]))
    },

    async countAdmins(): Promise<number> {
      const row = await db
        .selectFrom('users')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('is_admin', '=', 1)
        .executeTakeFirstOrThrow()
      return Number(row.n)
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
      if (found) {
        await recordPermissionChange(
          audit,
          { change: 'set_admin', isAdmin: opts.isAdmin },
          id,
          context,
        )
      }
      return found
    },

    async recordLogin(userId: string): Promise<void> {
      await db.updateTable('users').set({ last_login_at: now() }).where('id', '=', userId).execute()
    },
  }
}
