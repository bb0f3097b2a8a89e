import Database from 'better-sqlite3'
import fc from 'fast-check'
import { createClient, type RedisClientType } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TesseraError } from '../../src/core/errors.js'
import { createKeyring } from '../../src/core/keyring.js'
import {
  createSessionManager,
  hashToken,
  toPublicSession,
  type SessionManagerOptions,
} from '../../src/core/session-manager.js'
import type { SessionStore } from '../../src/core/session-store.js'
import { signValue } from '../../src/core/signing.js'
import { createMemoryStore } from '../../src/stores/memory.js'
import { createRedisStore } from '../../src/stores/redis.js'
import { createSQLiteStore } from '../../src/stores/sqlite.js'
import { createStoreGenerationStore } from '../../src/core/session-generations.js'
import { describeWithService, uniqueName } from '../helpers/services.js'

const SECRET = 'n9K2vQ7xLp4RtY8wZs3FhJ6mC1bD5gE0aUoIiTeWqVr'
const OLD_SECRET = 'Xc7Pq2Lm9Rt4Vb8Nz1Hs6Kd3Fg5Jw0YaQeUiOoTyPpA'
const DAY = 86_400_000
const HOUR = 3_600_000

type Call = keyof SessionStore

/** A real store that records which methods were called, to count reads and writes. */
function counting(
  store: SessionStore,
): SessionStore & { calls: Call[]; count(call: Call): number } {
  const calls: Call[] = []
  return {
    calls,
    count: (call) => calls.filter((c) => c === call).length,
    get: (id) => (calls.push('get'), store.get(id)),
    create: (r) => (calls.push('create'), store.create(r)),
    update: (r, v) => (calls.push('update'), store.update(r, v)),
    delete: (id) => (calls.push('delete'), store.delete(id)),
    listByUser: (u) => (calls.push('listByUser'), store.listByUser(u)),
    deleteByUser: (u, o) => (calls.push('deleteByUser'), store.deleteByUser(u, o)),
  }
}

/** A real store the manager tests run on; `now` is the store's own clock. */
interface Backend {
  name: string
  make(now: () => number): SessionStore
}

const BACKENDS: Backend[] = [
  { name: 'memory store', make: (now) => createMemoryStore({ now, sweepInterval: 0 }) },
  {
    name: 'SQLite store',
    make: (now) => createSQLiteStore(new Database(':memory:'), { now }),
  },
]

/**
 * A manager over a counting store with an injected clock. With `storeHidesExpired: false` the
 * store's own clock stands still, so it returns expired records like a store whose TTLs only
 * clean up: expiry is then decided by the manager alone.
 */
function setupWith(
  backend: Backend,
  options: SessionManagerOptions = {},
  secret = SECRET,
  { storeHidesExpired = true }: { storeHidesExpired?: boolean } = {},
) {
  let time = Date.UTC(2026, 0, 1)
  const now = (): number => time
  const memory = backend.make(storeHidesExpired ? now : () => 0)
  const store = counting(memory)
  const keyring = createKeyring(secret)
  const manager = createSessionManager(store, keyring, { now, ...options })
  return {
    manager,
    store,
    memory,
    keyring,
    now,
    advance: (ms: number) => void (time += ms),
  }
}

/** The `Cookie` request header a browser would send back for a `Set-Cookie` value. */
function cookieHeader(setCookie: string): string {
  return setCookie.split(';')[0] as string
}

/** A manager over the counting memory store (the adapter-hook cases need only one backend). */
function setupMemory(
  ...rest: Parameters<typeof setupWith> extends [Backend, ...infer R] ? R : never
) {
  return setupWith(BACKENDS[0] as Backend, ...rest)
}

for (const backend of BACKENDS) {
  describe(backend.name, () => {
    const setup: typeof setupWith extends (b: Backend, ...rest: infer R) => infer T
      ? (...rest: R) => T
      : never = (...rest) => setupWith(backend, ...rest)

    describe('createSessionManager: create', () => {
      it('sets an HttpOnly, SameSite=Lax, Path=/ cookie that lives until the absolute expiry', async () => {
        const { manager } = setup()
        const { setCookie, token, session } = await manager.create('u1')
        expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)
        expect(setCookie).toMatch(
          /^tessera_session=[A-Za-z0-9_.-]+; Max-Age=2592000; Path=\/; HttpOnly; SameSite=Lax$/,
        )
        expect(session.absoluteExpiresAt - session.createdAt).toBe(30 * DAY)
        expect(session.expiresAt - session.createdAt).toBe(7 * DAY)
      })

      it('uses __Host- and Secure with secure: true, and __Secure- when a domain rules __Host- out', async () => {
        const host = setup({ secure: true })
        const { setCookie } = await host.manager.create('u1')
        expect(setCookie).toMatch(
          /^__Host-tessera_session=.*; Path=\/; Secure; HttpOnly; SameSite=Lax$/,
        )
        expect(host.manager.clearCookie()).toMatch(
          /^__Host-tessera_session=; Max-Age=0; .*Path=\/; Secure; HttpOnly/,
        )
        const domain = setup({ secure: true, domain: 'example.com' })
        expect(domain.manager.cookieName).toBe('__Secure-tessera_session')
        expect(domain.manager.clearCookie()).toContain('; Domain=example.com; Path=/; Secure')
      })

      it('refuses unusable options when built', () => {
        const keyring = createKeyring(SECRET)
        const store = createMemoryStore({ sweepInterval: 0 })
        expect(() => createSessionManager(store, keyring, { idleTimeout: 0 })).toThrow(
          /idleTimeout/,
        )
        expect(() => createSessionManager(store, keyring, { touchInterval: 999_999_999 })).toThrow(
          /touchInterval/,
        )
        expect(() => createSessionManager(store, keyring, { cookieName: '__Host-x' })).toThrow(
          /config|__Host-/,
        )
        expect(() => createSessionManager(store, keyring, { maxUpdateAttempts: 0 })).toThrow(
          /maxUpdateAttempts/,
        )
      })

      it('SECURITY: stores only SHA-256(token), never the token or the signed cookie', async () => {
        const { manager, memory } = setup()
        const { token, setCookie } = await manager.create('u1', { data: { a: 1 } })
        const [record] = await memory.listByUser('u1')
        expect(record!.id).toBe(hashToken(token))
        const stored = JSON.stringify(record)
        expect(stored).not.toContain(token)
        expect(stored).not.toContain(cookieHeader(setCookie).split('=')[1])
      })

      it('never exposes the token or the stored id through the session object', async () => {
        const { manager } = setup()
        const { token, session } = await manager.create('u1')
        const json =
          JSON.stringify(session) +
          JSON.stringify({ ...session }) +
          JSON.stringify(toPublicSession(session))
        expect(json).not.toContain(token)
        expect(json).not.toContain(hashToken(token))
        expect(session.id).toHaveLength(22)
        expect(hashToken(token).startsWith(session.id)).toBe(true)
        expect(toPublicSession(session)).toEqual({
          id: session.id,
          createdAt: '2026-01-01T00:00:00.000Z',
          lastSeenAt: '2026-01-01T00:00:00.000Z',
          expiresAt: '2026-01-08T00:00:00.000Z',
          absoluteExpiresAt: '2026-01-31T00:00:00.000Z',
          authTime: '2026-01-01T00:00:00.000Z',
          aal: 1,
          amr: [],
        })
      })
    })

    describe('createSessionManager: validate', () => {
      it('returns the session for its cookie, among other cookies', async () => {
        const { manager } = setup()
        const { setCookie, session } = await manager.create('u1', {
          data: { role: 'x' },
          meta: { ip: '10.0.0.1' },
        })
        const found = await manager.validate(`a=1; ${cookieHeader(setCookie)}; b=2`)
        expect(found).not.toBeNull()
        expect(found!.setCookie).toBeUndefined()
        expect(found!.session).toEqual(session)
        expect(found!.session.data).toEqual({ role: 'x' })
        expect(found!.session.meta).toEqual({ ip: '10.0.0.1' })
      })

      it('SECURITY: checks the signature before any store lookup (forged and garbage cookies)', async () => {
        const { manager, store } = setup()
        const { token } = await manager.create('u1')
        store.calls.length = 0
        const otherKeyring = createKeyring(OLD_SECRET)
        const forged = [
          signValue(otherKeyring, 'session', token), // right token, wrong key
          signValue(createKeyring(SECRET), 'reset', token), // right key, wrong purpose
          token, // unsigned token
          `${token}.AAAAAAAA.${'A'.repeat(43)}`,
          '',
          'garbage',
        ]
        for (const value of forged) {
          expect(await manager.validate(`tessera_session=${value}`)).toBeNull()
          expect(await manager.validateCookie(value)).toBeNull()
        }
        expect(await manager.validate(undefined)).toBeNull()
        expect(await manager.validate(null)).toBeNull()
        expect(await manager.validate('other=1')).toBeNull()
        expect(store.calls).toEqual([])
      })

      it('SECURITY: never accepts or throws on arbitrary cookie values, and never reaches the store', async () => {
        const { manager, store } = setup()
        await fc.assert(
          fc.asyncProperty(fc.string({ maxLength: 200 }), async (value) => {
            expect(await manager.validateCookie(value)).toBeNull()
            expect(await manager.validate(value)).toBeNull()
            expect(await manager.validate(`tessera_session=${value}`)).toBeNull()
          }),
          { numRuns: 300 },
        )
        expect(store.calls).toEqual([])
      })

      it('a well-signed cookie for an unknown token is one store read and null', async () => {
        const { manager, store, keyring } = setup()
        const token = 'A'.repeat(43)
        expect(await manager.validateCookie(signValue(keyring, 'session', token))).toBeNull()
        expect(store.calls).toEqual(['get'])
      })

      it('ends a session after the idle timeout without activity', async () => {
        const { manager, advance } = setup({}, SECRET, { storeHidesExpired: false })
        const { setCookie } = await manager.create('u1')
        advance(7 * DAY - 1)
        expect(await manager.validate(cookieHeader(setCookie))).not.toBeNull()
        advance(7 * DAY)
        expect(await manager.validate(cookieHeader(setCookie))).toBeNull()
      })

      it('slides the idle expiry with activity', async () => {
        const { manager, advance } = setup()
        const { setCookie } = await manager.create('u1')
        for (let day = 0; day < 20; day += 5) {
          advance(5 * DAY)
          const found = await manager.validate(cookieHeader(setCookie))
          expect(found?.session.expiresAt).toBe(found!.session.lastSeenAt + 7 * DAY)
        }
      })

      it('SECURITY: signs out an active user at the absolute limit', async () => {
        const { manager, advance, store } = setup({}, SECRET, { storeHidesExpired: false })
        const { setCookie, session } = await manager.create('u1')
        for (let elapsed = DAY; elapsed < 30 * DAY; elapsed += DAY) {
          advance(DAY)
          const found = await manager.validate(cookieHeader(setCookie))
          expect(found).not.toBeNull()
          expect(found!.session.expiresAt).toBeLessThanOrEqual(session.absoluteExpiresAt)
        }
        advance(DAY) // exactly 30 days after creation
        expect(await manager.validate(cookieHeader(setCookie))).toBeNull()
        expect(store.calls.at(-1)).toBe('delete')
      })

      it('extends the idle expiry at most once per tenth of the idle window (counts store writes)', async () => {
        const { manager, advance, store } = setup()
        const { setCookie } = await manager.create('u1')
        const header = cookieHeader(setCookie)
        store.calls.length = 0
        const tenth = (7 * DAY) / 10
        for (let i = 0; i < 50; i++) {
          advance(tenth / 100)
          await manager.validate(header)
        }
        expect(store.count('update')).toBe(0)
        advance(tenth / 2 + 1) // now past one tenth since creation
        const touched = await manager.validate(header)
        expect(store.count('update')).toBe(1)
        expect(touched!.session.lastSeenAt).toBe(touched!.session.expiresAt - 7 * DAY)
        for (let i = 0; i < 50; i++) {
          advance(HOUR / 10)
          await manager.validate(header)
        }
        expect(store.count('update')).toBe(1)
        expect(store.count('get')).toBe(101)
      })

      it('concurrent requests due for a touch write once and all succeed', async () => {
        const { manager, advance, store } = setup()
        const { setCookie } = await manager.create('u1')
        advance(DAY)
        store.calls.length = 0
        const results = await Promise.all(
          Array.from({ length: 10 }, () => manager.validate(cookieHeader(setCookie))),
        )
        expect(results.every((r) => r !== null)).toBe(true)
        expect(store.count('update')).toBeGreaterThanOrEqual(1)
        expect(store.count('update')).toBeLessThanOrEqual(10)
        expect((await manager.validate(cookieHeader(setCookie)))!.session.lastSeenAt).toBe(
          results[0]!.session.lastSeenAt,
        )
      })

      it('re-issues a cookie signed with a fallback key under the current key', async () => {
        const before = setup({}, OLD_SECRET)
        const { setCookie, token } = await before.manager.create('u1')
        const rotated = createKeyring(SECRET, { fallbacks: [OLD_SECRET] })
        const manager = createSessionManager(before.store, rotated, { now: before.now })
        const found = await manager.validate(cookieHeader(setCookie))
        expect(found?.setCookie).toBeDefined()
        expect(found!.setCookie).toContain(
          `tessera_session=${signValue(rotated, 'session', token)};`,
        )
        expect(found!.setCookie).toContain('Max-Age=2592000')
        const again = await manager.validate(cookieHeader(found!.setCookie!))
        expect(again).not.toBeNull()
        expect(again!.setCookie).toBeUndefined()
        // Without the fallback, the old cookie no longer verifies.
        const dropped = createSessionManager(before.store, createKeyring(SECRET), {
          now: before.now,
        })
        expect(await dropped.validate(cookieHeader(setCookie))).toBeNull()
      })

      it('validates a raw token without the cookie layer', async () => {
        const { manager, store } = setup()
        const { token, session } = await manager.create('u1')
        expect((await manager.validateToken(token))?.session).toEqual(session)
        store.calls.length = 0
        for (const bad of ['', 'short', `${token}x`, `${token.slice(0, 42)}!`, null, undefined]) {
          expect(await manager.validateToken(bad)).toBeNull()
        }
        expect(store.calls).toEqual([])
        expect(await manager.validateToken('B'.repeat(43))).toBeNull()
      })

      it('propagates store_unavailable instead of returning null', async () => {
        const keyring = createKeyring(SECRET)
        const memory = createMemoryStore({ sweepInterval: 0 })
        const working = createSessionManager(memory, keyring)
        const { setCookie, token } = await working.create('u1')
        const down = new TesseraError('store_unavailable', 'store is down')
        // A deliberately broken peer: a store whose backend is unreachable.
        const broken: SessionStore = {
          get: () => Promise.reject(down),
          create: () => Promise.reject(down),
          update: () => Promise.reject(down),
          delete: () => Promise.reject(down),
          listByUser: () => Promise.reject(down),
          deleteByUser: () => Promise.reject(down),
        }
        const manager = createSessionManager(broken, keyring)
        await expect(manager.validate(cookieHeader(setCookie))).rejects.toMatchObject({
          code: 'store_unavailable',
        })
        await expect(manager.validateToken(token)).rejects.toMatchObject({
          code: 'store_unavailable',
        })
        await expect(manager.create('u1')).rejects.toMatchObject({ code: 'store_unavailable' })
        await expect(manager.list('u1')).rejects.toMatchObject({ code: 'store_unavailable' })
      })
    })

    describe('createSessionManager: update', () => {
      it('merges changed keys; a key set to undefined is removed', async () => {
        const { manager, setCookie } = await (async () => {
          const s = setup()
          const issued = await s.manager.create('u1', { data: { a: 1, b: 2 } })
          return { manager: s.manager, setCookie: issued.setCookie, session: issued.session }
        })()
        const found = await manager.validate(cookieHeader(setCookie))
        const updated = await manager.update(found!.session, { b: undefined, c: { deep: [1] } })
        expect(updated!.data).toEqual({ a: 1, c: { deep: [1] } })
        expect((await manager.validate(cookieHeader(setCookie)))!.session.data).toEqual({
          a: 1,
          c: { deep: [1] },
        })
      })

      it('keeps every write of 20 concurrent updates to different keys', async () => {
        const { manager } = setup()
        const { session } = await manager.create('u1', { data: { base: true } })
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => manager.update(session, { [`k${i}`]: i })),
        )
        expect(results.every((r) => r !== null)).toBe(true)
        const [latest] = await manager.list('u1')
        const expected: Record<string, unknown> = { base: true }
        for (let i = 0; i < 20; i++) expected[`k${i}`] = i
        expect(latest!.data).toEqual(expected)
      })

      it('SECURITY: an update racing a logout does nothing and never recreates the session', async () => {
        const { manager, memory, store } = setup()
        const { session, token } = await manager.create('u1')
        await manager.revoke(session)
        store.calls.length = 0
        expect(await manager.update(session, { a: 1 })).toBeNull()
        expect(store.count('create')).toBe(0)
        expect(await memory.get(hashToken(token))).toBeNull()
        expect(await manager.list('u1')).toEqual([])
        // Concurrently: the updates that land before the delete are lost with it; none survive it.
        const again = await manager.create('u1')
        const racing = Promise.all(
          Array.from({ length: 5 }, (_, i) => manager.update(again.session, { [`k${i}`]: i })),
        )
        await manager.revoke(again.session)
        await racing
        expect(await memory.get(hashToken(again.token))).toBeNull()
      })

      it('gives up with store_conflict when the compare-and-set keeps losing', async () => {
        const memory = createMemoryStore({ sweepInterval: 0 })
        // A deliberately broken peer: every compare-and-set loses.
        const losing: SessionStore = {
          get: (id) => memory.get(id),
          create: (r) => memory.create(r),
          update: () => Promise.resolve(false),
          delete: (id) => memory.delete(id),
          listByUser: (u) => memory.listByUser(u),
          deleteByUser: (u, o) => memory.deleteByUser(u, o),
        }
        const manager = createSessionManager(losing, createKeyring(SECRET), {
          maxUpdateAttempts: 4,
        })
        const { session } = await manager.create('u1')
        await expect(manager.update(session, { a: 1 })).rejects.toMatchObject({
          code: 'store_conflict',
        })
      })

      it('refuses sessions it did not hand out', async () => {
        const { manager } = setup()
        const { session } = await manager.create('u1')
        await expect(manager.update({ ...session }, { a: 1 })).rejects.toMatchObject({
          code: 'invalid_argument',
        })
      })
    })

    describe('createSessionManager: regenerate, revoke, list', () => {
      it('SECURITY: regenerate issues a new token with the same data and kills the old one (no fixation)', async () => {
        const { manager, advance } = setup()
        const first = await manager.create('u1', { data: { cart: [1, 2] } })
        advance(HOUR)
        const next = await manager.regenerate(first.session)
        expect(next).not.toBeNull()
        expect(next!.token).not.toBe(first.token)
        expect(next!.session.id).not.toBe(first.session.id)
        expect(next!.session.data).toEqual({ cart: [1, 2] })
        expect(next!.session.absoluteExpiresAt).toBe(first.session.absoluteExpiresAt)
        expect(next!.setCookie).toContain(`Max-Age=${30 * 86_400 - 3600}`)
        expect(await manager.validate(cookieHeader(first.setCookie))).toBeNull()
        expect((await manager.validate(cookieHeader(next!.setCookie)))?.session.data).toEqual({
          cart: [1, 2],
        })
        expect(await manager.regenerate(first.session)).toBeNull()
      })

      it('records authTime, aal and amr; regenerate with auth replaces them, without auth keeps them', async () => {
        const { manager, advance, now } = setup()
        const plain = await manager.create('u1')
        expect(plain.session).toMatchObject({ authTime: now(), aal: 1, amr: [] })
        const first = await manager.create('u1', { auth: { amr: ['pwd'] } })
        expect(first.session).toMatchObject({ authTime: now(), aal: 1, amr: ['pwd'] })
        const signedInAt = now()
        advance(HOUR)
        const read = await manager.validate(cookieHeader(first.setCookie))
        expect(read?.session).toMatchObject({ authTime: signedInAt, aal: 1, amr: ['pwd'] })
        const kept = await manager.regenerate(read!.session)
        expect(kept!.session).toMatchObject({ authTime: signedInAt, aal: 1, amr: ['pwd'] })
        const raised = await manager.regenerate(kept!.session, {
          auth: { aal: 2, amr: ['pwd', 'otp', 'mfa'] },
        })
        expect(raised!.session).toMatchObject({
          authTime: now(),
          aal: 2,
          amr: ['pwd', 'otp', 'mfa'],
        })
        const again = await manager.validate(cookieHeader(raised!.setCookie))
        expect(again?.session).toMatchObject({ authTime: now(), aal: 2 })
        expect(toPublicSession(again!.session)).toMatchObject({
          authTime: new Date(now()).toISOString(),
          aal: 2,
          amr: ['pwd', 'otp', 'mfa'],
        })
      })

      it('SECURITY: refuses an unusable auth record (it decides what step-up guards let through)', async () => {
        const { manager } = setup()
        const bad = [{ aal: 3 }, { amr: ['password'] }, { time: Number.NaN }, { amr: 'pwd' }]
        for (const auth of bad) {
          await expect(manager.create('u1', { auth: auth as never })).rejects.toMatchObject({
            code: 'invalid_argument',
          })
        }
      })

      it('lists, revokes one, revokes by public id for its owner only, and revokes all but one', async () => {
        const { manager, advance } = setup()
        const a = await manager.create('u1', { meta: { userAgent: 'A' } })
        advance(1000)
        const b = await manager.create('u1', { meta: { userAgent: 'B' } })
        advance(1000)
        const c = await manager.create('u1')
        const other = await manager.create('u2')
        expect((await manager.list('u1')).map((s) => s.id)).toEqual([
          c.session.id,
          b.session.id,
          a.session.id,
        ])
        expect(await manager.revokeById('u1', other.session.id)).toBe(false)
        expect(await manager.revokeById('u1', 'x')).toBe(false)
        expect(await manager.validate(cookieHeader(other.setCookie))).not.toBeNull()
        expect(await manager.revokeById('u1', a.session.id)).toBe(true)
        expect(await manager.validate(cookieHeader(a.setCookie))).toBeNull()
        expect(await manager.revokeAll('u1', { except: c.session })).toBe(1)
        expect(await manager.validate(cookieHeader(b.setCookie))).toBeNull()
        expect(await manager.validate(cookieHeader(c.setCookie))).not.toBeNull()
        await manager.revoke(c.session)
        expect(await manager.validate(cookieHeader(c.setCookie))).toBeNull()
        expect(await manager.revokeAll('u2')).toBe(1)
        expect(await manager.list('u2')).toEqual([])
      })

      it('clears the cookie with the name, path and attributes it was set with', async () => {
        const { manager } = setup({ path: '/app', sameSite: 'Strict' })
        const { setCookie } = await manager.create('u1')
        expect(setCookie).toContain('; Path=/app; HttpOnly; SameSite=Strict')
        expect(manager.clearCookie()).toBe(
          'tessera_session=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/app; HttpOnly; SameSite=Strict',
        )
      })

      it('keeps admin sessions apart with their own purpose', async () => {
        const { manager, store, keyring, now } = setup()
        const admin = createSessionManager(store, keyring, {
          now,
          purpose: 'admin-session',
          cookieName: 'tessera_admin',
        })
        const { setCookie } = await manager.create('u1')
        const value = cookieHeader(setCookie).split('=')[1]
        expect(await admin.validateCookie(value)).toBeNull()
      })
    })
  })
}

describeWithService('redis', 'session manager on the real Redis store', (url) => {
  let client: RedisClientType
  const prefixes: string[] = []

  beforeAll(async () => {
    client = createClient({ url, socket: { connectTimeout: 5000 } })
    client.on('error', () => undefined)
    await client.connect()
  })

  afterAll(async () => {
    for (const prefix of prefixes) {
      for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
        if (keys.length > 0) await client.del(keys)
      }
    }
    client.destroy()
  })

  function redisStore(): SessionStore {
    const prefix = `${uniqueName('tessera_test')}:`
    prefixes.push(prefix)
    return createRedisStore(client, { prefix, timeout: 10 })
  }

  it('creates, validates, merges 20 concurrent updates, regenerates and revokes', async () => {
    const manager = createSessionManager(redisStore(), createKeyring(SECRET))
    const first = await manager.create('u1', { data: { base: true } })
    const found = await manager.validate(cookieHeader(first.setCookie))
    expect(found?.session.id).toBe(first.session.id)
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => manager.update(first.session, { [`k${i}`]: i })),
    )
    const merged = (await manager.validate(cookieHeader(first.setCookie)))!.session.data
    expect(Object.keys(merged)).toHaveLength(21)
    const next = await manager.regenerate(first.session)
    expect(await manager.validate(cookieHeader(first.setCookie))).toBeNull()
    expect((await manager.validate(cookieHeader(next!.setCookie)))!.session.data).toEqual(merged)
    await manager.revoke(next!.session)
    expect(await manager.update(next!.session, { late: 1 })).toBeNull()
    expect(await manager.validate(cookieHeader(next!.setCookie))).toBeNull()
    expect(await manager.list('u1')).toEqual([])
  })

  it('keeps session generations in the store, out of the user session list', async () => {
    const store = redisStore()
    const generations = createStoreGenerationStore(store)
    const manager = createSessionManager(store, createKeyring(SECRET))
    await manager.create('u1')
    expect(await generations.get('u1')).toBe(0)
    expect(await generations.bump('u1')).toBe(1)
    expect(await generations.bump('u1')).toBe(2)
    expect(await generations.get('u1')).toBe(2)
    expect(await manager.list('u1')).toHaveLength(1)
    expect(await manager.revokeAll('u1')).toBe(1)
    expect(await generations.get('u1')).toBe(2)
  })
})

describe('createSessionManager: hooks for adapters (acceptToken, token, idleTimeoutOf)', () => {
  it('create({ token }) stores SHA-256 of the given token; validateToken accepts it only under acceptToken', async () => {
    const strict = setupMemory()
    await expect(strict.manager.create(null, { token: 'short-id' })).rejects.toMatchObject({
      code: 'invalid_argument',
    })
    const custom = setupMemory({ acceptToken: (token) => token.length > 0 && token.length < 100 })
    const issued = await custom.manager.create(null, { token: 'short-id', data: { a: 1 } })
    expect(issued.token).toBe('short-id')
    expect(await custom.memory.get(hashToken('short-id'))).not.toBeNull()
    expect((await custom.manager.validateToken('short-id'))?.session.data).toEqual({ a: 1 })
    expect(await strict.manager.validateToken('short-id')).toBeNull()
  })

  it('idleTimeoutOf gives one session its own idle window, read from its data', async () => {
    const { manager, advance } = setupMemory({
      idleTimeout: DAY / 1000,
      idleTimeoutOf: (record) =>
        typeof record.data.idle === 'number' ? record.data.idle : undefined,
    })
    const short = await manager.create(null, { data: { idle: 60 } })
    const long = await manager.create(null)
    expect(short.session.expiresAt - short.session.createdAt).toBe(60_000)
    advance(45_000)
    // active within the window: the idle expiry slides (touch interval is a tenth of it)
    expect(await manager.validateToken(short.token)).not.toBeNull()
    advance(45_000)
    expect(await manager.validateToken(short.token)).not.toBeNull()
    advance(61_000)
    expect(await manager.validateToken(short.token)).toBeNull()
    expect(await manager.validateToken(long.token)).not.toBeNull()
    // an update that changes the window applies the new one at once
    const updated = await manager.update(long.session, { idle: 10 })
    expect(updated!.expiresAt - updated!.lastSeenAt).toBe(10_000)
  })
})

describe('createSessionManager: hasSignedCookie', () => {
  it('is true for a cookie whose signature verifies, without reading the store', async () => {
    const { manager, store, keyring } = setupMemory()
    const { setCookie } = await manager.create('u1')
    const reads = store.count('get')
    expect(manager.hasSignedCookie(cookieHeader(setCookie))).toBe(true)
    expect(
      manager.hasSignedCookie(`tessera_session=${signValue(keyring, 'other', 'x'.repeat(43))}`),
    ).toBe(false)
    expect(manager.hasSignedCookie('tessera_session=forged')).toBe(false)
    expect(manager.hasSignedCookie(undefined)).toBe(false)
    expect(store.count('get')).toBe(reads)
  })
})
