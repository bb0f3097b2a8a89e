import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { describeWithService, PG_URL, REDIS_URL, uniqueName } from '../helpers/services.js'
import {
  apiError,
  Client,
  createSchema,
  dropRedisPrefix,
  startTestServer,
  type Backend,
  type TestServer,
} from './api-harness.js'

const PASSWORD = 'correct horse battery staple'

describeWithService('postgres', 'two server processes sharing PostgreSQL and Redis', (pgUrl) => {
  let a: TestServer
  let b: TestServer
  let drop: () => Promise<void> = () => Promise.resolve()
  const prefix = `${uniqueName('tcl')}:`

  beforeAll(async () => {
    if (REDIS_URL === undefined || REDIS_URL === '')
      throw new Error('TESSERA_TEST_REDIS_URL is not set')
    const schema = uniqueName('srvcl')
    drop = await createSchema(pgUrl, schema)
    const backend: Backend = {
      kind: 'postgres+redis',
      pgUrl: PG_URL ?? pgUrl,
      redisUrl: REDIS_URL,
      schema,
      prefix,
    }
    // One secret, as two replicas of one deployment share it.
    const env = { TESSERA_SECRET: randomBytes(32).toString('base64url') }
    a = await startTestServer(backend, env)
    b = await startTestServer(backend, env)
  })

  afterAll(async () => {
    await a?.stop()
    await b?.stop()
    await drop()
    if (REDIS_URL !== undefined && REDIS_URL !== '') await dropRedisPrefix(REDIS_URL, prefix)
  })

  it('a session made on one works on the other, and logout on one is seen by the other', async () => {
    const onA = new Client(a, Client.sameOrigin(a))
    const signup = await onA.request('POST', '/auth/signup', {
      json: { email: `${uniqueName('c')}@example.com`, password: PASSWORD },
    })
    expect(signup.status).toBe(201)
    const onB = new Client(b)
    for (const [name, value] of onA.cookies) onB.cookies.set(name, value)
    expect((await onB.request('GET', '/auth/session')).status).toBe(200)
    expect((await onA.request('POST', '/auth/logout')).status).toBe(204)
    expect((await onB.request('GET', '/auth/session')).status).toBe(401)
  })

  it('access tokens issued by one verify on the other (shared signing keys)', async () => {
    const address = `${uniqueName('t')}@example.com`
    await new Client(a).request('POST', '/auth/signup', {
      json: { email: address, password: PASSWORD },
    })
    const grant = await new Client(a).request('POST', '/auth/token', {
      json: { email: address, password: PASSWORD },
    })
    const { access_token: token } = (await grant.json()) as { access_token: string }
    const onB = new Client(b, { authorization: `Bearer ${token}` })
    expect((await onB.request('GET', '/auth/session')).status).toBe(200)
  })

  it('the login rate limit is shared', async () => {
    const address = `${uniqueName('r')}@example.com`
    await new Client(a).request('POST', '/auth/signup', {
      json: { email: address, password: PASSWORD },
    })
    let limitedOnA = false
    for (let attempt = 0; attempt < 8 && !limitedOnA; attempt++) {
      const response = await new Client(a).request('POST', '/auth/login', {
        json: { email: address, password: 'wrong password here' },
      })
      limitedOnA = response.status === 429
    }
    expect(limitedOnA).toBe(true)
    const onB = await new Client(b).request('POST', '/auth/login', {
      json: { email: address, password: PASSWORD },
    })
    expect(onB.status).toBe(429)
    expect((await apiError(onB)).code).toBe('rate_limited')
  })
})
