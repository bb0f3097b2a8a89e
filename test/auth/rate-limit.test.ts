import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import pg from 'pg'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  applyBackoff,
  createLoginLimiter,
  createMemoryRateLimitStore,
  type LoginLimiter,
  type RateLimitStore,
} from '../../src/auth/rate-limit.js'
import { createRedisRateLimitStore } from '../../src/auth/rate-limit-redis.js'
import {
  createPostgresRateLimitStore,
  createSQLiteRateLimitStore,
} from '../../src/auth/rate-limit-sql.js'
import { describeWithService, uniqueName } from '../helpers/services.js'

/** A clock the test moves by hand (epoch milliseconds). */
function manualClock(start = 1_700_000_000_000): {
  now: () => number
  advance: (s: number) => void
} {
  let t = start
  return { now: () => t, advance: (seconds) => (t += seconds * 1000) }
}

/** The login path as the accounts service runs it, counting the hashes it would compute. */
async function attempt(
  limiter: LoginLimiter,
  who: { account: string; ip: string },
  correct: boolean,
  hashes: { count: number },
): Promise<'ok' | 'wrong' | { retryAfter: number; scope: string }> {
  const check = await limiter.check(who)
  if (!check.allowed) return { retryAfter: check.retryAfter, scope: check.scope }
  hashes.count++ // the password would be verified here
  if (correct) {
    await limiter.succeeded(check.ticket)
    return 'ok'
  }
  await limiter.failed(check.ticket)
  return 'wrong'
}

/**
 * The behaviour every backend must show. `makeStores(n)` gives n stores on one shared backend
 * (separate connections where the backend has connections), as separate processes would have.
 */
function rateLimitSuite(makeStores: (count: number) => Promise<RateLimitStore[]>): void {
  it('per account: 5 free failures, then 1 s doubling to 15 minutes, via the injected clock', async () => {
    const [store] = await makeStores(1)
    const clock = manualClock()
    const limiter = createLoginLimiter({ store: store!, now: clock.now })
    const who = { account: uniqueName('alice'), ip: '203.0.113.1' }
    const hashes = { count: 0 }
    for (let i = 0; i < 5; i++) expect(await attempt(limiter, who, false, hashes)).toBe('wrong')
    const schedule: number[] = []
    for (let i = 0; i < 13; i++) {
      const refused = await attempt(limiter, who, false, hashes)
      if (typeof refused === 'string') throw new Error('expected a refusal')
      expect(refused.scope).toBe('account')
      schedule.push(refused.retryAfter)
      clock.advance(refused.retryAfter - 0.5)
      expect(await attempt(limiter, who, false, hashes)).toMatchObject({ retryAfter: 1 })
      clock.advance(0.5)
      expect(await attempt(limiter, who, false, hashes)).toBe('wrong')
    }
    expect(schedule).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900])
    expect(hashes.count).toBe(5 + 13)
  })

  it('a locked account refuses the right password without hashing, and a success resets', async () => {
    const [store] = await makeStores(1)
    const clock = manualClock()
    const limiter = createLoginLimiter({ store: store!, now: clock.now })
    const who = { account: uniqueName('bob'), ip: '203.0.113.2' }
    const hashes = { count: 0 }
    for (let i = 0; i < 5; i++) await attempt(limiter, who, false, hashes)
    expect(hashes.count).toBe(5)
    expect(await attempt(limiter, who, true, hashes)).toEqual({ retryAfter: 1, scope: 'account' })
    expect(hashes.count).toBe(5) // no hash while locked
    clock.advance(1)
    expect(await attempt(limiter, who, true, hashes)).toBe('ok')
    // The success forgot the failures: five free ones again.
    for (let i = 0; i < 5; i++) expect(await attempt(limiter, who, false, hashes)).toBe('wrong')
    expect(await attempt(limiter, who, false, hashes)).toMatchObject({ retryAfter: 1 })
    await limiter.unlock(who.account)
    expect(await attempt(limiter, who, true, hashes)).toBe('ok')
  })

  it('forgets failures a day after the last one', async () => {
    const [store] = await makeStores(1)
    const clock = manualClock()
    const limiter = createLoginLimiter({ store: store!, now: clock.now })
    const who = { account: uniqueName('carol'), ip: '203.0.113.3' }
    const hashes = { count: 0 }
    for (let i = 0; i < 4; i++) await attempt(limiter, who, false, hashes)
    clock.advance(86_400)
    for (let i = 0; i < 5; i++) expect(await attempt(limiter, who, false, hashes)).toBe('wrong')
  })

  it('50 parallel failures on one account, through two limiters, admit exactly the 5 free ones', async () => {
    const [a, b] = await makeStores(2)
    const clock = manualClock()
    const limiters = [
      createLoginLimiter({ store: a!, now: clock.now }),
      createLoginLimiter({ store: b!, now: clock.now }),
    ]
    const account = uniqueName('dave')
    const hashes = { count: 0 }
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        attempt(limiters[i % 2]!, { account, ip: `198.51.100.${i}` }, false, hashes),
      ),
    )
    expect(results.filter((r) => r === 'wrong')).toHaveLength(5)
    expect(hashes.count).toBe(5)
  })

  it('per IP: 100 failures per 15 minutes shared by two limiters, even in parallel', async () => {
    const [a, b] = await makeStores(2)
    const clock = manualClock()
    const prefix = uniqueName('app')
    const limiters = [
      createLoginLimiter({ store: a!, now: clock.now, keyPrefix: prefix }),
      createLoginLimiter({ store: b!, now: clock.now, keyPrefix: prefix }),
    ]
    const ip = '192.0.2.77'
    const hashes = { count: 0 }
    const results = await Promise.all(
      Array.from({ length: 130 }, (_, i) =>
        attempt(limiters[i % 2]!, { account: `user${i}@example.com`, ip }, false, hashes),
      ),
    )
    expect(results.filter((r) => r === 'wrong')).toHaveLength(100)
    expect(results.find((r) => typeof r !== 'string')).toEqual({ retryAfter: 900, scope: 'ip' })
    // Another IP is not affected; the window ends 15 minutes after its first attempt.
    expect(
      await attempt(limiters[0]!, { account: 'x@example.com', ip: '192.0.2.78' }, false, hashes),
    ).toBe('wrong')
    clock.advance(600)
    expect(await attempt(limiters[1]!, { account: 'y@example.com', ip }, false, hashes)).toEqual({
      retryAfter: 300,
      scope: 'ip',
    })
    clock.advance(300)
    expect(await attempt(limiters[1]!, { account: 'y@example.com', ip }, false, hashes)).toBe(
      'wrong',
    )
  })

  it('per IP: an IPv6 client rotating addresses inside its /64 is one client', async () => {
    const [store] = await makeStores(1)
    const clock = manualClock()
    const limiter = createLoginLimiter({
      store: store!,
      now: clock.now,
      keyPrefix: uniqueName('v6'),
      ip: { limit: 3 },
    })
    const hashes = { count: 0 }
    for (const ip of [
      '2001:db8:1:2::1',
      '2001:db8:1:2:a:b:c:d',
      '2001:db8:1:2:ffff:ffff:ffff:ffff',
    ]) {
      expect(await attempt(limiter, { account: uniqueName('u'), ip }, false, hashes)).toBe('wrong')
    }
    expect(
      await attempt(limiter, { account: uniqueName('u'), ip: '2001:db8:1:2::99' }, false, hashes),
    ).toMatchObject({ scope: 'ip' })
    expect(
      await attempt(limiter, { account: uniqueName('u'), ip: '2001:db8:1:3::1' }, false, hashes),
    ).toBe('wrong')
  })

  it('per IP: successful logins do not use up the budget', async () => {
    const [store] = await makeStores(1)
    const clock = manualClock()
    const limiter = createLoginLimiter({ store: store!, now: clock.now, ip: { limit: 3 } })
    const ip = '192.0.2.90'
    const hashes = { count: 0 }
    for (let i = 0; i < 10; i++) {
      expect(await attempt(limiter, { account: uniqueName('u'), ip }, true, hashes)).toBe('ok')
    }
    for (let i = 0; i < 3; i++) {
      expect(await attempt(limiter, { account: uniqueName('u'), ip }, false, hashes)).toBe('wrong')
    }
    expect(await attempt(limiter, { account: uniqueName('u'), ip }, true, hashes)).toMatchObject({
      scope: 'ip',
    })
  })
}

describe('applyBackoff (the rule every backend runs)', () => {
  it('locks from the 5th failure, doubling, capped', () => {
    const policy = {
      freeFailures: 5,
      initialDelayMs: 1000,
      maxDelayMs: 900_000,
      forgetAfterMs: 86_400_000,
    }
    let state = null
    const delays: number[] = []
    for (let i = 0; i < 16; i++) {
      const { next, decision } = applyBackoff(state, 0 + i * 1_000_000, policy)
      expect(decision.allowed).toBe(true)
      state = next
      delays.push(next?.delayMs ?? -1)
    }
    expect(delays).toEqual([
      0, 0, 0, 0, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 512000, 900000,
      900000,
    ])
  })

  it('refuses options out of range at construction', () => {
    const store = createMemoryRateLimitStore()
    expect(() => createLoginLimiter({ store, account: { freeFailures: 0 } })).toThrow(
      /freeFailures/,
    )
    expect(() => createLoginLimiter({ store, ip: { window: -1 } })).toThrow(/window/)
    expect(() => createLoginLimiter({ store, account: { initialDelay: 10, maxDelay: 5 } })).toThrow(
      /maxDelay/,
    )
  })
})

describe('login limiter on the memory store', () => {
  rateLimitSuite((count) => {
    const store = createMemoryRateLimitStore()
    return Promise.resolve(Array.from({ length: count }, () => store))
  })

  it('when full, forgets the oldest unlocked key, never a lock, and fails closed last', async () => {
    const clock = manualClock()
    const store = createMemoryRateLimitStore({ maxKeys: 2 })
    const limiter = createLoginLimiter({ store, now: clock.now, account: { freeFailures: 1 } })
    expect(await limiter.check({ account: 'a' })).toMatchObject({ allowed: true }) // locked 1 s
    clock.advance(0.5)
    expect(await limiter.check({ account: 'b' })).toMatchObject({ allowed: true }) // locked 1 s
    await expect(limiter.check({ account: 'c' })).rejects.toMatchObject({
      code: 'store_unavailable',
    })
    clock.advance(0.5) // a's lock is over, b's is not: a makes room for c
    expect(await limiter.check({ account: 'c' })).toMatchObject({ allowed: true })
    expect(await limiter.check({ account: 'b' })).toEqual({
      allowed: false,
      retryAfter: 1,
      scope: 'account',
    })
  })
})

describe('login limiter on SQLite (better-sqlite3, one file, separate connections)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-rl-'))
  const file = join(dir, 'limits.db')
  const open: Database.Database[] = []
  afterAll(() => {
    for (const db of open) db.close()
    rmSync(dir, { recursive: true, force: true })
  })

  rateLimitSuite(async (count) => {
    const stores = []
    for (let i = 0; i < count; i++) {
      const db = new Database(file)
      db.pragma('journal_mode = WAL')
      open.push(db)
      const store = createSQLiteRateLimitStore(db)
      await store.migrate() // idempotent: every connection runs it
      stores.push(store)
    }
    return stores
  })

  it('two OS processes hammering one key admit exactly the budget, with no errors', async () => {
    const db = new Database(file)
    open.push(db)
    await createSQLiteRateLimitStore(db).migrate()
    const script = join(
      dirname(fileURLToPath(import.meta.url)),
      'fixtures',
      'sqlite-limit-process.ts',
    )
    const key = uniqueName('proc')
    const children = [0, 1].map(() =>
      spawn(process.execPath, ['--import', 'tsx', script, file, key, '150'], {
        stdio: ['pipe', 'pipe', 'inherit'],
      }),
    )
    const lines = children.map((child) => {
      const queue: string[] = []
      const waiters: Array<(line: string) => void> = []
      let buffer = ''
      child.stdout.on('data', (chunk: Buffer) => {
        buffer += chunk.toString()
        let index
        while ((index = buffer.indexOf('\n')) !== -1) {
          const line = buffer.slice(0, index)
          buffer = buffer.slice(index + 1)
          const waiter = waiters.shift()
          if (waiter) waiter(line)
          else queue.push(line)
        }
      })
      return (): Promise<string> =>
        new Promise((resolve) => {
          const line = queue.shift()
          if (line !== undefined) resolve(line)
          else waiters.push(resolve)
        })
    })
    try {
      expect(await Promise.all(lines.map((next) => next()))).toEqual(['ready', 'ready'])
      for (const child of children) child.stdin.write('go\n')
      const results = (await Promise.all(lines.map((next) => next()))).map(
        (line) => JSON.parse(line) as { allowed: number; errors: number },
      )
      expect(results.reduce((sum, r) => sum + r.errors, 0)).toBe(0)
      expect(results.reduce((sum, r) => sum + r.allowed, 0)).toBe(5)
    } finally {
      for (const child of children) child.kill()
    }
  }, 60_000)

  it('prunes expired rows', async () => {
    const db = new Database(':memory:')
    open.push(db)
    const store = createSQLiteRateLimitStore(db, { table: 'limits' })
    await store.migrate()
    const limiter = createLoginLimiter({ store, now: () => 1000 })
    await limiter.check({ account: 'a', ip: '192.0.2.1' })
    expect(await store.prune(1000 + 899_000)).toBe(0)
    expect(await store.prune(1000 + 900_000)).toBe(1) // the IP window ended
    expect(await store.prune(1000 + 86_400_000)).toBe(1)
  })

  it('refuses a table name that is not an identifier', () => {
    const db = new Database(':memory:')
    open.push(db)
    expect(() => createSQLiteRateLimitStore(db, { table: 'x; DROP TABLE y' })).toThrow(/table/)
  })
})

describeWithService(
  'postgres',
  'login limiter on PostgreSQL (own schema, separate pools)',
  (url) => {
    const schema = uniqueName('rl')
    const pools: pg.Pool[] = []
    beforeAll(async () => {
      const admin = new pg.Pool({ connectionString: url, max: 1 })
      pools.push(admin)
      await admin.query(`CREATE SCHEMA "${schema}"`)
    })
    afterAll(async () => {
      await pools[0]?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      await Promise.all(pools.map((pool) => pool.end()))
    })

    rateLimitSuite(async (count) => {
      const stores = []
      for (let i = 0; i < count; i++) {
        const pool = new pg.Pool({ connectionString: url, max: 5 })
        pools.push(pool)
        const store = createPostgresRateLimitStore(pool, { schema })
        await store.migrate()
        stores.push(store)
      }
      return stores
    })

    it('answers store_unavailable when the database cannot be reached', async () => {
      const pool = new pg.Pool({ connectionString: url, max: 1 })
      await pool.end()
      const limiter = createLoginLimiter({ store: createPostgresRateLimitStore(pool, { schema }) })
      await expect(limiter.check({ account: 'a' })).rejects.toMatchObject({
        code: 'store_unavailable',
      })
    })
  },
)

describeWithService(
  'redis',
  'login limiter on Redis (node-redis, Lua, separate clients)',
  (url) => {
    const clients: Array<{ isOpen: boolean; close(): Promise<unknown> }> = []
    const prefix = `${uniqueName('tessera_rl')}:`
    afterAll(async () => {
      // The server is shared: delete this suite's keys (by its unique prefix) rather than leave
      // them to their TTLs.
      const cleaner = createClient({ url })
      await cleaner.connect()
      for await (const keys of cleaner.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
        if (keys.length > 0) await cleaner.del(keys)
      }
      await cleaner.close()
      for (const client of clients) if (client.isOpen) await client.close()
    })

    rateLimitSuite(async (count) => {
      const stores = []
      for (let i = 0; i < count; i++) {
        const client = createClient({ url })
        client.on('error', () => undefined)
        await client.connect()
        clients.push(client)
        stores.push(createRedisRateLimitStore(client, { prefix }))
      }
      return stores
    })

    it('keys carry a TTL so that Redis cleans them up', async () => {
      const client = createClient({ url })
      await client.connect()
      clients.push(client)
      const limiter = createLoginLimiter({ store: createRedisRateLimitStore(client, { prefix }) })
      const account = uniqueName('ttl')
      await limiter.check({ account, ip: '192.0.2.200' })
      const ttl = await client.pTTL(`${prefix}login:acct:${account}`)
      expect(ttl).toBeGreaterThan(86_000_000)
      expect(ttl).toBeLessThanOrEqual(86_400_000)
      expect(await client.pTTL(`${prefix}login:ip:192.0.2.200`)).toBeLessThanOrEqual(900_000)
    })

    it('answers store_unavailable when the client is closed', async () => {
      const client = createClient({ url })
      await client.connect()
      await client.close()
      const limiter = createLoginLimiter({ store: createRedisRateLimitStore(client, { prefix }) })
      await expect(limiter.check({ account: 'a' })).rejects.toMatchObject({
        code: 'store_unavailable',
      })
    })
  },
)
