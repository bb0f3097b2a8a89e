import { createHash, randomBytes } from 'node:crypto'
import { createClient, type RedisClientType } from 'redis'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { SessionRecord, SessionStore } from '../../src/core/session-store.js'
import { createNearCacheStore } from '../../src/stores/near-cache.js'
import {
  createRedisInvalidation,
  type RedisInvalidation,
} from '../../src/stores/redis-invalidation.js'
import { createRedisStore } from '../../src/stores/redis.js'
import { describeWithService, uniqueName } from '../helpers/services.js'

function record(userId: string): SessionRecord {
  const now = Date.now()
  return {
    id: createHash('sha256').update(randomBytes(32)).digest('base64url'),
    userId,
    version: 1,
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + 3_600_000,
    absoluteExpiresAt: now + 86_400_000,
    data: {},
    meta: {},
  }
}

/** A store that counts its reads: the real Redis store underneath. */
function countingReads(store: SessionStore): { store: SessionStore; reads: () => number } {
  let reads = 0
  return {
    reads: () => reads,
    store: {
      ...store,
      get: (id) => {
        reads++
        return store.get(id)
      },
      getByPublicId: (userId, publicId) => {
        reads++
        return store.getByPublicId?.(userId, publicId) ?? Promise.resolve(null)
      },
      create: (r) => store.create(r),
      update: (r, v) => store.update(r, v),
      delete: (id) => store.delete(id),
      listByUser: (u) => store.listByUser(u),
      deleteByUser: (u, o) => store.deleteByUser(u, o),
    },
  }
}

/** Resolves at the next invalidation that names `key` (or drops everything). */
function nextInvalidation(invalidation: RedisInvalidation, key: string): Promise<void> {
  return new Promise((resolve) => {
    invalidation.onInvalidate((keys) => {
      if (keys.includes(key) || keys.includes('*')) resolve()
    })
  })
}

describeWithService('redis', 'near-cache over Redis pub/sub', (url) => {
  let client: RedisClientType
  beforeAll(async () => {
    client = createClient({ url, socket: { connectTimeout: 5000 } })
    client.on('error', () => undefined)
    await client.connect()
  })
  afterAll(() => client.destroy())

  /** One "process": its own subscriber connection, channel and cache over the shared Redis. */
  async function processOf(
    prefix: string,
    channel: string,
    now?: () => number,
  ): Promise<{
    store: SessionStore
    reads: () => number
    invalidation: RedisInvalidation
    subscriber: RedisClientType
    subscriberId: string
  }> {
    const subscriber = client.duplicate()
    subscriber.on('error', () => undefined)
    await subscriber.connect()
    // Its own id, asked before it subscribes (a subscribed connection takes no CLIENT ID).
    const reply: unknown = await subscriber.sendCommand(['CLIENT', 'ID'])
    const subscriberId = typeof reply === 'number' ? String(reply) : ''
    const invalidation = await createRedisInvalidation(client, subscriber, {
      channel,
      ...(now === undefined ? {} : { now }),
    })
    onTestFinished(() => invalidation.close())
    const redis = countingReads(createRedisStore(client, { prefix, timeout: 10 }))
    const store = createNearCacheStore(redis.store, invalidation, now === undefined ? {} : { now })
    // Healthy once its own first heartbeat came back through Redis.
    while (!invalidation.healthy()) await new Promise((resolve) => setImmediate(resolve))
    return { store, reads: redis.reads, invalidation, subscriber, subscriberId }
  }

  async function cleanup(prefix: string): Promise<void> {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await client.del(keys)
    }
  }

  it('serves repeated reads without a round trip, and a delete elsewhere reaches it', async () => {
    const prefix = `${uniqueName('tnear')}:`
    const channel = uniqueName('tnear-channel')
    onTestFinished(() => cleanup(prefix))
    const a = await processOf(prefix, channel)
    const b = await processOf(prefix, channel)
    const session = record('ada')
    // The create's own invalidation reaches b first (it would drop what b reads before it).
    const created = nextInvalidation(b.invalidation, `s:${session.id}`)
    await a.store.create(session)
    await created
    expect(await b.store.get(session.id)).toEqual(session)
    const before = b.reads()
    for (let i = 0; i < 10; i++) expect(await b.store.get(session.id)).toEqual(session)
    expect(b.reads()).toBe(before)
    // By public id too (a bearer request).
    const publicId = session.id.slice(0, 22)
    expect(await b.store.getByPublicId?.('ada', publicId)).toEqual(session)
    const afterPublic = b.reads()
    expect(await b.store.getByPublicId?.('ada', publicId)).toEqual(session)
    expect(b.reads()).toBe(afterPublic)

    const arrived = nextInvalidation(b.invalidation, `s:${session.id}`)
    await a.store.delete(session.id)
    await arrived
    expect(await b.store.get(session.id)).toBeNull()
    expect(await b.store.getByPublicId?.('ada', publicId)).toBeNull()
  })

  it('"log out everywhere" on one process drops the user\'s entries on the others', async () => {
    const prefix = `${uniqueName('tnear')}:`
    const channel = uniqueName('tnear-channel')
    onTestFinished(() => cleanup(prefix))
    const a = await processOf(prefix, channel)
    const b = await processOf(prefix, channel)
    const one = record('bea')
    const two = record('bea')
    const created = nextInvalidation(b.invalidation, `s:${two.id}`)
    await a.store.create(one)
    await a.store.create(two)
    await created
    expect(await b.store.get(one.id)).toEqual(one)
    expect(await b.store.getByPublicId?.('bea', two.id.slice(0, 22))).toEqual(two)
    const arrived = nextInvalidation(b.invalidation, 'u:bea')
    expect(await a.store.deleteByUser('bea')).toBe(2)
    await arrived
    expect(await b.store.get(one.id)).toBeNull()
    expect(await b.store.getByPublicId?.('bea', two.id.slice(0, 22))).toBeNull()
  })

  it('SECURITY: with the subscriber connection killed, the cache is bypassed, never trusted', async () => {
    const prefix = `${uniqueName('tnear')}:`
    const channel = uniqueName('tnear-channel')
    onTestFinished(() => cleanup(prefix))
    const b = await processOf(prefix, channel)
    const raw = createRedisStore(client, { prefix, timeout: 10 })
    const session = record('cy')
    await raw.create(session)
    expect(await b.store.get(session.id)).toEqual(session)
    // Killing our own subscriber only (by its id): other suites share this server.
    const down = new Promise<void>((resolve) => {
      b.subscriber.once('error', () => resolve())
      b.subscriber.once('reconnecting', () => resolve())
    })
    expect(b.subscriberId).toMatch(/^\d+$/)
    await client.sendCommand(['CLIENT', 'KILL', 'ID', b.subscriberId])
    await down
    expect(b.invalidation.healthy()).toBe(false)
    // A revocation the dead channel cannot carry: written behind the cache's back.
    await raw.delete(session.id)
    const before = b.reads()
    expect(await b.store.get(session.id)).toBeNull()
    expect(b.reads()).toBe(before + 1)
  })

  it('SECURITY: a channel that falls silent (no heartbeat within staleAfter) is bypassed', async () => {
    const prefix = `${uniqueName('tnear')}:`
    const channel = uniqueName('tnear-channel')
    onTestFinished(() => cleanup(prefix))
    let offset = 0
    const now = (): number => Date.now() + offset
    const b = await processOf(prefix, channel, now)
    const raw = createRedisStore(client, { prefix, timeout: 10 })
    const session = record('dee')
    await raw.create(session)
    expect(await b.store.get(session.id)).toEqual(session)
    await raw.delete(session.id)
    offset = 10_000 // no message for 10 s on this process's clock
    expect(await b.store.get(session.id)).toBeNull()
  })

  it('SECURITY: a read that raced an invalidation is returned once but never kept', async () => {
    const prefix = `${uniqueName('tnear')}:`
    const channel = uniqueName('tnear-channel')
    onTestFinished(() => cleanup(prefix))
    const subscriber = client.duplicate()
    subscriber.on('error', () => undefined)
    await subscriber.connect()
    const invalidation = await createRedisInvalidation(client, subscriber, { channel })
    onTestFinished(() => invalidation.close())
    while (!invalidation.healthy()) await new Promise((resolve) => setImmediate(resolve))
    const raw = createRedisStore(client, { prefix, timeout: 10 })
    const session = record('eve')
    await raw.create(session)
    let reads = 0
    const slow: SessionStore = {
      ...raw,
      get: async (id) => {
        reads++
        const found = await raw.get(id)
        // The revocation lands while this read is in flight.
        if (reads === 1) await invalidation.publish([`s:${id}`])
        return found
      },
    }
    const store = createNearCacheStore(slow, invalidation)
    expect(await store.get(session.id)).toEqual(session)
    await raw.delete(session.id)
    expect(await store.get(session.id)).toBeNull()
    expect(reads).toBe(2)
  })
})

describe('near-cache options', () => {
  it('refuses a bad heartbeat setting at setup', async () => {
    const fake = {
      publish: () => Promise.resolve(0),
    }
    const subscriber = {
      subscribe: () => Promise.resolve(),
      on: () => undefined,
      isReady: true,
      destroy: () => undefined,
    }
    await expect(
      createRedisInvalidation(fake, subscriber, { heartbeatInterval: 50, staleAfter: 40 }),
    ).rejects.toMatchObject({ code: 'config_invalid' })
  })
})
