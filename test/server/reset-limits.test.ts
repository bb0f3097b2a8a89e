import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { describeWithPostgresAndRedis, uniqueName } from '../helpers/services.js'
import {
  apiError,
  Client,
  postgresRedisBackend,
  startTestServer,
  type Backend,
  type TestServer,
} from './api-harness.js'

const PASSWORD = 'correct horse battery staple'

// Issue 12, item 3: reset mails and reset-token guesses are limited per account and per IP,
// and two processes over the same Redis and PostgreSQL enforce one limit (API.md).
describeWithPostgresAndRedis('reset limits shared by two server processes', (urls) => {
  let backend: Backend
  let done: () => Promise<void> = () => Promise.resolve()
  const dirs: string[] = []
  const env = { TESSERA_SECRET: randomBytes(32).toString('base64url') }

  /** Two servers over the one backend, each with an outbox that outlives its stop. */
  async function twoServers(): Promise<[TestServer, TestServer]> {
    const cwd = (): string => {
      const dir = mkdtempSync(join(tmpdir(), 'tessera-rsl-'))
      dirs.push(dir)
      return dir
    }
    return [
      await startTestServer(backend, env, { cwd: cwd() }),
      await startTestServer(backend, env, { cwd: cwd() }),
    ]
  }

  beforeAll(async () => {
    const made = await postgresRedisBackend(urls, 'rsl')
    backend = made.backend
    done = made.done
  })

  afterAll(async () => {
    await done()
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  it('eight reset requests for one account on two processes send three mails, all answered 202', async () => {
    const [a, b] = await twoServers()
    const address = `${uniqueName('flood')}@example.com`
    try {
      expect(
        (
          await new Client(a).request('POST', '/auth/signup', {
            json: { email: address, password: PASSWORD },
          })
        ).status,
      ).toBe(201)
      const answers: number[] = []
      for (let i = 0; i < 8; i++) {
        const server = i % 2 === 0 ? a : b
        // The address in varying case: one mailbox, one count.
        const email = i % 3 === 0 ? address.toUpperCase() : address
        const response = await new Client(server).request('POST', '/auth/password-reset/request', {
          json: { email },
        })
        answers.push(response.status)
        expect(await response.text()).toBe('')
      }
      expect(answers).toEqual([202, 202, 202, 202, 202, 202, 202, 202])
      const metrics = await (await fetch(`${a.url}/metrics`)).text()
      expect(metrics).toMatch(/tessera_rate_limited_total\{scope="password_reset_request"\} [1-9]/)
    } finally {
      // A stop waits for the background mail work, so every mail that will be sent is written.
      await a.stop()
      await b.stop()
    }
    const mailed = [...a.mails(), ...b.mails()].filter((mail) => mail.includes(address))
    expect(mailed).toHaveLength(3)
  })

  it('token guesses from one IP meet 429 with Retry-After, on the API and the /reset page alike', async () => {
    const [a, b] = await twoServers()
    try {
      const statuses: number[] = []
      let limited: Response | undefined
      for (let i = 0; i < 25 && limited === undefined; i++) {
        const server = i % 2 === 0 ? a : b
        const token = randomBytes(32).toString('base64url')
        const response = await new Client(server).request('POST', '/auth/password-reset/confirm', {
          json: { token, newPassword: `${PASSWORD} guess` },
        })
        statuses.push(response.status)
        if (response.status === 429) limited = response
        else expect((await apiError(response)).code).toBe('invalid_token')
      }
      expect(limited).toBeDefined()
      expect(statuses.filter((status) => status === 400)).toHaveLength(20)
      expect((await apiError(limited!)).code).toBe('rate_limited')
      const retryAfter = Number(limited!.headers.get('retry-after'))
      expect(retryAfter).toBeGreaterThan(0)
      expect(retryAfter).toBeLessThanOrEqual(900)

      // The page shares the count: the same IP is refused there too, with a page and Retry-After.
      const token = randomBytes(32).toString('base64url')
      const page = await new Client(b).request('POST', '/reset', {
        body: new URLSearchParams({
          token,
          newPassword: `${PASSWORD} guess`,
          confirmPassword: `${PASSWORD} guess`,
        }).toString(),
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'sec-fetch-site': 'same-origin',
          origin: b.origin,
        },
      })
      expect(page.status).toBe(429)
      expect(Number(page.headers.get('retry-after'))).toBeGreaterThan(0)
      expect(page.headers.get('content-security-policy')).toContain("script-src 'none'")
      expect(await page.text()).toContain('Too many attempts')
    } finally {
      await a.stop()
      await b.stop()
    }
  })
})
