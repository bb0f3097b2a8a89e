import { expect, it } from 'vitest'
import { createAccounts } from '../../src/auth/accounts.js'
import { createCredentials } from '../../src/auth/credentials.js'
import { createAuditLog } from '../../src/auth/audit.js'
import type { TesseraDB } from '../../src/auth/db/database.js'
import { isTesseraError } from '../../src/core/errors.js'
import { createTestSessions } from '../helpers/auth-fixtures.js'
import { describeEachDatabase } from '../helpers/databases.js'

function setup(db: TesseraDB) {
  let clock = 1_700_000_000_000
  const now = (): number => clock
  const sessions = createTestSessions(now)
  const audit = createAuditLog(db, { now })
  const accounts = createAccounts(db, { sessions, audit, now })
  return { accounts, sessions, audit, tick: (ms: number) => (clock += ms) }
}

describeEachDatabase('accounts', (open) => {
  it('treats case, space and fullwidth variants of an e-mail as one account', async () => {
    const { accounts } = setup(await open())
    const alice = await accounts.createUser({ email: 'Alice@Example.com' })
    expect(alice.email).toBe('alice@example.com')
    for (const variant of [
      ' alice@example.com ',
      'ALICE@EXAMPLE.COM',
      'ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ',
    ]) {
      expect((await accounts.findUserByEmail(variant))?.id, variant).toBe(alice.id)
      await expect(accounts.createUser({ email: variant }), variant).rejects.toMatchObject({
        code: 'conflict',
      })
    }
    expect((await accounts.listUsers()).total).toBe(1)
  })

  it('refuses a malformed e-mail and finds nothing for one', async () => {
    const { accounts } = setup(await open())
    await expect(accounts.createUser({ email: 'not an email' })).rejects.toMatchObject({
      code: 'invalid_argument',
    })
    expect(await accounts.findUserByEmail('nope')).toBeNull()
    expect(await accounts.findUserById('missing')).toBeNull()
  })

  it('stores defaults and times as numbers, and never returns the hash with a user', async () => {
    const db = await open()
    const { accounts } = setup(db)
    const user = await accounts.createUser({ email: 'b@x.io', passwordHash: '$scrypt$stub' })
    const found = await accounts.findUserById(user.id)
    expect(found).toEqual({
      id: user.id,
      email: 'b@x.io',
      isAdmin: false,
      isActive: true,
      createdAt: 1_700_000_000_000,
      lastLoginAt: null,
      passwordChangedAt: 1_700_000_000_000,
      emailVerifiedAt: null,
    })
    expect(JSON.stringify(found)).not.toContain('scrypt')
    // The public interface hands out no hash; the credentials module keeps it.
    for (const name of ['getPasswordHash', 'findCredentialsByEmail', 'setPasswordHash']) {
      expect(name in accounts).toBe(false)
    }
    expect(await createCredentials(db).getPasswordHash(user.id)).toBe('$scrypt$stub')
  })

  it('lists users with search and paging; % and _ match literally', async () => {
    const { accounts } = setup(await open())
    for (const email of ['ann@x.io', 'bob@x.io', 'bo_b@y.io', 'carl%@z.io', 'dan@y.io']) {
      await accounts.createUser({ email })
    }
    const all = await accounts.listUsers({ limit: 2 })
    expect(all.total).toBe(5)
    expect(all.users.map((u) => u.email)).toEqual(['ann@x.io', 'bo_b@y.io'])
    const page2 = await accounts.listUsers({ limit: 2, offset: 2 })
    expect(page2.users.map((u) => u.email)).toEqual(['bob@x.io', 'carl%@z.io'])
    const y = await accounts.listUsers({ search: '@Y.IO' })
    expect(y.users.map((u) => u.email)).toEqual(['bo_b@y.io', 'dan@y.io'])
    expect(y.total).toBe(2)
    expect((await accounts.listUsers({ search: 'o_b' })).users.map((u) => u.email)).toEqual([
      'bo_b@y.io',
    ])
    expect((await accounts.listUsers({ search: '%' })).users.map((u) => u.email)).toEqual([
      'carl%@z.io',
    ])
    await expect(accounts.listUsers({ limit: 0 })).rejects.toMatchObject({
      code: 'invalid_argument',
    })
  })

  it('disabling a user revokes every session and all permissions; enabling restores grants', async () => {
    const { accounts, sessions, audit } = setup(await open())
    const user = await accounts.createUser({ email: 'c@x.io' })
    const other = await accounts.createUser({ email: 'd@x.io' })
    await sessions.create(user.id, { meta: {} })
    await sessions.create(user.id, { meta: {} })
    await sessions.create(other.id, { meta: {} })
    await accounts.grantPermission(user.id, 'posts.publish')
    expect(await accounts.hasPermission(user, 'posts.publish')).toBe(true)

    expect(await accounts.disableUser(user.id, { actorId: other.id, ip: '10.0.0.1' })).toBe(true)
    expect(await sessions.list(user.id)).toHaveLength(0)
    expect(await sessions.list(other.id)).toHaveLength(1)
    // a stale User object that still says active must not keep the permission
    expect(user.isActive).toBe(true)
    expect(await accounts.hasPermission(user, 'posts.publish')).toBe(false)
    const [event] = await audit.list({ type: 'user_disabled' })
    expect(event).toMatchObject({ userId: user.id, outcome: 'success', ip: '10.0.0.1' })
    expect(event?.detail).toEqual({ actorId: other.id })

    expect(await accounts.enableUser(user.id)).toBe(true)
    expect(await accounts.hasPermission(user.id, 'posts.publish')).toBe(true)
    expect(await accounts.disableUser('missing')).toBe(false)
  })

  it('deleting a user revokes every session and removes their grants and memberships', async () => {
    const { accounts, sessions, audit } = setup(await open())
    const user = await accounts.createUser({ email: 'e@x.io' })
    const group = await accounts.createGroup('editors')
    await accounts.addUserToGroup(user.id, group.id)
    await accounts.grantPermission(user.id, 'posts.edit')
    await sessions.create(user.id, { meta: {} })
    expect(await accounts.deleteUser(user.id)).toBe(true)
    expect(await accounts.findUserById(user.id)).toBeNull()
    expect(await sessions.list(user.id)).toHaveLength(0)
    expect(await accounts.getUserPermissions(user.id)).toEqual([])
    expect(await accounts.listUserGroups(user.id)).toEqual([])
    expect(await accounts.deleteUser(user.id)).toBe(false)
    expect((await audit.list({ userId: user.id, type: 'user_deleted' })).length).toBe(1)
    // the e-mail is free again
    await accounts.createUser({ email: 'E@x.io' })
  })

  it('getUserWithPermissions reads flags, groups and grants afresh on every call', async () => {
    // SECURITY: the per-request user read is one precompiled statement with no cache across
    // calls: a disable, a demotion or a revoked permission must show at the very next call.
    const { accounts } = setup(await open())
    const user = await accounts.createUser({ email: 'fresh@x.io' })
    const other = await accounts.createUser({ email: 'other@x.io' })
    const zeta = await accounts.createGroup('zeta')
    const alpha = await accounts.createGroup('alpha')
    await accounts.grantGroupPermission(zeta.id, 'posts.edit')
    await accounts.grantGroupPermission(alpha.id, 'posts.edit')
    await accounts.grantPermission(user.id, 'posts.edit')
    await accounts.grantPermission(other.id, 'other.only')
    await accounts.addUserToGroup(user.id, zeta.id)
    await accounts.addUserToGroup(user.id, alpha.id)
    await accounts.setAdmin(user.id, { isAdmin: true })

    const first = await accounts.getUserWithPermissions(user.id)
    expect(first).toMatchObject({ id: user.id, email: 'fresh@x.io', isAdmin: true, isActive: true })
    expect(first?.createdAt).toBe(user.createdAt)
    expect(first?.groups).toEqual(['alpha', 'zeta'])
    expect(first?.permissions).toEqual(['posts.edit'])

    await accounts.disableUser(user.id)
    await accounts.setAdmin(user.id, { isAdmin: false })
    await accounts.revokePermission(user.id, 'posts.edit')
    await accounts.revokeGroupPermission(zeta.id, 'posts.edit')
    expect(await accounts.getUserWithPermissions(user.id)).toMatchObject({
      isActive: false,
      isAdmin: false,
      permissions: ['posts.edit'], // still through alpha
    })
    await accounts.removeUserFromGroup(user.id, alpha.id)
    const last = await accounts.getUserWithPermissions(user.id)
    expect(last?.groups).toEqual(['zeta'])
    expect(last?.permissions).toEqual([])
    expect((await accounts.getUserWithPermissions(other.id))?.permissions).toEqual(['other.only'])

    await accounts.deleteUser(user.id)
    expect(await accounts.getUserWithPermissions(user.id)).toBeNull()
    expect(await accounts.getUserWithPermissions('no-such-user')).toBeNull()
  })

  it('grants permissions directly and through groups (Django model)', async () => {
    const { accounts } = setup(await open())
    const user = await accounts.createUser({ email: 'f@x.io' })
    const editors = await accounts.createGroup('editors')
    const readers = await accounts.createGroup('readers')
    await accounts.grantGroupPermission(editors.id, 'posts.publish')
    await accounts.grantGroupPermission(editors.id, 'posts.edit')
    await accounts.grantGroupPermission(readers.id, 'posts.view')
    await accounts.grantPermission(user.id, 'comments.delete')
    await accounts.grantPermission(user.id, 'posts.edit') // also via editors: listed once

    expect(await accounts.hasPermission(user, 'posts.publish')).toBe(false)
    await accounts.addUserToGroup(user.id, editors.id)
    await accounts.addUserToGroup(user.id, editors.id) // idempotent
    expect(await accounts.hasPermission(user, 'posts.publish')).toBe(true)
    expect(await accounts.hasPermission(user, 'posts.view')).toBe(false)
    expect(await accounts.hasPermission(user, 'comments.delete')).toBe(true)

    const full = await accounts.getUserWithPermissions(user.id)
    expect(full?.groups).toEqual(['editors'])
    expect(full?.permissions).toEqual(['comments.delete', 'posts.edit', 'posts.publish'])

    await accounts.revokeGroupPermission(editors.id, 'posts.publish')
    expect(await accounts.hasPermission(user, 'posts.publish')).toBe(false)
    await accounts.removeUserFromGroup(user.id, editors.id)
    expect(await accounts.hasPermission(user, 'posts.edit')).toBe(true) // still direct
    await accounts.revokePermission(user.id, 'posts.edit')
    expect(await accounts.hasPermission(user, 'posts.edit')).toBe(false)

    await accounts.addUserToGroup(user.id, readers.id)
    expect(await accounts.deleteGroup(readers.id)).toBe(true)
    expect(await accounts.hasPermission(user, 'posts.view')).toBe(false)
    expect((await accounts.listGroups()).map((g) => g.name)).toEqual(['editors'])
    expect((await accounts.listPermissions()).map((p) => p.codename)).toEqual([
      'comments.delete',
      'posts.edit',
      'posts.publish',
      'posts.view',
    ])
    expect(await accounts.deletePermission('comments.delete')).toBe(true)
    expect(await accounts.hasPermission(user, 'comments.delete')).toBe(false)
  })

  it('an active admin has every permission, an inactive admin none (like is_superuser)', async () => {
    const { accounts } = setup(await open())
    const admin = await accounts.createUser({ email: 'root@x.io', isAdmin: true })
    expect(await accounts.hasPermission(admin, 'anything.at_all')).toBe(true)
    expect(await accounts.hasPermission(admin, 'not a codename')).toBe(false)
    await accounts.disableUser(admin.id)
    expect(await accounts.hasPermission(admin, 'anything.at_all')).toBe(false)
    await accounts.enableUser(admin.id)
    await accounts.setAdmin(admin.id, { isAdmin: false })
    expect(await accounts.hasPermission(admin, 'anything.at_all')).toBe(false)
  })

  it('refuses codenames that are not app.action and duplicate group names', async () => {
    const { accounts } = setup(await open())
    const user = await accounts.createUser({ email: 'g@x.io' })
    for (const bad of ['posts', 'Posts.publish', 'posts.', '.publish', 'a.b.c', 'posts publish']) {
      let caught: unknown
      try {
        await accounts.grantPermission(user.id, bad)
      } catch (error) {
        caught = error
      }
      expect(isTesseraError(caught, 'invalid_argument'), bad).toBe(true)
    }
    await accounts.createGroup('staff')
    await expect(accounts.createGroup(' staff ')).rejects.toMatchObject({ code: 'conflict' })
    expect((await accounts.findGroupByName('staff'))?.name).toBe('staff')
  })

  it('records permission changes in the audit log', async () => {
    const { accounts, audit } = setup(await open())
    const admin = await accounts.createUser({ email: 'h@x.io', isAdmin: true })
    const user = await accounts.createUser({ email: 'i@x.io' })
    await accounts.grantPermission(user.id, 'posts.publish', { actorId: admin.id, ip: '192.0.2.1' })
    await accounts.revokePermission(user.id, 'posts.publish', { actorId: admin.id })
    const events = await audit.list({ userId: user.id, type: 'permission_changed' })
    expect(events.map((e) => e.detail.change).sort()).toEqual(['granted', 'revoked'])
    expect(
      events.every((e) => e.detail.actorId === admin.id && e.detail.codename === 'posts.publish'),
    ).toBe(true)
  })

  it('gives what an admin panel shows: e-mails of ids, the admin count, members, grants, recent sign-ins', async () => {
    const { accounts, tick } = setup(await open())
    const ann = await accounts.createUser({ email: 'ann@example.com', isAdmin: true })
    tick(1000)
    const bob = await accounts.createUser({ email: 'bob@example.com' })
    tick(1000)
    const cid = await accounts.createUser({ email: 'cid@example.com' })
    expect(await accounts.countAdmins()).toBe(1)
    expect(await accounts.findEmails([ann.id, bob.id, ann.id, 'missing'])).toEqual(
      new Map([
        [ann.id, 'ann@example.com'],
        [bob.id, 'bob@example.com'],
      ]),
    )
    expect(await accounts.findEmails([])).toEqual(new Map())

    const editors = await accounts.createGroup('editors')
    const empty = await accounts.createGroup('empty')
    await accounts.addUserToGroup(ann.id, editors.id)
    await accounts.addUserToGroup(bob.id, editors.id)
    expect(await accounts.countMembers()).toEqual(new Map([[editors.id, 2]]))
    await accounts.grantGroupPermission(editors.id, 'posts.publish')
    await accounts.grantGroupPermission(editors.id, 'posts.edit')
    expect(await accounts.listGroupPermissions()).toEqual(
      new Map([[editors.id, ['posts.edit', 'posts.publish']]]),
    )
    expect((await accounts.listGroupPermissions()).get(empty.id)).toBeUndefined()
    await accounts.grantPermission(bob.id, 'reports.view')
    await accounts.grantPermission(bob.id, 'a.b')
    // Direct grants only, not the group's.
    expect(await accounts.listDirectPermissions(bob.id)).toEqual(['a.b', 'reports.view'])
    expect(await accounts.listDirectPermissions(ann.id)).toEqual([])

    // Latest sign-in first, creation for who never signed in; e-mail order stays the default.
    tick(1000)
    await accounts.recordLogin(ann.id)
    const recent = await accounts.listUsers({ orderBy: 'recent_sign_in' })
    expect(recent.users.map((u) => u.email)).toEqual([
      'ann@example.com',
      'cid@example.com',
      'bob@example.com',
    ])
    expect(recent.total).toBe(3)
    expect((await accounts.listUsers()).users.map((u) => u.id)).toEqual([ann.id, bob.id, cid.id])
  })
})
