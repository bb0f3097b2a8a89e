import { createClient, type RedisClientType } from 'redis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createAccounts } from '../../src/auth/accounts.js'
import { createAuditLog } from '../../src/auth/audit.js'
import type { TesseraDB } from '../../src/auth/db/database.js'
import { createPasskeyChallenges } from '../../src/auth/passkey-challenges.js'
import { createPasskeys, type Passkeys } from '../../src/auth/passkeys.js'
import { createMemoryStore } from '../../src/stores/memory.js'
import { createRedisStore } from '../../src/stores/redis.js'
import { createTestSessions } from '../helpers/auth-fixtures.js'
import { describeEachDatabase } from '../helpers/databases.js'
import { describeWithService, uniqueName } from '../helpers/services.js'
import { createCredential, getAssertion, tamper, type SoftCredential } from '../helpers/webauthn.js'

const ORIGIN = 'https://auth.example.com'
const T0 = 1_800_000_000_000

interface Setup {
  db: TesseraDB
  passkeys: Passkeys
  clock: { at: number }
  userId: string
  otherId: string
}

async function setup(open: () => Promise<TesseraDB>): Promise<Setup> {
  const db = await open()
  const clock = { at: T0 }
  const now = (): number => clock.at
  const audit = createAuditLog(db, { now })
  const accounts = createAccounts(db, { sessions: createTestSessions(now), audit, now })
  const user = await accounts.createUser({ email: 'ada@example.com' })
  const other = await accounts.createUser({ email: 'bob@example.com' })
  const passkeys = createPasskeys({
    db,
    store: createMemoryStore({ now }),
    publicUrl: `${ORIGIN}/`,
    origins: ['https://app.auth.example.com'],
    audit,
    now,
  })
  return { db, passkeys, clock, userId: user.id, otherId: other.id }
}

async function register(
  s: Setup,
  userId: string,
  email = 'ada@example.com',
): Promise<SoftCredential> {
  const options = await s.passkeys.registrationOptions({ id: userId, email })
  const { credential, response } = createCredential(options, { origin: ORIGIN })
  const result = await s.passkeys.register(userId, response, { name: 'Laptop' })
  expect(result.ok).toBe(true)
  return credential
}

async function auditReasons(db: TesseraDB): Promise<string[]> {
  const rows = await db
    .selectFrom('audit_events')
    .select(['detail', 'type'])
    .orderBy('id')
    .execute()
  return rows
    .filter((row) => row.type === 'login')
    .map((row) => String((JSON.parse(row.detail ?? '{}') as { reason?: string }).reason))
}

describeEachDatabase('passkeys', (open) => {
  it('registers a discoverable passkey for the configured relying party, and lists it', async () => {
    const s = await setup(open)
    const options = await s.passkeys.registrationOptions({ id: s.userId, email: 'ada@example.com' })
    expect(options.rp.id).toBe('auth.example.com')
    expect(options.authenticatorSelection?.residentKey).toBe('required')
    expect(Buffer.from(options.user.id, 'base64url').toString()).toBe(s.userId)
    expect(options.challenge).toMatch(/^[A-Za-z0-9_-]{43}$/)
    const { response } = createCredential(options, { origin: ORIGIN })
    const result = await s.passkeys.register(s.userId, response, { name: '  Laptop\n' })
    expect(result).toMatchObject({ ok: true, passkey: { name: 'Laptop', userId: s.userId } })
    const list = await s.passkeys.list(s.userId)
    expect(list).toHaveLength(1)
    expect(list[0]).toMatchObject({ transports: ['internal'], counter: 0, lastUsedAt: null })
    const again = await s.passkeys.registrationOptions({ id: s.userId, email: 'ada@example.com' })
    expect(again.excludeCredentials?.map((c) => c.id)).toEqual([list[0]?.credentialId])
  })

  it('registration refusals: replayed challenge, another origin, another user, bad input', async () => {
    const s = await setup(open)
    const options = await s.passkeys.registrationOptions({ id: s.userId, email: 'ada@example.com' })
    const foreign = createCredential(options, { origin: 'https://evil.example' })
    expect(await s.passkeys.register(s.userId, foreign.response)).toMatchObject({
      ok: false,
      code: 'invalid_request',
    })
    // The challenge was taken by the refused answer: a good answer to it now fails too.
    const late = createCredential(options, { origin: ORIGIN })
    expect((await s.passkeys.register(s.userId, late.response)).ok).toBe(false)

    const forBob = await s.passkeys.registrationOptions({ id: s.otherId, email: 'bob@example.com' })
    const stolen = createCredential(forBob, { origin: ORIGIN })
    expect((await s.passkeys.register(s.userId, stolen.response)).ok).toBe(false)

    const fresh = await s.passkeys.registrationOptions({ id: s.userId, email: 'ada@example.com' })
    const wrongRp = createCredential(fresh, { origin: ORIGIN, rpId: 'example.org' })
    expect((await s.passkeys.register(s.userId, wrongRp.response)).ok).toBe(false)

    for (const bad of [null, 'x', [], {}, { id: 'a', rawId: 'b', type: 'public-key' }]) {
      expect(await s.passkeys.register(s.userId, bad)).toMatchObject({ code: 'invalid_request' })
    }
    expect(await s.passkeys.list(s.userId)).toEqual([])
  })

  it('a trusted second origin is accepted; the challenge expires after 5 minutes', async () => {
    const s = await setup(open)
    const options = await s.passkeys.registrationOptions({ id: s.userId, email: 'ada@example.com' })
    const sub = createCredential(options, { origin: 'https://app.auth.example.com' })
    expect((await s.passkeys.register(s.userId, sub.response)).ok).toBe(true)
    const later = await s.passkeys.registrationOptions({ id: s.userId, email: 'ada@example.com' })
    s.clock.at += 300_000
    const expired = createCredential(later, { origin: ORIGIN })
    expect((await s.passkeys.register(s.userId, expired.response)).ok).toBe(false)
  })

  it('usernameless sign-in: UV gives aal 2, no UV one factor; the counter moves forward', async () => {
    const s = await setup(open)
    const credential = await register(s, s.userId)
    const first = await s.passkeys.authenticationOptions()
    expect(first.allowCredentials ?? []).toEqual([])
    expect(first.rpId).toBe('auth.example.com')
    const second = await s.passkeys.authenticationOptions()
    // The same answer for every caller, but for the challenge.
    expect({ ...second, challenge: '' }).toEqual({ ...first, challenge: '' })

    const proof = await s.passkeys.authenticate(getAssertion(first, credential, { origin: ORIGIN }))
    expect(proof).toMatchObject({ ok: true, userId: s.userId, aal: 2, amr: ['hwk', 'user', 'mfa'] })
    const noUV = await s.passkeys.authenticate(
      getAssertion(second, credential, { origin: ORIGIN, userVerified: false }),
    )
    expect(noUV).toMatchObject({ ok: true, aal: 1, amr: ['hwk'] })
    const [stored] = await s.passkeys.list(s.userId)
    expect(stored?.counter).toBe(2)
    expect(stored?.lastUsedAt).toBe(T0)

    const synced = await s.passkeys.authenticate(
      getAssertion(await s.passkeys.authenticationOptions(), credential, {
        origin: ORIGIN,
        backedUp: true,
      }),
    )
    expect(synced).toMatchObject({ ok: true, amr: ['swk', 'user', 'mfa'] })
  })

  it('authentication refusals are invalid_credentials and audited', async () => {
    const s = await setup(open)
    const credential = await register(s, s.userId)
    const options = await s.passkeys.authenticationOptions()
    const good = getAssertion(options, credential, { origin: ORIGIN })
    expect((await s.passkeys.authenticate(good)).ok).toBe(true)
    // Replayed: the challenge is gone.
    expect(await s.passkeys.authenticate(good)).toMatchObject({ code: 'invalid_credentials' })

    const o2 = await s.passkeys.authenticationOptions()
    const foreign = getAssertion(o2, credential, { origin: 'https://evil.example' })
    expect((await s.passkeys.authenticate(foreign)).ok).toBe(false)

    const o3 = await s.passkeys.authenticationOptions()
    const signed = getAssertion(o3, credential, { origin: ORIGIN }) as {
      response: { signature: string }
    }
    signed.response.signature = tamper(signed.response.signature, 20)
    expect((await s.passkeys.authenticate(signed)).ok).toBe(false)

    // A challenge issued for a registration does not sign anyone in.
    const creation = await s.passkeys.registrationOptions({ id: s.userId, email: 'a@x.io' })
    const crossed = getAssertion(
      { challenge: creation.challenge, rpId: 'auth.example.com' },
      credential,
      { origin: ORIGIN },
    )
    expect((await s.passkeys.authenticate(crossed)).ok).toBe(false)

    // The user handle must name the credential's account.
    const o4 = await s.passkeys.authenticationOptions()
    const otherHandle = Buffer.from(s.otherId).toString('base64url')
    const handled = getAssertion(o4, credential, { origin: ORIGIN, userHandle: otherHandle })
    expect((await s.passkeys.authenticate(handled)).ok).toBe(false)

    const o5 = await s.passkeys.authenticationOptions()
    const unknown = getAssertion(o5, credential, { origin: ORIGIN, id: 'AAAAAAAAAAAAAAAAAAAAAA' })
    expect((await s.passkeys.authenticate(unknown)).ok).toBe(false)

    for (const bad of [null, 42, {}, { id: 'x', rawId: 'x', type: 'public-key', response: {} }]) {
      expect(await s.passkeys.authenticate(bad)).toMatchObject({ code: 'invalid_request' })
    }
    expect(await auditReasons(s.db)).toEqual([
      'challenge_invalid',
      'not_verified',
      'bad_signature',
      'challenge_invalid',
      'user_handle_mismatch',
      'unknown_passkey',
    ])
  })

  it('a counter that goes backwards is refused and audited; zero counters are accepted', async () => {
    const s = await setup(open)
    const credential = await register(s, s.userId)
    const sign = async (counter: number): Promise<boolean> =>
      (
        await s.passkeys.authenticate(
          getAssertion(await s.passkeys.authenticationOptions(), credential, {
            origin: ORIGIN,
            counter,
          }),
        )
      ).ok
    // Zero then zero: an authenticator without a counter (synced passkeys).
    expect(await sign(0)).toBe(true)
    expect(await sign(0)).toBe(true)
    expect(await sign(5)).toBe(true)
    expect(await sign(5)).toBe(false)
    expect(await sign(3)).toBe(false)
    expect(await sign(0)).toBe(false)
    expect(await sign(6)).toBe(true)
    const rows = await s.db
      .selectFrom('audit_events')
      .select(['outcome', 'detail'])
      .where('type', '=', 'login')
      .execute()
    const denied = rows.filter((row) => row.outcome === 'denied')
    expect(denied).toHaveLength(3)
    expect(JSON.parse(denied[1]?.detail ?? '{}')).toMatchObject({
      method: 'webauthn',
      reason: 'counter_regressed',
      storedCounter: 5,
      receivedCounter: 3,
    })
    expect((await s.passkeys.list(s.userId))[0]?.counter).toBe(6)
  })

  it('second factor: bound to the user and to its challenge; another user’s credential is refused', async () => {
    const s = await setup(open)
    const mine = await register(s, s.userId)
    const bobs = await register(s, s.otherId, 'bob@example.com')
    const options = await s.passkeys.secondFactorOptions(s.userId, 'mfa-1')
    expect(options.allowCredentials?.map((c) => c.id)).toEqual([mine.id])
    const expect1 = { expect: { userId: s.userId, bind: 'mfa-1' } }
    expect(
      await s.passkeys.authenticate(getAssertion(options, bobs, { origin: ORIGIN }), expect1),
    ).toMatchObject({ ok: false, code: 'invalid_credentials' })
    const o2 = await s.passkeys.secondFactorOptions(s.userId, 'mfa-1')
    expect(
      (
        await s.passkeys.authenticate(getAssertion(o2, mine, { origin: ORIGIN }), {
          expect: { userId: s.userId, bind: 'mfa-2' },
        })
      ).ok,
    ).toBe(false)
    const o3 = await s.passkeys.secondFactorOptions(s.userId, 'mfa-1')
    // A second-factor challenge is not a usernameless sign-in.
    expect((await s.passkeys.authenticate(getAssertion(o3, mine, { origin: ORIGIN }))).ok).toBe(
      false,
    )
    const o4 = await s.passkeys.secondFactorOptions(s.userId, 'mfa-1')
    expect(
      await s.passkeys.authenticate(getAssertion(o4, mine, { origin: ORIGIN }), expect1),
    ).toMatchObject({ ok: true, userId: s.userId })
  })

  it('rename and remove only the owner’s passkeys, audited', async () => {
    const s = await setup(open)
    await register(s, s.userId)
    const [passkey] = await s.passkeys.list(s.userId)
    const id = passkey?.id ?? ''
    expect(await s.passkeys.rename(s.otherId, id, 'Mine now')).toBe(false)
    expect(await s.passkeys.rename(s.userId, id, 'Phone')).toBe(true)
    await expect(s.passkeys.rename(s.userId, id, '   ')).rejects.toMatchObject({
      code: 'invalid_argument',
    })
    expect(await s.passkeys.remove(s.otherId, id)).toBe(false)
    expect(await s.passkeys.remove(s.userId, 'not-an-id')).toBe(false)
    expect(await s.passkeys.hasPasskeys(s.userId)).toBe(true)
    // SECURITY: the account has no password and no identity: its only passkey stays.
    expect(await s.passkeys.remove(s.userId, id)).toBe('last_sign_in_method')
    expect(await s.passkeys.hasPasskeys(s.userId)).toBe(true)
    await register(s, s.userId)
    expect(await s.passkeys.remove(s.userId, id, { actorId: s.otherId })).toBe(true)
    expect(await s.passkeys.list(s.userId)).toHaveLength(1)
    const types = await s.db
      .selectFrom('audit_events')
      .select(['type', 'detail'])
      .where('type', 'like', 'passkey_%')
      .orderBy('id')
      .execute()
    expect(types.map((t) => t.type)).toEqual([
      'passkey_added',
      'passkey_renamed',
      'passkey_removed',
      'passkey_added',
      'passkey_removed',
    ])
    expect(JSON.parse(types[2]?.detail ?? '{}')).toMatchObject({ reason: 'last_sign_in_method' })
    expect(JSON.parse(types[4]?.detail ?? '{}')).toMatchObject({
      actorId: s.otherId,
      name: 'Phone',
    })
  })
})

describeWithService('redis', 'passkey challenges shared through Redis', (redisUrl) => {
  const clients: RedisClientType[] = []
  const prefix = `${uniqueName('tpk')}:`

  beforeAll(async () => {
    for (let i = 0; i < 2; i += 1) {
      const client: RedisClientType = createClient({ url: redisUrl })
      client.on('error', () => undefined)
      await client.connect()
      clients.push(client)
    }
  })

  afterAll(async () => {
    const [first] = clients
    if (first !== undefined) {
      for await (const keys of first.scanIterator({ MATCH: `${prefix}*` })) {
        if (keys.length > 0) await first.del(keys)
      }
    }
    for (const client of clients) client.destroy()
  })

  it('issued on one connection, consumed once on the other; twenty racing consumers, one winner', async () => {
    const [a, b] = clients.map((client) =>
      createPasskeyChallenges(createRedisStore(client, { prefix })),
    )
    if (a === undefined || b === undefined) throw new Error('no clients')
    const challenge = await a.issue({ purpose: 'registration', userId: 'u1' })
    expect(await b.consume(challenge, 'authentication')).toBeNull()
    expect(await b.consume(challenge, 'registration')).toEqual({
      purpose: 'registration',
      userId: 'u1',
    })
    expect(await a.consume(challenge, 'registration')).toBeNull()

    const raced = await a.issue({ purpose: 'authentication' })
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).consume(raced, 'authentication')),
    )
    expect(results.filter((r) => r !== null)).toHaveLength(1)
  })
})
