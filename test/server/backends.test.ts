import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { createClient } from 'redis'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { SessionRecord, SessionStore } from '../../src/core/session-store.js'
import { cacheFor, loadDriver, openBackends } from '../../src/server/backends.js'
import { loadConfig } from '../../src/server/config.js'
import { describeWithService, uniqueName } from '../helpers/services.js'
import { dropRedisPrefix } from './api-harness.js'

/** A read whose calls are counted and settled by the test. */
function controlledRead() {
  const calls: Array<{ resolve(value: number): void; reject(error: Error): void }> = []
  const read = (): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      calls.push({ resolve, reject })
    })
  return { read, calls }
}

describe('cacheFor (the Redis session count kept between scrapes)', () => {
  it('reads once per period: later callers get the kept value until it is older than ms', async () => {
    let t = 1_000
    const { read, calls } = controlledRead()
    const count = cacheFor(read, 30_000, () => t)
    const first = count()
    calls[0]?.resolve(7)
    expect(await first).toBe(7)
    t += 29_999
    expect(await count()).toBe(7)
    expect(calls).toHaveLength(1)
    t += 1
    const second = count()
    expect(calls).toHaveLength(2)
    calls[1]?.resolve(9)
    expect(await second).toBe(9)
  })

  it('callers during a read share it instead of starting another', async () => {
    const { read, calls } = controlledRead()
    const count = cacheFor(read, 30_000, () => 0)
    const a = count()
    const b = count()
    expect(calls).toHaveLength(1)
    calls[0]?.resolve(3)
    expect(await Promise.all([a, b])).toEqual([3, 3])
  })

  it('does not keep a failure: the next caller reads again', async () => {
    const { read, calls } = controlledRead()
    const count = cacheFor(read, 30_000, () => 0)
    const failed = count()
    calls[0]?.reject(new Error('redis away'))
    await expect(failed).rejects.toThrow('redis away')
    const again = count()
    expect(calls).toHaveLength(2)
    calls[1]?.resolve(4)
    expect(await again).toBe(4)
  })
})

describe('loadDriver', () => {
  it('names the package to install when an optional driver is missing', async () => {
    const missing = loadDriver(
      // A specifier held in a variable, so no bundler or type checker resolves it.
      () => import(String('tessera-no-such-driver')),
      'tessera-no-such-driver',
      'DATABASE_URL names PostgreSQL',
    )
    await expect(missing).rejects.toMatchObject({
      code: 'config_invalid',
      message:
        'DATABASE_URL names PostgreSQL: install the tessera-no-such-driver package (npm install tessera-no-such-driver)',
    })
  })

  it('passes other import errors through and returns the module when present', async () => {
    const broken = new Error('syntax error in the driver')
    await expect(loadDriver(() => Promise.reject(broken), 'x', 'why')).rejects.toBe(broken)
    const redis = await loadDriver(() => import('redis'), 'redis', 'REDIS_URL is set')
    expect(typeof redis.createClient).toBe('function')
  })
})

describeWithService('redis', 'the near-cache of Redis sessions (issue 18)', (redisUrl) => {
  async function open(
    extra: Record<string, string>,
  ): Promise<{ store: SessionStore; prefix: string }> {
    const cwd = mkdtempSync(join(tmpdir(), 'tessera-backends-'))
    const prefix = `${uniqueName('tbnc')}:`
    const config = loadConfig(
      {
        NODE_ENV: 'test',
        DATABASE_URL: 'sqlite::memory:',
        REDIS_URL: redisUrl,
        TESSERA_REDIS_PREFIX: prefix,
        ...extra,
      },
      { cwd, envFiles: false },
    )
    const backends = await openBackends(config, pino({ level: 'silent' }))
    onTestFinished(async () => {
      await backends.close()
      await dropRedisPrefix(redisUrl, prefix)
      rmSync(cwd, { recursive: true, force: true })
    })
    return { store: backends.sessionStore, prefix }
  }

  function record(): SessionRecord {
    const now = Date.now()
    return {
      id: randomBytes(32).toString('base64url').slice(0, 43),
      userId: 'nc-user',
      version: 1,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: now + 60_000,
      absoluteExpiresAt: now + 600_000,
      data: {},
      meta: {},
    }
  }

  /** Deletes the session's key behind the store's back (no invalidation published). */
  async function deleteBehind(prefix: string, id: string): Promise<void> {
    const client = createClient({ url: redisUrl })
    await client.connect()
    await client.del(`${prefix}s:{${id}}`)
    client.destroy()
  }

  it('TESSERA_NEAR_CACHE=on with Redis: reads are served in-process once the channel is up', async () => {
    const { store, prefix } = await open({ TESSERA_NEAR_CACHE: 'on' })
    // The channel is healthy once its first heartbeat came back (a few ms): until then reads
    // go to Redis, and a record deleted behind the store's back reads as gone.
    let served = false
    for (let attempt = 0; attempt < 10_000 && !served; attempt++) {
      const session = record()
      await store.create(session)
      expect(await store.get(session.id)).toEqual(session)
      await deleteBehind(prefix, session.id)
      served = (await store.get(session.id)) !== null
    }
    expect(served).toBe(true)
  })

  it('is off by default: every read goes to Redis', async () => {
    const { store, prefix } = await open({})
    for (let attempt = 0; attempt < 20; attempt++) {
      const session = record()
      await store.create(session)
      expect(await store.get(session.id)).toEqual(session)
      await deleteBehind(prefix, session.id)
      expect(await store.get(session.id)).toBeNull()
    }
  })
})
