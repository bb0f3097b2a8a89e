import { createClient, type RedisClientType } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isTesseraError } from '../../src/core/errors.js'
import type { SessionRecord } from '../../src/core/session-store.js'
import { createRedisStore, type RedisClientLike } from '../../src/stores/redis.js'
import { describeStoreConformance } from '../../src/testing/store-conformance.js'
import { describeWithService, uniqueName } from '../helpers/services.js'

describeWithService('redis', 'Redis store', (url) => {
  let client: RedisClientType

  beforeAll(async () => {
    client = createClient({ url, socket: { connectTimeout: 5000 } })
    client.on('error', () => undefined)
    await client.connect()
  })

  afterAll(() => {
    client.destroy()
  })

  /** Deletes every key under `prefix` (SCAN over our own unique prefix only). */
  async function dropPrefix(prefix: string): Promise<void> {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await client.del(keys)
    }
  }

  describeStoreConformance('Redis store', ({ now }) => {
    const prefix = `${uniqueName('tessera_test')}:`
    // A generous command timeout: the shared server is busy with other suites.
    const store = createRedisStore(client, { prefix, now, timeout: 10 })
    return { store, cleanup: () => dropPrefix(prefix) }
  })

  describe('Redis store specifics', () => {
    function record(now: number, overrides: Partial<SessionRecord> = {}): SessionRecord {
      return {
        id: uniqueName('id'),
        userId: 'user',
        version: 1,
        createdAt: now,
        lastSeenAt: now,
        expiresAt: now + 60_000,
        absoluteExpiresAt: now + 600_000,
        data: {},
        meta: {},
        ...overrides,
      }
    }

    it('keys a session by id with a TTL at its next expiry, and the user set by user', async () => {
      const prefix = `${uniqueName('tessera_test')}:`
      try {
        const t = Date.now()
        const store = createRedisStore(client, { prefix, now: () => t })
        const session = record(t, { userId: 'alice' })
        await store.create(session)
        const sessionKey = `${prefix}s:{${session.id}}`
        const userKey = `${prefix}u:{alice}`
        expect(await client.hGet(sessionKey, 'v')).toBe('1')
        const sessionTtl = await client.pTTL(sessionKey)
        expect(sessionTtl).toBeGreaterThan(50_000)
        expect(sessionTtl).toBeLessThanOrEqual(60_000)
        expect(await client.sMembers(userKey)).toEqual([session.id])
        const userTtl = await client.pTTL(userKey)
        expect(userTtl).toBeGreaterThan(590_000)
        expect(userTtl).toBeLessThanOrEqual(600_000)

        // Extending the idle expiry moves the TTL with it.
        const next = { ...session, version: 2, expiresAt: t + 300_000 }
        expect(await store.update(next, 1)).toBe(true)
        expect(await client.pTTL(sessionKey)).toBeGreaterThan(290_000)
      } finally {
        await dropPrefix(prefix)
      }
    })

    it('listByUser removes ids whose session is gone from the user set', async () => {
      const prefix = `${uniqueName('tessera_test')}:`
      try {
        const t = Date.now()
        const store = createRedisStore(client, { prefix, now: () => t })
        const kept = record(t, { userId: 'bob' })
        const dropped = record(t, { userId: 'bob' })
        await store.create(kept)
        await store.create(dropped)
        // As if its TTL had fired.
        await client.del(`${prefix}s:{${dropped.id}}`)
        expect(await client.sCard(`${prefix}u:{bob}`)).toBe(2)
        expect(await store.listByUser('bob')).toEqual([kept])
        expect(await client.sMembers(`${prefix}u:{bob}`)).toEqual([kept.id])
      } finally {
        await dropPrefix(prefix)
      }
    })

    it('an error reply that is a bug (WRONGTYPE) is not reported as unavailability', async () => {
      const prefix = `${uniqueName('tessera_test')}:`
      try {
        const store = createRedisStore(client, { prefix })
        await client.set(`${prefix}s:{clash}`, 'not a hash')
        const error: unknown = await store.get('clash').catch((caught: unknown) => caught)
        expect(error).toBeInstanceOf(Error)
        expect(isTesseraError(error)).toBe(false)
        expect((error as Error).message).toMatch(/WRONGTYPE/)
      } finally {
        await dropPrefix(prefix)
      }
    })

    it('SECURITY: a session is never stored unless its user set was written first', async () => {
      const prefix = `${uniqueName('tessera_test')}:`
      try {
        // The real client, with every command on a user set failing (as if its node were down).
        const failing: RedisClientLike = {
          sendCommand: (args, options) =>
            args.some((arg) => arg.startsWith(`${prefix}u:`))
              ? Promise.reject(new Error('user set unreachable'))
              : client.sendCommand(args, options),
        }
        const t = Date.now()
        const store = createRedisStore(failing, { prefix })
        const session = record(t, { userId: 'mallory' })
        await expect(store.create(session)).rejects.toMatchObject({ code: 'store_unavailable' })
        // No live session escaped the user's set, so deleteByUser cannot miss one.
        expect(await store.get(session.id)).toBeNull()

        const anonymous = record(t, { userId: null })
        await store.create(anonymous)
        await expect(
          store.update({ ...anonymous, version: 2, userId: 'mallory' }, 1),
        ).rejects.toMatchObject({ code: 'store_unavailable' })
        expect(await store.get(anonymous.id)).toEqual(anonymous)
      } finally {
        await dropPrefix(prefix)
      }
    })

    it('count() counts the live sessions under its own prefix, anonymous ones included', async () => {
      const base = uniqueName('tessera_test')
      // `*` in a prefix is a glob character for SCAN MATCH: escaped, it matches only itself.
      const prefix = `${base}*:`
      const neighbour = `${base}-other:`
      try {
        const t = Date.now()
        const store = createRedisStore(client, { prefix, now: () => t })
        const refresh = createRedisStore(client, { prefix: `${prefix}rt:`, now: () => t })
        const other = createRedisStore(client, { prefix: neighbour, now: () => t })
        expect(await store.count()).toBe(0)
        const sessions = Array.from({ length: 1200 }, (_, i) =>
          record(t, { userId: i === 0 ? null : `user${i % 7}` }),
        )
        for (let i = 0; i < sessions.length; i += 100) {
          await Promise.all(sessions.slice(i, i + 100).map((s) => store.create(s)))
        }
        await store.create(record(t, { expiresAt: t - 1 })) // already dead: never stored
        await refresh.create(record(t))
        await other.create(record(t))
        await other.create(record(t))
        expect(await store.count()).toBe(1200)
        expect(await refresh.count()).toBe(1)
        expect(await other.count()).toBe(2)

        const [first, second] = sessions
        await store.delete(first?.id ?? '')
        expect(await store.update({ ...(second as SessionRecord), version: 2 }, 1)).toBe(true)
        expect(await store.count()).toBe(1199)
        const removed = await store.deleteByUser('user3')
        expect(removed).toBeGreaterThan(0)
        expect(await store.count()).toBe(1199 - removed)
      } finally {
        await dropPrefix(base) // both prefixes start with it
      }
    })

    it('refuses a prefix with hash-tag braces and a bad timeout', () => {
      expect(() => createRedisStore(client, { prefix: 'app:{x}:' })).toThrow(
        expect.objectContaining({ code: 'config_invalid' }),
      )
      expect(() => createRedisStore(client, { timeout: -1 })).toThrow(
        expect.objectContaining({ code: 'config_invalid' }),
      )
    })

    it('a client that was never connected gives store_unavailable, never null', async () => {
      const idle = createClient({ url })
      const store = createRedisStore(idle)
      await expect(store.get('x')).rejects.toMatchObject({ code: 'store_unavailable' })
      await expect(store.listByUser('u')).rejects.toMatchObject({ code: 'store_unavailable' })
    })
  })
})
