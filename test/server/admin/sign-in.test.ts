/*
 * The admin sign-in goes through the one sign-in pipeline (src/auth/sign-in.ts, issue 11): it gets
 * the login limiter, the input length cap and the timing parity of POST /auth/login. Timing parity
 * is shown by counting password verifications (one for a known and one for an unknown e-mail),
 * not by measuring time. On SQLite and on PostgreSQL + Redis.
 */
import { describe, expect, it } from 'vitest'
import { describeWithPostgresAndRedis } from '../../helpers/services.js'
import { ADMIN_EMAIL, ADMIN_PASSWORD, buildAdmin, Client, type AdminBackend } from './fixture.js'

function signInSuite(name: string, backend: () => AdminBackend): void {
  const build = () => buildAdmin({ backend: backend() })

  /** The error shown on the sign-in page. */
  async function shownError(response: Response): Promise<string> {
    return /<p class="flash error" role="alert">([^<]*)<\/p>/.exec(await response.text())?.[1] ?? ''
  }

  describe(name, () => {
    it('verifies exactly once for an unknown e-mail and for a wrong password, with one answer', async () => {
      const f = await build()
      const calls = f.passwords.calls
      const before = { verify: calls.verify, dummy: calls.dummy }
      const unknown = await new Client(f.app).signIn('nobody@example.com', 'a guess at a password')
      expect(calls.dummy - before.dummy).toBe(1)
      expect(calls.verify - before.verify).toBe(0)
      const wrong = await new Client(f.app).signIn(ADMIN_EMAIL, 'a guess at a password')
      expect(calls.verify - before.verify).toBe(1)
      expect(calls.dummy - before.dummy).toBe(1)
      expect(unknown.status).toBe(401)
      expect(wrong.status).toBe(401)
      expect(await shownError(unknown)).toBe(await shownError(wrong))
    })

    it('caps the password length before any verification, with the wrong-password answer', async () => {
      const f = await build()
      const calls = f.passwords.calls
      const before = calls.verify + calls.dummy
      const long = await new Client(f.app).signIn(ADMIN_EMAIL, 'x'.repeat(4097))
      expect(long.status).toBe(401)
      expect(await shownError(long)).toBe('E-mail or password is incorrect.')
      expect(calls.verify + calls.dummy).toBe(before)
      const [event] = await f.auth.audit.list({ type: 'login' })
      expect(event?.detail).toMatchObject({ panel: 'admin', reason: 'password_too_long' })
    })

    it('gets the login limiter: locked after the free failures, before any verification', async () => {
      const f = await build()
      for (let i = 0; i < 5; i++) {
        expect((await new Client(f.app).signIn(ADMIN_EMAIL, 'a wrong password here')).status).toBe(
          401,
        )
      }
      const calls = f.passwords.calls
      const before = calls.verify + calls.dummy
      const locked = await new Client(f.app).signIn()
      expect(locked.status).toBe(429)
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      expect(calls.verify + calls.dummy).toBe(before)
      // The API's login shares the lock: the panel is no side door, and neither is the API.
      const api = await f.auth.login({ email: ADMIN_EMAIL, password: ADMIN_PASSWORD })
      expect(api.ok === false && api.code).toBe('rate_limited')
    })

    it('issues the admin session through the pipeline’s one session step (authTime, aal, amr)', async () => {
      const f = await build()
      const client = new Client(f.app)
      expect((await client.signIn()).status).toBe(303)
      const session = await f.adminSessions.validate(client.cookieHeader())
      expect(session?.session.amr).toEqual(['pwd'])
      expect(session?.session.aal).toBe(1)
      const [event] = await f.auth.audit.list({ type: 'login' })
      expect(event?.outcome).toBe('success')
      expect(event?.detail).toMatchObject({ panel: 'admin', amr: 'pwd' })
    })
  })
}

signInSuite('admin sign-in on SQLite', () => ({ kind: 'sqlite' }))

describeWithPostgresAndRedis('admin sign-in on PostgreSQL + Redis', (urls) => {
  signInSuite('(postgres + redis)', () => ({ kind: 'postgres+redis', ...urls }))
})
