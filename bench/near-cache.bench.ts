/**
 * The near-cache's saving on the cookie read (issue 18): `validateCookie` over the Redis store
 * alone and over `createNearCacheStore`, ROUNDS interleaved rounds of CALLS sequential calls,
 * wall and CPU time (process.cpuUsage) per call, and how many reads reached Redis.
 *
 *   npx tsx bench/near-cache.bench.ts      (BENCH_CALLS=5000 BENCH_ROUNDS=3)
 */
import { randomBytes } from 'node:crypto'
import { loadavg } from 'node:os'
import { pathToFileURL } from 'node:url'
import { createClient } from 'redis'
import { createKeyring } from '../src/core/keyring.js'
import { createSessionManager } from '../src/core/session-manager.js'
import type { SessionStore } from '../src/core/session-store.js'
import {
  createNearCacheStore,
  createRedisInvalidation,
  createRedisStore,
} from '../src/stores/redis.js'

const CALLS = Number(process.env.BENCH_CALLS ?? 5000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const REDIS_URL = process.env.TESSERA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

export async function run(): Promise<void> {
  const client = createClient({ url: REDIS_URL })
  await client.connect()
  const subscriber = client.duplicate()
  await subscriber.connect()
  const prefix = `tncb_${randomBytes(4).toString('hex')}:`
  const invalidation = await createRedisInvalidation(client, subscriber, {
    channel: `${prefix}invalidate`,
  })
  try {
    const raw = createRedisStore(client, { prefix })
    let reads = 0
    const counted: SessionStore = {
      ...raw,
      get: (id) => {
        reads++
        return raw.get(id)
      },
    }
    const keyring = createKeyring(randomBytes(32).toString('base64url'))
    const plain = createSessionManager(counted, keyring)
    const cached = createSessionManager(createNearCacheStore(counted, invalidation), keyring)
    while (!invalidation.healthy()) await new Promise((resolve) => setTimeout(resolve, 5))
    const issued = await plain.create('bench')
    const cookie = issued.setCookie.split(';')[0]?.split('=').slice(1).join('=') ?? ''
    console.log(
      `near-cache: ${CALLS} sequential validateCookie per round; load ${loadavg()[0]?.toFixed(2)}`,
    )
    const rows = []
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, manager] of [
        ['redis store', plain],
        ['near-cache', cached],
      ] as const) {
        reads = 0
        const started = performance.now()
        const cpu = process.cpuUsage()
        for (let i = 0; i < CALLS; i++) await manager.validateCookie(cookie)
        const used = process.cpuUsage(cpu)
        rows.push({
          round,
          store: name,
          'wall µs/call': (((performance.now() - started) * 1000) / CALLS).toFixed(1),
          'CPU µs/call': ((used.user + used.system) / CALLS).toFixed(1),
          'reads to Redis': reads,
          load: loadavg()[0]?.toFixed(2),
        })
      }
    }
    console.table(rows)
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await client.del(keys)
    }
  } finally {
    await invalidation.close()
    client.destroy()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await run()
