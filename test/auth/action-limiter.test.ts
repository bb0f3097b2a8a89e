import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createActionLimiter,
  DEFAULT_ACTION_POLICIES,
  type ActionLimiter,
} from '../../src/auth/action-limiter.js'
import { createMemoryRateLimitStore, type RateLimitStore } from '../../src/auth/rate-limit.js'
import { createRedisRateLimitStore } from '../../src/auth/rate-limit-redis.js'
import {
  createPostgresRateLimitStore,
  createSQLiteRateLimitStore,
} from '../../src/auth/rate-limit-sql.js'
import { describeWithService, uniqueName } from '../helpers/services.js'

function manualClock(start = 1_700_000_000_000): {
  now: () => number
  advance: (s: number) => void
} {
  let t = start
  return { now: () => t, advance: (seconds) => (t += seconds * 1000) }
}

const POLICIES = {
  mail: { account: { limit: 3, window: 3600 }, ip: { limit: 5, window: 600 } },
  guess: { ip: { limit: 4, window: 900 } },
}

async function outcomes(
  limiter: ActionLimiter,
  action: string,
  subject: { account?: string; ip?: string },
  times: number,
): Promise<string[]> {
  const seen: string[] = []
  for (let i = 0; i < times; i++) {
    const check = await limiter.check(action, subject)
    seen.push(check.allowed ? 'ok' : `${check.scope}:${check.retryAfter}`)
  }
  return seen
}

/**
 * What every store must show. `makeStores(n)` gives n stores on one shared backend (separate
 * connections), as n server processes would have.
 */
function actionLimiterSuite(makeStores: (count: number) => Promise<RateLimitStore[]>): void {
  it('per account: the limit, then refusals with the time left, then a new window', async () => {
    const [store] = await makeStores(1)
    const clock = manualClock()
    const limiter = createActionLimiter({ store: store!, policies: POLICIES, now: clock.now })
    const account = uniqueName('alice')
    expect(await outcomes(limiter, 'mail', { account }, 4)).toEqual([
      'ok',
      'ok',
      'ok',
      'account:3600',
    ])
    clock.advance(3599)
    expect(await outcomes(limiter, 'mail', { account }, 1)).toEqual(['account:1'])
    clock.advance(1)
    expect(await outcomes(limiter, 'mail', { account }, 1)).toEqual(['ok'])
    // Another account is not affected; another action has its own count.
    expect(await outcomes(limiter, 'mail', { account: uniqueName('bob') }, 1)).toEqual(['ok'])
  })

  it('per IP across accounts, an IPv6 /64 as one client, and the account not counted when the IP is refused', async () => {
    const [store] = await makeStores(1)
    const clock = manualClock()
    const limiter = createActionLimiter({ store: store!, policies: POLICIES, now: clock.now })
    const ip = `2001:db8:${Math.floor(Math.random() * 0xffff).toString(16)}:1::1`
    const seen: string[] = []
    for (let i = 0; i < 7; i++) {
      const check = await limiter.check('mail', {
        account: uniqueName('a'),
        ip: ip.replace(/::1$/, `::${i + 1}`),
      })
      seen.push(check.allowed ? 'ok' : `${check.scope}:${check.retryAfter}`)
    }
    expect(seen).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ip:600', 'ip:600'])
    // An account tried only from the refused IP was not counted: it still has its 3 elsewhere.
    const account = uniqueName('c')
    expect(await outcomes(limiter, 'mail', { account, ip }, 1)).toEqual(['ip:600'])
    expect(await outcomes(limiter, 'mail', { account, ip: '198.51.100.7' }, 3)).toEqual([
      'ok',
      'ok',
      'ok',
    ])
  })

  it('two processes on one store enforce one limit, also for a parallel burst', async () => {
    const [one, two] = await makeStores(2)
    const clock = manualClock()
    const a = createActionLimiter({ store: one!, policies: POLICIES, now: clock.now })
    const b = createActionLimiter({ store: two!, policies: POLICIES, now: clock.now })
    const ip = `198.18.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`
    const burst = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? a : b).check('guess', { ip })),
    )
    expect(burst.filter((check) => check.allowed)).toHaveLength(4)
    const refused = burst.find((check) => !check.allowed)
    expect(refused).toMatchObject({ allowed: false, scope: 'ip', retryAfter: 900 })
  })

  it('refund gives the attempts of a ticket back', async () => {
    const [store] = await makeStores(1)
    const clock = manualClock()
    const limiter = createActionLimiter({ store: store!, policies: POLICIES, now: clock.now })
    const account = uniqueName('d')
    for (let i = 0; i < 3; i++) {
      const check = await limiter.check('mail', { account })
      if (!check.allowed) throw new Error('expected an admission')
      if (i === 2) await limiter.refund(check.ticket)
    }
    expect(await outcomes(limiter, 'mail', { account }, 2)).toEqual(['ok', 'account:3600'])
    await limiter.reset('mail', account)
    expect(await outcomes(limiter, 'mail', { account }, 1)).toEqual(['ok'])
  })
}

describe('action limiter: configuration', () => {
  const store = createMemoryRateLimitStore()

  it('has the reset, e-mail and passkey actions by default', () => {
    const limiter = createActionLimiter({ store })
    expect(limiter.actions).toEqual([
      'password_reset_request',
      'password_reset_confirm',
      'email_verification_request',
      'email_verify',
      'email_change_request',
      'email_change_confirm',
      'email_code_request',
      'email_code_verify',
      'passkey_login_options',
    ])
    expect(DEFAULT_ACTION_POLICIES.password_reset_request?.account?.limit).toBe(3)
  })

  it('refuses an unknown action and bad policies', async () => {
    const limiter = createActionLimiter({ store, policies: POLICIES })
    await expect(limiter.check('nope', { ip: '192.0.2.1' })).rejects.toMatchObject({
      code: 'config_invalid',
    })
    for (const policies of [
      { x: { ip: { limit: 0, window: 60 } } },
      { x: { account: { limit: 1.5, window: 60 } } },
      { x: { ip: { limit: 1, window: 0 } } },
      { 'Bad Name': { ip: { limit: 1, window: 60 } } },
    ]) {
      expect(() => createActionLimiter({ store, policies })).toThrow(
        expect.objectContaining({ code: 'config_invalid' }) as Error,
      )
    }
  })

  it('a store that fails becomes store_unavailable (fail closed)', async () => {
    const broken: RateLimitStore = {
      hitBackoff: () => Promise.reject(new Error('down')),
      hitWindow: () => Promise.reject(new Error('down')),
      refundWindow: () => Promise.reject(new Error('down')),
      reset: () => Promise.reject(new Error('down')),
    }
    const limiter = createActionLimiter({ store: broken, policies: POLICIES })
    await expect(limiter.check('mail', { account: 'a' })).rejects.toMatchObject({
      code: 'store_unavailable',
    })
  })
})

describe('action limiter on the memory store', () => {
  actionLimiterSuite((count) => {
    const store = createMemoryRateLimitStore()
    return Promise.resolve(Array.from({ length: count }, () => store))
  })
})

describe('action limiter on SQLite (one file, separate connections)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-action-'))
  const open: Database.Database[] = []
  afterAll(() => {
    for (const db of open) db.close()
    rmSync(dir, { recursive: true, force: true })
  })
  actionLimiterSuite(async (count) => {
    const file = join(dir, `${uniqueName('rl')}.db`)
    const stores = []
    for (let i = 0; i < count; i++) {
      const db = new Database(file)
      db.pragma('busy_timeout = 2000')
      open.push(db)
      const store = createSQLiteRateLimitStore(db)
      await store.migrate()
      stores.push(store)
    }
    return stores
  })
})

describeWithService(
  'postgres',
  'action limiter on PostgreSQL (own schema, separate pools)',
  (url) => {
    const schema = uniqueName('arl')
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
    actionLimiterSuite(async (count) => {
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
  },
)

describeWithService('redis', 'action limiter on Redis (separate clients)', (url) => {
  const clients: Array<{ isOpen: boolean; close(): Promise<unknown> }> = []
  const prefix = `${uniqueName('tessera_arl')}:`
  afterAll(async () => {
    const cleaner = createClient({ url })
    await cleaner.connect()
    for await (const keys of cleaner.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
      if (keys.length > 0) await cleaner.del(keys)
    }
    await cleaner.close()
    for (const client of clients) if (client.isOpen) await client.close()
  })
  actionLimiterSuite(async (count) => {
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
})
