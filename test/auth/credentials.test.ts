import { expect, it } from 'vitest'
import { createAccounts } from '../../src/auth/accounts.js'
import { createCredentials } from '../../src/auth/credentials.js'
import { createTestSessions } from '../helpers/auth-fixtures.js'
import { describeEachDatabase } from '../helpers/databases.js'

describeEachDatabase('credentials', (open) => {
  it('setPasswordHash voids unused reset tokens; upgradePasswordHash is conditional on the old hash', async () => {
    const db = await open()
    const now = (): number => 1_700_000_000_000
    const accounts = createAccounts(db, { sessions: createTestSessions(now), now })
    const credentials = createCredentials(db, { now })
    const user = await accounts.createUser({ email: 'j@x.io', passwordHash: 'old' })
    await db
      .insertInto('password_reset_tokens')
      .values({
        token_hash: 't1',
        user_id: user.id,
        created_at: 1,
        expires_at: 9e15,
        used_at: null,
      })
      .execute()
    expect(await credentials.upgradePasswordHash(user.id, 'other', 'new')).toBe(false)
    expect(await credentials.upgradePasswordHash(user.id, 'old', 'upgraded')).toBe(true)
    const token = await db
      .selectFrom('password_reset_tokens')
      .select('used_at')
      .executeTakeFirstOrThrow()
    expect(token.used_at).toBeNull() // a rehash is not a password change
    expect(await credentials.setPasswordHash(user.id, 'changed')).toBe(true)
    const after = await db
      .selectFrom('password_reset_tokens')
      .select('used_at')
      .executeTakeFirstOrThrow()
    expect(after.used_at).not.toBeNull()
    expect(await credentials.getPasswordHash(user.id)).toBe('changed')
    expect((await accounts.findUserById(user.id))?.passwordChangedAt).toBe(1_700_000_000_000)
  })

  it('findCredentialsByEmail: the user and hash in one lookup, null for unknown or malformed', async () => {
    const db = await open()
    const now = (): number => 1_700_000_000_000
    const accounts = createAccounts(db, { sessions: createTestSessions(now), now })
    const credentials = createCredentials(db, { now })
    const user = await accounts.createUser({ email: 'k@x.io', passwordHash: 'h' })
    await accounts.createUser({ email: 'nopass@x.io' })
    expect(await credentials.findCredentialsByEmail(' K@X.io ')).toEqual({
      user: await accounts.findUserById(user.id),
      passwordHash: 'h',
    })
    expect((await credentials.findCredentialsByEmail('nopass@x.io'))?.passwordHash).toBeNull()
    expect(await credentials.findCredentialsByEmail('nobody@x.io')).toBeNull()
    expect(await credentials.findCredentialsByEmail('not an address')).toBeNull()
  })
})
