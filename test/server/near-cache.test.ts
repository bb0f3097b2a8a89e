import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { describeWithPostgresAndRedis, uniqueName } from '../helpers/services.js'
import { createSchema, dropRedisPrefix } from './api-harness.js'
import { spawnEntry, type ServerProcess } from './process.js'

// Issue 18: the revocation bound of the near-cache, measured, not claimed. Three real server
// processes share PostgreSQL and Redis (near-cache on, the default with Redis). A session is
// read on two of them until their caches hold it, then ended on the third; each of the two is
// polled back to back until it refuses the cookie. The bound: 100 ms at p99.

const PASSWORD = 'correct horse battery staple'
const ROUNDS = 30

describeWithPostgresAndRedis('near-cache: revocation bound over 3 server processes', (urls) => {
  const servers: ServerProcess[] = []
  const prefix = `${uniqueName('tnc')}:`
  let drop: () => Promise<void> = () => Promise.resolve()

  beforeAll(async () => {
    const schema = uniqueName('srvnc')
    drop = await createSchema(urls.pgUrl, schema)
    const url = new URL(urls.pgUrl)
    url.searchParams.set('options', `-c search_path=${schema}`)
    const env = {
      TESSERA_SECRET: randomBytes(32).toString('base64url'),
      DATABASE_URL: url.toString(),
      REDIS_URL: urls.redisUrl,
      TESSERA_REDIS_PREFIX: prefix,
      TESSERA_NEAR_CACHE: 'on',
      LOG_LEVEL: 'warn',
    }
    // One at a time: the first one migrates the schema.
    for (let index = 0; index < 3; index++)
      servers.push(await spawnEntry('test/server/fixtures/serve.ts', { env }))
  }, 60_000)

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.cleanup()))
    await drop()
    await dropRedisPrefix(urls.redisUrl, prefix)
  })

  const base = (server: ServerProcess): string => `http://127.0.0.1:${server.port}`

  async function session(server: ServerProcess, cookie: string): Promise<number> {
    const response = await fetch(`${base(server)}/auth/session`, { headers: { cookie } })
    await response.arrayBuffer()
    return response.status
  }

  /** Milliseconds from `since` until `server` refuses the cookie (polled back to back). */
  async function refusedAfter(
    server: ServerProcess,
    cookie: string,
    since: number,
  ): Promise<number> {
    for (let attempt = 0; attempt < 10_000; attempt++) {
      if ((await session(server, cookie)) === 401) return performance.now() - since
    }
    throw new Error('the revoked session was still accepted after 10,000 requests')
  }

  function p99(values: number[]): number {
    const sorted = [...values].sort((a, b) => a - b)
    return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] as number
  }

  it('a logout on one process is refused on the other two within 100 ms at p99', async () => {
    const [a, b, c] = servers as [ServerProcess, ServerProcess, ServerProcess]
    const email = `${uniqueName('nc')}@example.com`
    const signup = await fetch(`${base(a)}/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' },
      body: JSON.stringify({ email, password: PASSWORD }),
    })
    expect(signup.status).toBe(201)
    const latencies: number[] = []
    for (let round = 0; round < ROUNDS; round++) {
      const login = await fetch(`${base(a)}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' },
        body: JSON.stringify({ email, password: PASSWORD }),
      })
      expect(login.status).toBe(200)
      const cookie = login.headers.getSetCookie()[0]?.split(';')[0] ?? ''
      // Read on b and c until their caches hold it (a few reads each).
      for (let read = 0; read < 3; read++) {
        expect(await session(b, cookie)).toBe(200)
        expect(await session(c, cookie)).toBe(200)
      }
      const logout = await fetch(`${base(a)}/auth/logout`, {
        method: 'POST',
        headers: { cookie, 'sec-fetch-site': 'same-origin' },
      })
      expect(logout.status).toBe(204)
      const since = performance.now()
      const [onB, onC] = await Promise.all([
        refusedAfter(b, cookie, since),
        refusedAfter(c, cookie, since),
      ])
      latencies.push(Math.max(onB, onC))
    }
    const worst = p99(latencies)
    console.log(
      `near-cache revocation over 3 processes: p99 ${worst.toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms (${ROUNDS} logouts)`,
    )
    expect(worst).toBeLessThanOrEqual(100)
  }, 120_000)

  it('"log out other devices" on one process is refused on the others too', async () => {
    const [a, b, c] = servers as [ServerProcess, ServerProcess, ServerProcess]
    const email = `${uniqueName('nc')}@example.com`
    const signup = await fetch(`${base(a)}/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' },
      body: JSON.stringify({ email, password: PASSWORD }),
    })
    const cookie = signup.headers.getSetCookie()[0]?.split(';')[0] ?? ''
    const second = await fetch(`${base(a)}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' },
      body: JSON.stringify({ email, password: PASSWORD }),
    })
    const other = second.headers.getSetCookie()[0]?.split(';')[0] ?? ''
    for (let read = 0; read < 3; read++) {
      expect(await session(b, other)).toBe(200)
      expect(await session(c, other)).toBe(200)
    }
    const revoke = await fetch(`${base(a)}/auth/sessions`, {
      method: 'DELETE',
      headers: { cookie, 'sec-fetch-site': 'same-origin' },
    })
    expect(revoke.status).toBeLessThan(300)
    const since = performance.now()
    const [onB, onC] = await Promise.all([
      refusedAfter(b, other, since),
      refusedAfter(c, other, since),
    ])
    expect(Math.max(onB, onC)).toBeLessThanOrEqual(100)
    expect(await session(b, cookie)).toBe(200)
  }, 60_000)
})
