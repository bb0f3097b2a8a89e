import { expect, it } from 'vitest'
import { createAccounts } from '../../src/auth/accounts.js'
import { createAuditLog } from '../../src/auth/audit.js'
import { createIdentities, type ProviderIdentity } from '../../src/auth/identities.js'
import { createTestSessions } from '../helpers/auth-fixtures.js'
import { describeEachDatabase } from '../helpers/databases.js'

const now = (): number => 1_700_000_000_000

function given(
  subject: string,
  provider = 'test',
  email: string | null = `${subject}@example.test`,
): ProviderIdentity {
  return { provider, subject, email, emailVerified: true }
}

describeEachDatabase('identities (migration 0005)', (open) => {
  it('creates an account without a password with its first identity, found by provider and subject', async () => {
    const db = await open()
    const identities = createIdentities(db, { now })
    const created = await identities.createAccount('ada@example.test', given('sub-1'))
    expect(created.ok).toBe(true)
    if (!created.ok) return
    const row = await db
      .selectFrom('users')
      .selectAll()
      .where('id', '=', created.userId)
      .executeTakeFirstOrThrow()
    expect(row.email).toBe('ada@example.test')
    expect(row.password_hash).toBeNull()
    const found = await identities.find('test', 'sub-1')
    expect(found).toMatchObject({
      userId: created.userId,
      provider: 'test',
      subject: 'sub-1',
      emailVerified: true,
    })
    expect(await identities.find('other', 'sub-1')).toBeNull()
    // The e-mail is taken, or the identity: nothing is created, nothing half-made remains.
    expect(await identities.createAccount('ada@example.test', given('sub-2'))).toEqual({
      ok: false,
      code: 'conflict',
    })
    expect(await identities.createAccount('bob@example.test', given('sub-1'))).toEqual({
      ok: false,
      code: 'conflict',
    })
    expect(await db.selectFrom('users').select('email').execute()).toEqual([
      { email: 'ada@example.test' },
    ])
  })

  it('links an identity to one account only, audited once', async () => {
    const db = await open()
    const audit = createAuditLog(db, { now })
    const accounts = createAccounts(db, { sessions: createTestSessions(now), now })
    const identities = createIdentities(db, { audit, now })
    const ada = await accounts.createUser({ email: 'ada@example.test', passwordHash: 'x' })
    const bob = await accounts.createUser({ email: 'bob@example.test', passwordHash: 'x' })
    const first = await identities.link(ada.id, given('gh-1', 'github'))
    expect(first).toMatchObject({ ok: true, created: true })
    expect(await identities.link(ada.id, given('gh-1', 'github'))).toMatchObject({
      ok: true,
      created: false,
    })
    expect(await identities.link(bob.id, given('gh-1', 'github'))).toEqual({
      ok: false,
      code: 'conflict',
      reason: 'identity_in_use',
    })
    expect((await identities.listByUser(bob.id)).length).toBe(0)
    const events = await audit.list({ type: 'identity_linked' })
    expect(events.map((event) => event.userId)).toEqual([ada.id])
  })

  it('never removes the last way to sign in; a password or another identity keeps the account reachable', async () => {
    const db = await open()
    const audit = createAuditLog(db, { now })
    const identities = createIdentities(db, { audit, now })
    const created = await identities.createAccount('ada@example.test', given('a'))
    if (!created.ok) throw new Error('not created')
    const userId = created.userId
    const second = await identities.link(userId, given('b', 'second'))
    if (!second.ok) throw new Error('not linked')

    expect(
      await identities.unlink(userId, second.identity.id, { actorId: 'admin-1' }),
    ).toMatchObject({ ok: true })
    expect(await identities.unlink(userId, created.identity.id)).toEqual({
      ok: false,
      code: 'conflict',
      reason: 'last_sign_in_method',
    })
    expect(await identities.unlink(userId, 'no-such-id')).toEqual({ ok: false, code: 'not_found' })
    expect(await identities.unlink('another-user', created.identity.id)).toEqual({
      ok: false,
      code: 'not_found',
    })

    await db
      .updateTable('users')
      .set({ password_hash: 'a-password-hash' })
      .where('id', '=', userId)
      .execute()
    expect(await identities.unlink(userId, created.identity.id)).toMatchObject({ ok: true })
    expect(await identities.listByUser(userId)).toEqual([])

    const events = await audit.list({ type: 'identity_unlinked' })
    expect(
      events
        .map((event) => [event.outcome, event.detail.reason ?? null, event.detail.actorId ?? null])
        .reverse(),
    ).toEqual([
      ['success', null, 'admin-1'],
      ['denied', 'last_sign_in_method', null],
      ['success', null, null],
    ])
  })

  it('decides two concurrent unlinks of the last two identities one after the other (one stays)', async () => {
    // One handle: a pool of connections on PostgreSQL (two transactions at once); on SQLite,
    // Kysely's one connection (two handles in one process would block each other's event loop).
    const db = await open()
    const first = createIdentities(db, { now })
    const other = createIdentities(db, { now })
    const created = await first.createAccount('ada@example.test', given('a'))
    if (!created.ok) throw new Error('not created')
    const linked = await first.link(created.userId, given('b', 'second'))
    if (!linked.ok) throw new Error('not linked')
    const results = await Promise.all([
      first.unlink(created.userId, created.identity.id),
      other.unlink(created.userId, linked.identity.id),
    ])
    expect(results.filter((result) => result.ok)).toHaveLength(1)
    expect(await first.listByUser(created.userId)).toHaveLength(1)
  })

  it('goes with the account when the account is deleted', async () => {
    const db = await open()
    const accounts = createAccounts(db, { sessions: createTestSessions(now), now })
    const identities = createIdentities(db, { now })
    const created = await identities.createAccount('ada@example.test', given('a'))
    if (!created.ok) throw new Error('not created')
    expect(await accounts.deleteUser(created.userId)).toBe(true)
    expect(await identities.find('test', 'a')).toBeNull()
  })
})
