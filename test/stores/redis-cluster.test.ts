import { createCluster, type RedisClusterType } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedisStore, type RedisClusterLike } from '../../src/stores/redis.js'
import { describeStoreConformance } from '../../src/testing/store-conformance.js'
import { startPrivateRedisCluster, type PrivateRedisCluster } from '../helpers/private-servers.js'
import { uniqueName } from '../helpers/services.js'

// A Redis Cluster of three masters on loopback ports, started here and torn down after.
describe('Redis store on Redis Cluster (3 masters)', () => {
  let cluster: PrivateRedisCluster
  let client: RedisClusterType

  beforeAll(async () => {
    cluster = await startPrivateRedisCluster()
    client = createCluster({
      rootNodes: cluster.ports.map((port) => ({ url: `redis://127.0.0.1:${port}` })),
      defaults: { socket: { connectTimeout: 5000 } },
    })
    client.on('error', () => undefined)
    await client.connect()
  })

  afterAll(async () => {
    client?.destroy()
    await cluster?.destroy()
  })

  describeStoreConformance('Redis Cluster store', ({ now }) => {
    // The cluster is private to this file, so a fresh prefix per case is all the isolation needed.
    const store = createRedisStore(client, { prefix: `${uniqueName('t')}:`, now, timeout: 10 })
    return { store, cleanup: () => undefined }
  })

  it('SECURITY: every command goes to a master, never a possibly lagging replica', async () => {
    const flags: (boolean | undefined)[] = []
    const observed: RedisClusterLike = {
      masters: client.masters,
      sendCommand: (firstKey, isReadonly, args, options) => {
        flags.push(isReadonly)
        return client.sendCommand(firstKey, isReadonly, args, options)
      },
    }
    const store = createRedisStore(observed, { prefix: `${uniqueName('t')}:`, timeout: 10 })
    const t = Date.now()
    const session = {
      id: uniqueName('id'),
      userId: 'reader',
      version: 1,
      createdAt: t,
      lastSeenAt: t,
      expiresAt: t + 60_000,
      absoluteExpiresAt: t + 60_000,
      data: {},
      meta: {},
    }
    await store.create(session)
    await store.get(session.id)
    await store.listByUser('reader')
    await store.update({ ...session, version: 2 }, 1)
    await store.deleteByUser('reader')
    expect(flags.length).toBeGreaterThan(5)
    expect(flags.every((flag) => flag === false)).toBe(true)
  })

  it('spreads sessions over the masters and keeps a user set in its own slot', async () => {
    const prefix = `${uniqueName('t')}:`
    const store = createRedisStore(client, { prefix, timeout: 10 })
    const t = Date.now()
    const ids = Array.from({ length: 30 }, () => uniqueName('id'))
    for (const id of ids) {
      await store.create({
        id,
        userId: 'spread',
        version: 1,
        createdAt: t,
        lastSeenAt: t,
        expiresAt: t + 60_000,
        absoluteExpiresAt: t + 60_000,
        data: {},
        meta: {},
      })
    }
    const slots = new Set(
      await Promise.all(
        ids.map(async (id) =>
          Number(
            await client.sendCommand(undefined, true, ['CLUSTER', 'KEYSLOT', `${prefix}s:{${id}}`]),
          ),
        ),
      ),
    )
    expect(slots.size).toBeGreaterThan(1)
    const masters = new Set(
      [...slots].map((slot) => {
        const node = client.getSlotRandomNode(slot)
        return `${node.host}:${node.port}`
      }),
    )
    expect(masters.size).toBeGreaterThan(1)
    expect((await store.listByUser('spread')).length).toBe(30)
    // count() scans every master: the sessions live on several of them.
    expect(await store.count()).toBe(30)
    expect(await store.deleteByUser('spread')).toBe(30)
    expect(await store.count()).toBe(0)
  })

  it('count() on a cluster client without nodeClient is refused, not guessed', async () => {
    const bare: RedisClusterLike = {
      masters: client.masters,
      sendCommand: (firstKey, isReadonly, args, options) =>
        client.sendCommand(firstKey, isReadonly, args, options),
    }
    const store = createRedisStore(bare, { prefix: `${uniqueName('t')}:`, timeout: 10 })
    await expect(store.count()).rejects.toMatchObject({ code: 'config_invalid' })
  })
})
