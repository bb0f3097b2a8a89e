import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { createClient, type RedisClientType } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TesseraError } from '../../src/core/errors.js'
import type { SessionRecord, SessionStore } from '../../src/core/session-store.js'
import { createPostgresStore } from '../../src/stores/postgres.js'
import { createRedisStore } from '../../src/stores/redis.js'
import { createRedisRateLimitStore } from '../../src/auth/rate-limit-redis.js'
import {
  freePort,
  startPrivatePostgres,
  startPrivateRedis,
  type PrivatePostgres,
  type PrivateRedis,
} from '../helpers/private-servers.js'
import { uniqueName } from '../helpers/services.js'

// Fault tests run against private servers that the test stops, pauses and restarts; the shared
// servers are never touched. They assert that calls settle with `store_unavailable`, not how fast.

function record(overrides: Partial<SessionRecord> = {}): SessionRecord {
  const t = Date.now()
  return {
    id: uniqueName('id'),
    userId: 'fault-user',
    version: 1,
    createdAt: t,
    lastSeenAt: t,
    expiresAt: t + 3_600_000,
    absoluteExpiresAt: t + 7_200_000,
    data: { a: 1 },
    meta: {},
    ...overrides,
  }
}

async function expectUnavailable(call: Promise<unknown>): Promise<void> {
  const outcome = await call.then(
    (value) => ({ settled: 'resolved', value }),
    (error: unknown) => ({ settled: 'rejected', error }),
  )
  expect(outcome).toMatchObject({ settled: 'rejected' })
  const { error } = outcome as { error: unknown }
  expect(error).toBeInstanceOf(TesseraError)
  expect(error).toMatchObject({ code: 'store_unavailable' })
}

/** Every operation of the store fails with store_unavailable (none hangs, none returns null). */
async function expectEveryCallUnavailable(
  store: SessionStore,
  existing: SessionRecord,
): Promise<void> {
  await expectUnavailable(store.get(existing.id))
  await expectUnavailable(store.get('missing'))
  await expectUnavailable(store.create(record()))
  await expectUnavailable(store.update({ ...existing, version: 2 }, 1))
  await expectUnavailable(store.delete(existing.id))
  await expectUnavailable(store.listByUser('fault-user'))
  await expectUnavailable(store.deleteByUser('fault-user'))
}

/** Retries `body` until it stops throwing store_unavailable (the store recovering by itself). */
async function eventually<T>(body: () => Promise<T>, ms = 30_000): Promise<T> {
  const until = Date.now() + ms
  for (;;) {
    try {
      return await body()
    } catch (error) {
      if (!(error instanceof TesseraError) || Date.now() > until) throw error
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
}

describe('Redis store faults (private redis-server)', () => {
  let server: PrivateRedis

  beforeAll(async () => {
    server = await startPrivateRedis()
  })

  afterAll(async () => {
    await server?.destroy()
  })

  function recommendedClient(url: string): RedisClientType {
    const client: RedisClientType = createClient({
      url,
      socket: { connectTimeout: 1000, reconnectStrategy: (retries) => Math.min(retries * 50, 500) },
      disableOfflineQueue: true,
      commandOptions: { timeout: 1000 },
    })
    client.on('error', () => undefined)
    return client
  }

  it('a server stopped mid-test: every call throws store_unavailable; it recovers by itself', async () => {
    const client = recommendedClient(server.url)
    await client.connect()
    try {
      const store = createRedisStore(client, { prefix: 'fault:', timeout: 1 })
      const existing = record()
      await store.create(existing)
      expect(await store.get(existing.id)).toEqual(existing)

      await server.stop()
      await expectEveryCallUnavailable(store, existing)

      await server.start()
      // Same client, same store: it reconnects on its own. (The server kept no data.)
      expect(await eventually(() => store.get(existing.id))).toBeNull()
      const fresh = record()
      await store.create(fresh)
      expect(await store.get(fresh.id)).toEqual(fresh)
      expect(await store.listByUser('fault-user')).toEqual([fresh])
    } finally {
      client.destroy()
    }
  })

  it('with the offline queue on (client defaults), the store timeout still bounds every call', async () => {
    const client: RedisClientType = createClient({ url: server.url })
    client.on('error', () => undefined)
    await client.connect()
    try {
      const store = createRedisStore(client, { prefix: 'fault2:', timeout: 1 })
      const existing = record()
      await store.create(existing)
      await server.stop()
      await expectEveryCallUnavailable(store, existing)
      await server.start()
      const fresh = record()
      await eventually(() => store.create(fresh))
      expect(await store.get(fresh.id)).toEqual(fresh)
    } finally {
      client.destroy()
    }
  })

  it('a server that stops answering (CLIENT PAUSE): calls time out with store_unavailable', async () => {
    const client = recommendedClient(server.url)
    const admin = recommendedClient(server.url)
    await Promise.all([client.connect(), admin.connect()])
    try {
      const store = createRedisStore(client, { prefix: 'fault3:', timeout: 1 })
      const existing = record()
      await store.create(existing)
      await admin.sendCommand(['CLIENT', 'PAUSE', '4000', 'ALL'])
      await expectUnavailable(store.get(existing.id))
      await expectUnavailable(store.update({ ...existing, version: 2 }, 1))
      // Once the pause ends the same store answers again.
      expect(await eventually(() => store.get(existing.id))).toEqual(existing)
    } finally {
      client.destroy()
      admin.destroy()
    }
  })

  it('a frozen server (SIGSTOP): the rate-limit store rejects with store_unavailable, not a hang', async () => {
    const client = recommendedClient(server.url)
    await client.connect()
    try {
      const limits = createRedisRateLimitStore(client, {
        prefix: uniqueName('rl') + ':',
        timeout: 1,
      })
      const policy = { limit: 5, windowMs: 60_000 }
      expect(await limits.hitWindow('ip', Date.now(), policy)).toEqual({ allowed: true })
      server.pause()
      try {
        await expectUnavailable(limits.hitWindow('ip', Date.now(), policy))
        await expectUnavailable(limits.reset('ip'))
      } finally {
        server.resume()
      }
      expect(await eventually(() => limits.hitWindow('ip', Date.now(), policy))).toEqual({
        allowed: true,
      })
    } finally {
      client.destroy()
    }
  })

  it('a closed port from the start: store_unavailable, never null', async () => {
    const port = await freePort()
    const client = recommendedClient(`redis://127.0.0.1:${port}`)
    client.connect().catch(() => undefined)
    try {
      const store = createRedisStore(client, { prefix: 'fault4:', timeout: 1 })
      await expectEveryCallUnavailable(store, record())
    } finally {
      client.destroy()
    }
  })

  it('falls back from EVALSHA to EVAL after SCRIPT FLUSH', async () => {
    const client = recommendedClient(server.url)
    await client.connect()
    try {
      const store = createRedisStore(client, { prefix: 'flush:', timeout: 1 })
      const existing = record()
      await store.create(existing)
      await client.sendCommand(['SCRIPT', 'FLUSH'])
      expect(await store.update({ ...existing, version: 2 }, 1)).toBe(true)
      expect((await store.get(existing.id))?.version).toBe(2)
    } finally {
      client.destroy()
    }
  })
})

describe('PostgreSQL store faults (private PostgreSQL 15)', () => {
  let server: PrivatePostgres

  beforeAll(async () => {
    server = await startPrivatePostgres()
  }, 120_000)

  afterAll(async () => {
    await server?.destroy()
  })

  function recommendedPool(url: string): pg.Pool {
    const pool = new pg.Pool({
      connectionString: url,
      max: 4,
      connectionTimeoutMillis: 1000,
      query_timeout: 1000,
    })
    pool.on('error', () => undefined)
    return pool
  }

  it('a server stopped mid-test: every call throws store_unavailable; it recovers by itself', async () => {
    const pool = recommendedPool(server.url)
    try {
      const store = createPostgresStore(pool, { timeout: 1, table: 'stopped' })
      await store.migrate()
      const existing = record()
      await store.create(existing)
      expect(await store.get(existing.id)).toEqual(existing)

      await server.stop()
      await expectEveryCallUnavailable(store, existing)
      await expectUnavailable(store.migrate())

      await server.start()
      // Same pool, same store: the pool replaces its dead connections.
      expect(await eventually(() => store.get(existing.id))).toEqual(existing)
      const fresh = record()
      await store.create(fresh)
      expect(await store.get(fresh.id)).toEqual(fresh)
    } finally {
      await pool.end()
    }
  })

  it('a server that stops answering (SIGSTOP): calls time out with store_unavailable', async () => {
    const pool = recommendedPool(server.url)
    const pids: number[] = []
    const signal = promisify(execFile)
    try {
      const store = createPostgresStore(pool, { timeout: 1, table: 'paused' })
      await store.migrate()
      const existing = record()
      await store.create(existing)

      // The postmaster and every backend stop answering, but their sockets stay open.
      const dataDir = server.dataDir
      const postmaster = Number(
        readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0],
      )
      const { stdout } = await signal('pgrep', ['-P', String(postmaster)])
      pids.push(postmaster, ...stdout.split('\n').filter(Boolean).map(Number))
      for (const pid of pids) process.kill(pid, 'SIGSTOP')

      await expectUnavailable(store.get(existing.id))
      await expectUnavailable(store.update({ ...existing, version: 2 }, 1))
      await expectUnavailable(store.listByUser('fault-user'))

      for (const pid of pids.splice(0)) process.kill(pid, 'SIGCONT')
      expect(await eventually(() => store.get(existing.id))).toEqual(existing)
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGCONT')
      await pool.end()
    }
  })

  it('a closed port from the start: store_unavailable, never null', async () => {
    const port = await freePort()
    const pool = recommendedPool(`postgres://postgres@127.0.0.1:${port}/postgres`)
    try {
      const store = createPostgresStore(pool, { timeout: 1 })
      await expectUnavailable(store.migrate())
      await expectEveryCallUnavailable(store, record())
    } finally {
      await pool.end()
    }
  })
})
