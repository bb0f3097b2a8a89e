import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDatabase } from '../../src/auth/db/database.js'
import {
  apiError,
  Client,
  createSchema,
  dropRedisPrefix,
  startTestServer,
  type TestServer,
} from './api-harness.js'
import {
  startPrivatePostgres,
  startPrivateRedis,
  type PrivatePostgres,
  type PrivateRedis,
} from '../helpers/private-servers.js'
import { describeWithService, uniqueName } from '../helpers/services.js'

// Issue 12 items 9-11: what a client gets while a store the server needs is away. Private
// servers only (the tests stop and pause them); the shared Redis is used under a unique prefix.

const PASSWORD = 'correct horse battery staple'

/** Asserts `response` is the API's 503 with Retry-After. */
async function expectUnavailable(response: Response, what: string): Promise<void> {
  expect(response.status, what).toBe(503)
  expect(response.headers.get('retry-after'), what).toMatch(/^[1-9][0-9]*$/)
  expect((await apiError(response)).code, what).toBe('unavailable')
}

/** Retries `request` until it answers something other than 503, for at most `ms`. */
async function untilNot503(request: () => Promise<Response>, ms = 30_000): Promise<Response> {
  const until = Date.now() + ms
  for (;;) {
    const response = await request()
    if (response.status !== 503 || Date.now() > until) return response
    await response.arrayBuffer()
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

describeWithService(
  'redis',
  'outages: PostgreSQL stopped under the server (item 9)',
  (redisUrl) => {
    let pg: PrivatePostgres
    let server: TestServer
    const prefix = `${uniqueName('outage')}:`

    beforeAll(async () => {
      pg = await startPrivatePostgres()
      const schema = uniqueName('outage')
      await createSchema(pg.url, schema)
      server = await startTestServer({
        kind: 'postgres+redis',
        pgUrl: pg.url,
        redisUrl,
        schema,
        prefix,
      })
    }, 120_000)

    afterAll(async () => {
      await server?.stop()
      await pg?.destroy()
      await dropRedisPrefix(redisUrl, prefix)
    })

    it('session checks, logins, token grants, refreshes and signups answer 503, never 500, and recover', async () => {
      const browser = new Client(server, Client.sameOrigin(server))
      const signup = await browser.request('POST', '/auth/signup', {
        json: { email: 'pg-outage@example.com', password: PASSWORD },
      })
      expect(signup.status).toBe(201)
      const grant = await new Client(server).request('POST', '/auth/token', {
        json: { email: 'pg-outage@example.com', password: PASSWORD },
      })
      expect(grant.status).toBe(200)
      const { refresh_token: refreshToken } = (await grant.json()) as { refresh_token: string }

      await pg.stop()

      // The session lives in Redis; the request still reads the account from PostgreSQL.
      await expectUnavailable(await browser.request('GET', '/auth/session'), 'session check')
      await expectUnavailable(
        await new Client(server).request('POST', '/auth/login', {
          json: { email: 'pg-outage@example.com', password: PASSWORD },
        }),
        'login',
      )
      await expectUnavailable(
        await new Client(server).request('POST', '/auth/token', {
          json: { email: 'pg-outage@example.com', password: PASSWORD },
        }),
        'token grant',
      )
      await expectUnavailable(
        await new Client(server, Client.sameOrigin(server)).request('POST', '/auth/signup', {
          json: { email: 'pg-outage-2@example.com', password: PASSWORD },
        }),
        'signup',
      )
      const ready = await fetch(`${server.url}/readyz`)
      expect(ready.status).toBe(503)
      expect(ready.headers.get('retry-after')).toMatch(/^[1-9]/)
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)

      await pg.start()
      const back = await untilNot503(() => browser.request('GET', '/auth/session'))
      expect(back.status).toBe(200)
      const login = await new Client(server).request('POST', '/auth/login', {
        json: { email: 'pg-outage@example.com', password: PASSWORD },
      })
      expect(login.status).toBe(200)
      const refreshed = await new Client(server).request('POST', '/auth/refresh', {
        json: { refresh_token: refreshToken },
      })
      expect(refreshed.status).toBe(200)
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200)

      const log = server.log.text()
      expect(log).not.toContain('"msg":"unhandled error"')
      expect(log).not.toContain('"status":500')
    }, 120_000)

    it('a connection checked out when PostgreSQL stops fails its query, and the process lives', async () => {
      // Found by bench/outage.ts: pg-pool listens for errors on idle connections only; a
      // checked-out one that the stopping server terminates emitted an unhandled 'error'
      // (57P01), which ended the process.
      const db = await createDatabase({ dialect: 'postgres', connectionString: pg.url, max: 2 })
      try {
        let release = (): void => undefined
        const held = new Promise<void>((resolve) => {
          release = resolve
        })
        const inTransaction = db
          .transaction()
          .execute(async (trx) => {
            await sql`SELECT 1`.execute(trx)
            await held // the connection is checked out, between two queries
            await sql`SELECT 1`.execute(trx)
          })
          .then(
            () => null,
            (error: unknown) => error,
          )
        await pg.stop()
        release()
        expect(await inTransaction).toMatchObject({ code: 'store_unavailable' })
        await pg.start()
        expect((await sql<{ n: number }>`SELECT 1 AS n`.execute(db)).rows).toEqual([{ n: 1 }])
      } finally {
        await db.destroy()
      }
    }, 60_000)
  },
)

describe('outages: Redis hung (SIGSTOP) under the server (item 10)', () => {
  let redis: PrivateRedis
  let server: TestServer

  beforeAll(async () => {
    redis = await startPrivateRedis()
    server = await startTestServer({ kind: 'sqlite' }, { REDIS_URL: redis.url })
  }, 60_000)

  afterAll(async () => {
    redis?.resume()
    await server?.stop()
    await redis?.destroy()
  })

  it('every request that needs Redis answers 503 while it is still frozen, then recovers', async () => {
    const browser = new Client(server, Client.sameOrigin(server))
    const signup = await browser.request('POST', '/auth/signup', {
      json: { email: 'hung@example.com', password: PASSWORD },
    })
    expect(signup.status).toBe(201)
    const grant = await new Client(server).request('POST', '/auth/token', {
      json: { email: 'hung@example.com', password: PASSWORD },
    })
    const { refresh_token: refreshToken } = (await grant.json()) as { refresh_token: string }

    redis.pause()
    // Each answer arrives while Redis is still frozen: every Redis call of the server (the
    // session store, the rate-limit script, refresh tokens) is bounded by the store's deadline.
    // Without it the login's rate-limit EVAL waits until Redis runs again (here: never, so the
    // test would time out).
    const answers = await Promise.all([
      browser.request('GET', '/auth/session'),
      new Client(server).request('POST', '/auth/login', {
        json: { email: 'hung@example.com', password: PASSWORD },
      }),
      new Client(server).request('POST', '/auth/token', {
        json: { email: 'hung@example.com', password: PASSWORD },
      }),
      new Client(server).request('POST', '/auth/refresh', {
        json: { refresh_token: refreshToken },
      }),
      new Client(server, Client.sameOrigin(server)).request('POST', '/auth/signup', {
        json: { email: 'hung-2@example.com', password: PASSWORD },
      }),
    ])
    const names = ['session check', 'login', 'token grant', 'refresh', 'signup']
    for (const [index, answer] of answers.entries()) {
      await expectUnavailable(answer, names[index] ?? '')
    }
    redis.resume()

    const back = await untilNot503(() => browser.request('GET', '/auth/session'))
    expect(back.status).toBe(200)
    const login = await new Client(server).request('POST', '/auth/login', {
      json: { email: 'hung@example.com', password: PASSWORD },
    })
    expect(login.status).toBe(200)
    expect(server.log.text()).not.toContain('"msg":"unhandled error"')
  }, 60_000)
})

describe('outages: Redis full under noeviction (item 11)', () => {
  let redis: PrivateRedis
  let server: TestServer

  beforeAll(async () => {
    redis = await startPrivateRedis()
    server = await startTestServer({ kind: 'sqlite' }, { REDIS_URL: redis.url })
  }, 60_000)

  afterAll(async () => {
    await server?.stop()
    await redis?.destroy()
  })

  it('OOM is store_unavailable: a signup answers 503 and leaves no half-made account', async () => {
    const browser = new Client(server, Client.sameOrigin(server))
    expect(
      (
        await browser.request('POST', '/auth/signup', {
          json: { email: 'before-full@example.com', password: PASSWORD },
        })
      ).status,
    ).toBe(201)

    // Any write now exceeds maxmemory; noeviction (the default) refuses it with an OOM reply.
    await redis.cli('CONFIG', 'SET', 'maxmemory', '1')
    try {
      await expectUnavailable(
        await new Client(server, Client.sameOrigin(server)).request('POST', '/auth/signup', {
          json: { email: 'full@example.com', password: PASSWORD },
        }),
        'signup into a full Redis',
      )
      await expectUnavailable(
        await new Client(server).request('POST', '/auth/login', {
          json: { email: 'before-full@example.com', password: PASSWORD },
        }),
        'login into a full Redis',
      )
    } finally {
      await redis.cli('CONFIG', 'SET', 'maxmemory', '0')
    }

    // The refused signup left nothing behind: the same e-mail signs up now (not 409).
    const again = await new Client(server, Client.sameOrigin(server)).request(
      'POST',
      '/auth/signup',
      { json: { email: 'full@example.com', password: PASSWORD } },
    )
    expect(again.status).toBe(201)
    expect(server.log.text()).not.toContain('"msg":"unhandled error"')
  })
})

describe('Redis maxmemory-policy at start (item 11)', () => {
  const production = {
    NODE_ENV: 'production',
    TESSERA_SECRET: 'q3J9xV2mLp8RtY6wZs4NcB7hKd1FgA5eUo0iPjMnXvQ',
  }

  it('production refuses an evicting policy; development starts with a warning', async () => {
    const redis = await startPrivateRedis()
    try {
      await redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru')
      await expect(
        startTestServer({ kind: 'sqlite' }, { ...production, REDIS_URL: redis.url }),
      ).rejects.toMatchObject({
        code: 'config_invalid',
        message: expect.stringContaining('maxmemory-policy is allkeys-lru') as unknown,
      })
      const relaxed = await startTestServer({ kind: 'sqlite' }, { REDIS_URL: redis.url })
      try {
        expect(relaxed.log.text()).toContain('maxmemory-policy is allkeys-lru')
      } finally {
        await relaxed.stop()
      }
      await redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction')
      const fine = await startTestServer(
        { kind: 'sqlite' },
        { ...production, REDIS_URL: redis.url },
      )
      await fine.stop()
    } finally {
      await redis.destroy()
    }
  }, 60_000)

  it('a Redis that hides CONFIG: refused in production unless TESSERA_REDIS_ASSUME_NOEVICTION=1, which warns', async () => {
    const redis = await startPrivateRedis({ args: ['--rename-command', 'CONFIG', ''] })
    try {
      await expect(
        startTestServer({ kind: 'sqlite' }, { ...production, REDIS_URL: redis.url }),
      ).rejects.toMatchObject({
        code: 'config_invalid',
        message: expect.stringContaining('TESSERA_REDIS_ASSUME_NOEVICTION=1') as unknown,
      })
      const assumed = await startTestServer(
        { kind: 'sqlite' },
        { ...production, REDIS_URL: redis.url, TESSERA_REDIS_ASSUME_NOEVICTION: '1' },
      )
      try {
        expect(assumed.log.text()).toContain('WARNING: Redis hides CONFIG')
        expect((await fetch(`${assumed.url}/readyz`)).status).toBe(200)
      } finally {
        await assumed.stop()
      }
    } finally {
      await redis.destroy()
    }
  }, 60_000)
})
