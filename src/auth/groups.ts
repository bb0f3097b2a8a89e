import { TesseraError } from '../core/errors.js'
import { isUniqueViolation } from './db/database.js'
import { newId } from './db/ids.js'
import { toMillis } from './db/schema.js'
import { recordPermissionChange, type AccountsContext, type ActionContext } from './users.js'

/** A group of users sharing permissions. */
export interface Group {
  id: string
  name: string
  createdAt: number
}

/** The groups part of `Accounts`: groups and who is in them. */
export interface GroupAccounts {
  createGroup(name: string, context?: ActionContext): Promise<Group>
  findGroupByName(name: string): Promise<Group | null>
  listGroups(): Promise<Group[]>
  deleteGroup(id: string, context?: ActionContext): Promise<boolean>
  addUserToGroup(userId: string, groupId: string, context?: ActionContext): Promise<void>
  removeUserFromGroup(userId: string, groupId: string, context?: ActionContext): Promise<void>
  listUserGroups(userId: string): Promise<Group[]>
  /** Members per group id (groups without members are absent). */
  countMembers(): Promise<Map<string, number>>
}

const GROUP_NAME_MAX = 150

/** The groups functions of `createAccounts`. */
export function createGroupAccounts(ctx: AccountsContext): GroupAccounts {
  const { db, audit, now } = ctx

  return {
    async createGroup(name: string, context?: ActionContext): Promise<Group> {
      const trimmed = name.normalize('NFKC').trim()
      if (trimmed === '' || trimmed.length > GROUP_NAME_MAX) {
        throw new TesseraError(
          'invalid_argument',
          `group name must be 1 to ${GROUP_NAME_MAX} characters`,
        )
      }
      const at = now()
      const group = { id: newId(at), name: trimmed, created_at: at }
      try {
        await db.insertInto('groups').values(group).execute()
      } catch (error) {
        if (isUniqueViolation(error)) {
          throw new TesseraError('conflict', 'a group with this name already exists', {
            cause: error,
          })
        }
        throw error
      }
      await recordPermissionChange(
        audit,
        { change: 'group_created', groupId: group.id },
        null,
        context,
      )
      return { id: group.id, name: group.name, createdAt: at }
    },

    async findGroupByName(name: string): Promise<Group | null> {
      const row = await db
        .selectFrom('groups')
        .selectAll()
        .where('name', '=', name.normalize('NFKC').trim())
        .executeTakeFirst()
      return row === undefined
        ? null
        : { id: row.id, name: row.name, createdAt: toMillis(row.created_at) }
    },

    async listGroups(): Promise<Group[]> {
      const rows = await db.selectFrom('groups').selectAll().orderBy('name').execute()
      return rows.map((row) => ({
        id: row.id,
        name: row.name,
        createdAt: toMillis(row.created_at),
      }))
    },

    async deleteGroup(id: string, context?: ActionContext): Promise<boolean> {
      const deleted = await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('user_groups').where('group_id', '=', id).execute()
        await trx.deleteFrom('group_permissions').where('group_id', '=', id).execute()
        const result = await trx.deleteFrom('groups').where('id', '=', id).executeTakeFirst()
        return result.numDeletedRows > 0n
      })
      if (deleted) {
        await recordPermissionChange(audit, { change: 'group_deleted', groupId: id }, null, context)
      }
      return deleted
    },

    async addUserToGroup(userId: string, groupId: string, context?: ActionContext): Promise<void> {
      await db
        .insertInto('user_groups')
        .values({ user_id: userId, group_id: groupId })
        .onConflict((oc) => oc.doNothing())
        .execute()
      await recordPermissionChange(audit, { change: 'group_added', groupId }, userId, context)
    },

    async removeUserFromGroup(
      userId: string,
      groupId: string,
      context?: ActionContext,
    ): Promise<void> {
      await db
        .deleteFrom('user_groups')
        .where('user_id', '=', userId)
        .where('group_id', '=', groupId)
        .execute()
      await recordPermissionChange(audit, { change: 'group_removed', groupId }, userId, context)
    },

    async listUserGroups(userId: string): Promise<Group[]> {
      const rows = await db
        .selectFrom('groups')
        .innerJoin('user_groups', 'user_groups.group_id', 'groups.id')
        .select(['groups.id', 'groups.name', 'groups.created_at'])
        .where('user_groups.user_id', '=', userId)
        .orderBy('groups.name')
        .execute()
      return rows.map((row) => ({
        id: row.id,
        name: row.name,
        createdAt: toMillis(row.created_at),
      }))
    },

    async countMembers(): Promise<Map<string, number>> {
      const rows = await db
        .selectFrom('user_groups')
        .select(['group_id', (eb) => eb.fn.countAll().as('n')])
        .groupBy('group_id')
        .execute()
      return new Map(rows.map((row) => [row.group_id, Number(row.n)]))
    },
  }
}
