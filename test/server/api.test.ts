import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { describeWithPostgresAndRedis, uniqueName } from '../helpers/services.js'
import {
  apiError,
  Client,
  postgresRedisBackend,
  resetTokenFrom,
  startTestServer,
  type Backend,
  type TestServer,
  waitForMail,
} from './api-harness.js'

const PASSWORD = 'correct horse battery staple'

function email(): string {
  return `${uniqueName('user')}@example.com`
}

/** Signs a new user up (same-origin browser) and returns its client, cookie set. */
async function signedUp(server: TestServer, address = email()): Promise<Client> {
  const client = new Client(server, Client.sameOrigin(server))
  const response = await client.request('POST', '/auth/signup', {
    json: { email: address, password: PASSWORD },
  })
  expect(response.status).toBe(201)
  return client
}

async function json<T>(response: Response): Promise<T> {
  return (await response.json()) as T
}

interface TokenResponse {
  access_token: string
  token_type: string
  expires_in: number
  refresh_token: string
}

function apiSuite(
  name: string,
  backend: () => Promise<{ backend: Backend; done: () => Promise<void> }>,
): void {
  describe(name, () => {
    let server: TestServer
    let cleanup: () => Promise<void> = () => Promise.resolve()

    beforeAll(async () => {
      const made = await backend()
      cleanup = made.done
      server = await startTestServer(made.backend, {
        TESSERA_TRUSTED_ORIGINS: 'https://app.example.com',
      })
    })

    afterAll(async () => {
      await server?.stop()
      await cleanup()
    })

    describe('conventions', () => {
      it.each([
        [
          'invalid JSON',
          { body: '{"email":', headers: { 'content-type': 'application/json' } },
          400,
          'invalid_request',
        ],
        ['wrong types', { json: { email: 42, password: ['x'] } }, 400, 'invalid_request'],
        [
          'text/plain',
          { body: '{}', headers: { 'content-type': 'text/plain' } },
          415,
          'unsupported_media_type',
        ],
        [
          'a form',
          { body: 'email=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
          415,
          'unsupported_media_type',
        ],
        [
          'over 64 KiB',
          { json: { email: 'a@example.com', password: 'x'.repeat(70_000) } },
          413,
          'payload_too_large',
        ],
      ] as const)('login with %s is refused', async (_name, init, status, code) => {
        const client = new Client(server)
        const response = await client.request('POST', '/auth/login', init)
        expect(response.status).toBe(status)
        expect((await apiError(response)).code).toBe(code)
      })

      it('accepts Content-Type in any case with parameters', async () => {
        const address = email()
        const client = new Client(server)
        const response = await client.request('POST', '/auth/signup', {
          body: JSON.stringify({ email: address, password: PASSWORD }),
          headers: { 'content-type': 'Application/JSON; Charset=UTF-8' },
        })
        expect(response.status).toBe(201)
      })

      it('sends the security headers and no-store on user responses', async () => {
        const client = await signedUp(server)
        const response = await client.request('GET', '/auth/session')
        expect(response.status).toBe(200)
        expect(response.headers.get('content-security-policy')).toContain("frame-ancestors 'none'")
        expect(response.headers.get('content-security-policy')).not.toContain('unsafe-inline')
        expect(response.headers.get('x-content-type-options')).toBe('nosniff')
        expect(response.headers.get('x-frame-options')).toBe('DENY')
        expect(response.headers.get('referrer-policy')).toBeTruthy()
        expect(response.headers.get('cache-control')).toBe('no-store')
        expect(response.headers.get('strict-transport-security')).toBeNull()
      })
    })

    describe('signup and login', () => {
      it('signup: 201 {user} and a session cookie with the right attributes', async () => {
        const address = email()
        const client = new Client(server, Client.sameOrigin(server))
        const response = await client.request('POST', '/auth/signup', {
          json: { email: address.toUpperCase(), password: PASSWORD },
        })
        expect(response.status).toBe(201)
        const body = await json<{ user: Record<string, unknown> }>(response)
        expect(Object.keys(body)).toEqual(['user'])
        expect(body.user).toMatchObject({
          email: address,
          isAdmin: false,
          groups: [],
          permissions: [],
        })
        expect(typeof body.user.id).toBe('string')
        expect(new Date(body.user.createdAt as string).toISOString()).toBe(body.user.createdAt)
        expect(body.user).not.toHaveProperty('passwordHash')
        const cookie = response.headers.getSetCookie().find((c) => c.startsWith('tessera_session='))
        expect(cookie).toBeDefined()
        expect(cookie).toMatch(/; HttpOnly/i)
        expect(cookie).toMatch(/; SameSite=Lax/i)
        expect(cookie).toMatch(/; Path=\//i)
        expect(cookie).not.toMatch(/Domain=/i)
        expect(cookie).not.toMatch(/; Secure/i)
        expect((await client.request('GET', '/auth/session')).status).toBe(200)
      })

      it('signup: 409 conflict when the e-mail is taken', async () => {
        const address = email()
        await signedUp(server, address)
        const response = await new Client(server).request('POST', '/auth/signup', {
          json: { email: address, password: PASSWORD },
        })
        expect(response.status).toBe(409)
        expect((await apiError(response)).code).toBe('conflict')
      })

      it.each([
        ['too short', 'short-pw'],
        ['too long', 'x'.repeat(129)],
        ['common', 'unbelievable'],
        ['breached (issue 12)', 'password1234'],
        ['easy to guess (issue 12)', 'qwertyuiop[]'],
      ])('signup: 400 weak_password for a %s password', async (_name, password) => {
        const response = await new Client(server).request('POST', '/auth/signup', {
          json: { email: email(), password },
        })
        expect(response.status).toBe(400)
        expect((await apiError(response)).code).toBe('weak_password')
      })

      it('login: 200 {user, session} and a fresh cookie, never the one sent', async () => {
        const address = email()
        const first = await signedUp(server, address)
        const oldCookie = first.cookies.get('tessera_session')
        const response = await first.request('POST', '/auth/login', {
          json: { email: address, password: PASSWORD },
        })
        expect(response.status).toBe(200)
        const body = await json<{ user: { email: string }; session: Record<string, string> }>(
          response,
        )
        expect(body.user.email).toBe(address)
        expect(Object.keys(body.session).sort()).toEqual(
          [
            'aal',
            'absoluteExpiresAt',
            'amr',
            'authTime',
            'createdAt',
            'expiresAt',
            'id',
            'lastSeenAt',
          ].sort(),
        )
        const newCookie = first.cookies.get('tessera_session')
        expect(newCookie).toBeDefined()
        expect(newCookie).not.toBe(oldCookie)
        // The session sent with the login is gone.
        const stale = new Client(server)
        stale.cookies.set('tessera_session', oldCookie ?? '')
        expect((await stale.request('GET', '/auth/session')).status).toBe(401)
      })

      it('login: unknown e-mail and wrong password get the same 401', async () => {
        const address = email()
        await signedUp(server, address)
        const client = new Client(server)
        const wrong = await client.request('POST', '/auth/login', {
          json: { email: address, password: 'wrong password here' },
        })
        const unknown = await client.request('POST', '/auth/login', {
          json: { email: email(), password: 'wrong password here' },
        })
        expect(wrong.status).toBe(401)
        expect(unknown.status).toBe(401)
        expect(await wrong.json()).toEqual(await unknown.json())
      })

      it('login: 429 with Retry-After after repeated failures, counted in /metrics', async () => {
        const address = email()
        await signedUp(server, address)
        const client = new Client(server)
        let limited: Response | undefined
        for (let attempt = 0; attempt < 8 && limited === undefined; attempt++) {
          const response = await client.request('POST', '/auth/login', {
            json: { email: address, password: 'wrong password here' },
          })
          if (response.status === 429) limited = response
          else expect(response.status).toBe(401)
        }
        expect(limited).toBeDefined()
        expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
        expect((await apiError(limited as Response)).code).toBe('rate_limited')
        // Even the right password is refused while locked.
        const right = await client.request('POST', '/auth/login', {
          json: { email: address, password: PASSWORD },
        })
        expect(right.status).toBe(429)
        const metrics = await (await fetch(`${server.url}/metrics`)).text()
        expect(metrics).toMatch(/tessera_rate_limited_total\{scope="login"\} [1-9]/)
        expect(metrics).toMatch(/tessera_logins_total\{result="failure"\} [1-9]/)
      })
    })

    describe('cookies and sessions', () => {
      it('logout: 204, cookie cleared, and a copy of the old cookie is rejected', async () => {
        const client = await signedUp(server)
        const copy = client.cookies.get('tessera_session') ?? ''
        const response = await client.request('POST', '/auth/logout')
        expect(response.status).toBe(204)
        expect(response.headers.getSetCookie().join('\n')).toMatch(/tessera_session=;.*Max-Age=0/i)
        const thief = new Client(server)
        thief.cookies.set('tessera_session', copy)
        const after = await thief.request('GET', '/auth/session')
        expect(after.status).toBe(401)
        expect((await apiError(after)).code).toBe('unauthenticated')
      })

      it('a cookie whose signature does not verify is rejected', async () => {
        const client = await signedUp(server)
        const value = client.cookies.get('tessera_session') ?? ''
        const tampered = new Client(server)
        tampered.cookies.set('tessera_session', `${value.slice(0, -2)}AA`)
        expect((await tampered.request('GET', '/auth/session')).status).toBe(401)
        tampered.cookies.set('tessera_session', 'garbage')
        expect((await tampered.request('GET', '/auth/session')).status).toBe(401)
      })

      it('GET /auth/session: 401 without a session', async () => {
        const response = await new Client(server).request('GET', '/auth/session')
        expect(response.status).toBe(401)
        expect((await apiError(response)).code).toBe('unauthenticated')
      })

      it("GET /auth/sessions lists the caller's own sessions, with current", async () => {
        const address = email()
        const a = await signedUp(server, address)
        const b = new Client(server, { 'user-agent': 'second-device/1.0' })
        await b.request('POST', '/auth/login', { json: { email: address, password: PASSWORD } })
        const other = await signedUp(server)
        const response = await a.request('GET', '/auth/sessions')
        expect(response.status).toBe(200)
        expect(response.headers.get('cache-control')).toBe('no-store')
        const { sessions } = await json<{ sessions: Array<Record<string, unknown>> }>(response)
        expect(sessions).toHaveLength(2)
        for (const entry of sessions) {
          expect(Object.keys(entry).sort()).toEqual(
            ['createdAt', 'current', 'expiresAt', 'id', 'ip', 'lastSeenAt', 'userAgent'].sort(),
          )
          expect(entry.ip).toBe('127.0.0.1')
        }
        expect(sessions.filter((s) => s.current === true)).toHaveLength(1)
        expect(sessions.some((s) => s.userAgent === 'second-device/1.0')).toBe(true)
        const mine = await json<{ sessions: Array<{ id: string }> }>(
          await other.request('GET', '/auth/sessions'),
        )
        expect(mine.sessions).toHaveLength(1)
      })

      it("DELETE /auth/sessions/:id revokes one; another user's id gives 404", async () => {
        const address = email()
        const a = await signedUp(server, address)
        const b = new Client(server)
        await b.request('POST', '/auth/login', { json: { email: address, password: PASSWORD } })
        const { sessions } = await json<{ sessions: Array<{ id: string; current: boolean }> }>(
          await a.request('GET', '/auth/sessions'),
        )
        const bId = sessions.find((s) => !s.current)?.id ?? ''
        const intruder = await signedUp(server)
        const foreign = await intruder.request('DELETE', `/auth/sessions/${bId}`)
        expect(foreign.status).toBe(404)
        expect((await apiError(foreign)).code).toBe('not_found')
        expect((await b.request('GET', '/auth/session')).status).toBe(200)
        expect((await a.request('DELETE', `/auth/sessions/${bId}`)).status).toBe(204)
        expect((await b.request('GET', '/auth/session')).status).toBe(401)
        expect((await a.request('DELETE', '/auth/sessions/nope')).status).toBe(404)
      })

      it('DELETE /auth/sessions revokes all but the current one', async () => {
        const address = email()
        const a = await signedUp(server, address)
        const others = [new Client(server), new Client(server)]
        for (const client of others) {
          await client.request('POST', '/auth/login', {
            json: { email: address, password: PASSWORD },
          })
        }
        expect((await a.request('DELETE', '/auth/sessions')).status).toBe(204)
        expect((await a.request('GET', '/auth/session')).status).toBe(200)
        for (const client of others) {
          expect((await client.request('GET', '/auth/session')).status).toBe(401)
        }
      })
    })

    describe('cross-site requests', () => {
      it.each([
        ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
        ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }],
        ['an untrusted Origin', { origin: 'https://evil.example' }],
        ['Origin null', { origin: 'null' }],
      ])('signup and login with %s get 403 csrf_failed and change nothing', async (_n, headers) => {
        const address = email()
        const client = new Client(server, headers)
        const signup = await client.request('POST', '/auth/signup', {
          json: { email: address, password: PASSWORD },
        })
        expect(signup.status).toBe(403)
        expect((await apiError(signup)).code).toBe('csrf_failed')
        expect(signup.headers.getSetCookie()).toEqual([])
        // The account was not created: a clean login fails.
        const login = await new Client(server).request('POST', '/auth/login', {
          json: { email: address, password: PASSWORD },
        })
        expect(login.status).toBe(401)
      })

      it('a trusted extra origin is allowed', async () => {
        const client = new Client(server, { origin: 'https://app.example.com' })
        const response = await client.request('POST', '/auth/signup', {
          json: { email: email(), password: PASSWORD },
        })
        expect(response.status).toBe(201)
      })

      it('a session cookie sent twice is no session, also with the CSRF token of the first (cookie tossing)', async () => {
        const victim = await signedUp(server)
        const attacker = await signedUp(server)
        const [name, mine] = [...victim.cookies][0] ?? ['', '']
        const planted = attacker.cookies.get(name) ?? ''
        expect(planted).not.toBe('')
        const { token } = await json<{ token: string }>(await victim.request('GET', '/auth/csrf'))
        for (const cookie of [
          `${name}=${mine}; ${name}=${planted}`,
          `${name}=${planted}; ${name}=${mine}`,
        ]) {
          const bare = new Client(server)
          const session = await bare.request('GET', '/auth/session', { headers: { cookie } })
          expect(session.status).toBe(401)
          expect((await apiError(session)).code).toBe('unauthenticated')
          // SECURITY: the first cookie's token proves nothing: neither session is acted on.
          const revoke = await bare.request('DELETE', '/auth/sessions', {
            headers: { cookie, 'x-csrf-token': token },
          })
          expect(revoke.status).toBe(401)
          const logout = await bare.request('POST', '/auth/logout', {
            headers: { cookie, 'x-csrf-token': token },
          })
          expect(logout.status).toBe(204)
        }
        expect((await victim.request('GET', '/auth/session')).status).toBe(200)
        expect((await attacker.request('GET', '/auth/session')).status).toBe(200)
      })

      it('a cookie-authenticated request needs same-origin, a trusted Origin or X-CSRF-Token', async () => {
        const client = await signedUp(server)
        const bare = new Client(server)
        for (const [name, value] of client.cookies) bare.cookies.set(name, value)
        const refused = await bare.request('DELETE', '/auth/sessions')
        expect(refused.status).toBe(403)
        expect((await apiError(refused)).code).toBe('csrf_failed')

        const { token } = await json<{ token: string }>(await bare.request('GET', '/auth/csrf'))
        expect(typeof token).toBe('string')
        const withToken = await bare.request('DELETE', '/auth/sessions', {
          headers: { 'x-csrf-token': token },
        })
        expect(withToken.status).toBe(204)
        expect(
          (await bare.request('DELETE', '/auth/sessions', { headers: { 'x-csrf-token': 'x' } }))
            .status,
        ).toBe(403)
        expect(
          (await bare.request('DELETE', '/auth/sessions', { headers: { origin: server.origin } }))
            .status,
        ).toBe(204)
        expect(
          (
            await bare.request('DELETE', '/auth/sessions', {
              headers: { 'sec-fetch-site': 'same-origin' },
            })
          ).status,
        ).toBe(204)
      })

      it('a CSRF token is bound to its session', async () => {
        const a = await signedUp(server)
        const b = await signedUp(server)
        const { token } = await json<{ token: string }>(await a.request('GET', '/auth/csrf'))
        const bare = new Client(server)
        for (const [name, value] of b.cookies) bare.cookies.set(name, value)
        const response = await bare.request('POST', '/auth/logout', {
          headers: { 'x-csrf-token': token },
        })
        expect(response.status).toBe(403)
        expect((await b.request('GET', '/auth/session')).status).toBe(200)
      })

      it('GET /auth/csrf needs a session', async () => {
        expect((await new Client(server).request('GET', '/auth/csrf')).status).toBe(401)
      })

      it('a client without cookies or browser headers is served normally', async () => {
        const address = email()
        const cli = new Client(server)
        expect(
          (
            await cli.request('POST', '/auth/signup', {
              json: { email: address, password: PASSWORD },
            })
          ).status,
        ).toBe(201)
      })
    })

    describe('passwords', () => {
      it('POST /auth/password: 204 and every other session revoked', async () => {
        const address = email()
        const a = await signedUp(server, address)
        const b = new Client(server)
        await b.request('POST', '/auth/login', { json: { email: address, password: PASSWORD } })
        const newPassword = `${PASSWORD} two`
        const wrong = await a.request('POST', '/auth/password', {
          json: { currentPassword: 'not my password', newPassword },
        })
        expect(wrong.status).toBe(401)
        expect((await apiError(wrong)).code).toBe('invalid_credentials')
        const weak = await a.request('POST', '/auth/password', {
          json: { currentPassword: PASSWORD, newPassword: 'short' },
        })
        expect(weak.status).toBe(400)
        expect((await apiError(weak)).code).toBe('weak_password')
        const ok = await a.request('POST', '/auth/password', {
          json: { currentPassword: PASSWORD, newPassword },
        })
        expect(ok.status).toBe(204)
        expect((await a.request('GET', '/auth/session')).status).toBe(200)
        expect((await b.request('GET', '/auth/session')).status).toBe(401)
        const login = await new Client(server).request('POST', '/auth/login', {
          json: { email: address, password: newPassword },
        })
        expect(login.status).toBe(200)
      })

      it('POST /auth/password: the session continues under a new cookie; the old cookie is dead', async () => {
        const address = email()
        const a = await signedUp(server, address)
        const before = await json<{ session: { id: string; authTime: string } }>(
          await a.request('GET', '/auth/session'),
        )
        const oldCookie = [...a.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
        const response = await a.request('POST', '/auth/password', {
          json: { currentPassword: PASSWORD, newPassword: `${PASSWORD} three` },
        })
        expect(response.status).toBe(204)
        const issued = response.headers
          .getSetCookie()
          .find((line) => line.startsWith('tessera_session='))
        expect(issued).toMatch(/HttpOnly/)
        const newCookie = [...a.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
        expect(newCookie).not.toBe(oldCookie)
        const stale = new Client(server, { cookie: oldCookie })
        expect((await stale.request('GET', '/auth/session')).status).toBe(401)
        const fresh = await new Client(server, { cookie: newCookie }).request(
          'GET',
          '/auth/session',
        )
        expect(fresh.status).toBe(200)
        const after = await json<{ session: { id: string; authTime: string; amr: string[] } }>(
          fresh,
        )
        expect(after.session.id).not.toBe(before.session.id)
        expect(after.session.authTime).toBe(before.session.authTime)
        expect(after.session.amr).toEqual(['pwd'])
      })

      it('POST /auth/password with an access token: that token session keeps working, others end', async () => {
        const address = email()
        const browser = await signedUp(server, address)
        const granted = await new Client(server).request('POST', '/auth/token', {
          json: { email: address, password: PASSWORD },
        })
        const pair = await json<TokenResponse>(granted)
        const bearer = new Client(server, { authorization: `Bearer ${pair.access_token}` })
        const response = await bearer.request('POST', '/auth/password', {
          json: { currentPassword: PASSWORD, newPassword: `${PASSWORD} four` },
        })
        expect(response.status).toBe(204)
        expect(response.headers.getSetCookie()).toEqual([])
        expect((await bearer.request('GET', '/auth/session')).status).toBe(200)
        expect((await browser.request('GET', '/auth/session')).status).toBe(401)
        const refreshed = await new Client(server).request('POST', '/auth/refresh', {
          json: { refresh_token: pair.refresh_token },
        })
        expect(refreshed.status).toBe(200)
      })

      it('POST /auth/password needs a session', async () => {
        const response = await new Client(server).request('POST', '/auth/password', {
          json: { currentPassword: PASSWORD, newPassword: `${PASSWORD}!` },
        })
        expect(response.status).toBe(401)
      })

      it('password reset: 202 always, a link to the public URL, single use, revokes every session', async () => {
        const address = email()
        const a = await signedUp(server, address)
        const before = server.mails().length
        const unknown = await new Client(server).request('POST', '/auth/password-reset/request', {
          json: { email: email() },
        })
        expect(unknown.status).toBe(202)
        const known = await new Client(server).request('POST', '/auth/password-reset/request', {
          json: { email: address },
        })
        expect(known.status).toBe(202)
        expect(await known.text()).toBe(await unknown.text())
        const mail = await waitForMail(server, before + 1)
        expect(mail).toContain(`${server.origin}/reset?token=`)
        const token = resetTokenFrom(mail)

        const bad = await new Client(server).request('POST', '/auth/password-reset/confirm', {
          json: { token: 'not-a-token', newPassword: `${PASSWORD} reset` },
        })
        expect(bad.status).toBe(400)
        expect((await apiError(bad)).code).toBe('invalid_token')

        const ok = await new Client(server).request('POST', '/auth/password-reset/confirm', {
          json: { token, newPassword: `${PASSWORD} reset` },
        })
        expect(ok.status).toBe(204)
        expect((await a.request('GET', '/auth/session')).status).toBe(401)
        const again = await new Client(server).request('POST', '/auth/password-reset/confirm', {
          json: { token, newPassword: `${PASSWORD} again` },
        })
        expect(again.status).toBe(400)
        expect((await apiError(again)).code).toBe('invalid_token')
        const login = await new Client(server).request('POST', '/auth/login', {
          json: { email: address, password: `${PASSWORD} reset` },
        })
        expect(login.status).toBe(200)
      })

      it('a reset token dies with any password change', async () => {
        const address = email()
        const a = await signedUp(server, address)
        const before = server.mails().length
        await new Client(server).request('POST', '/auth/password-reset/request', {
          json: { email: address },
        })
        const token = resetTokenFrom(await waitForMail(server, before + 1))
        expect(
          (
            await a.request('POST', '/auth/password', {
              json: { currentPassword: PASSWORD, newPassword: `${PASSWORD} new` },
            })
          ).status,
        ).toBe(204)
        const response = await new Client(server).request('POST', '/auth/password-reset/confirm', {
          json: { token, newPassword: `${PASSWORD} other` },
        })
        expect(response.status).toBe(400)
        expect((await apiError(response)).code).toBe('invalid_token')
      })

      it('the request log never holds passwords, cookies, tokens or reset links', async () => {
        const address = email()
        const client = await signedUp(server, address)
        await client.request('GET', '/auth/session')
        await new Client(server).request('POST', '/auth/token', {
          json: { email: address, password: PASSWORD },
        })
        const before = server.mails().length
        await new Client(server).request('POST', '/auth/password-reset/request', {
          json: { email: address },
        })
        const token = resetTokenFrom(await waitForMail(server, before + 1))
        await fetch(`${server.url}/reset?token=${token}`)
        const text = server.log.text()
        expect(text).toContain('"msg":"request"')
        expect(text).not.toContain(PASSWORD)
        expect(text).not.toMatch(/tessera_session=/)
        expect(text).not.toMatch(/reset\?token=/)
        expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./)
      })
    })

    describe('tokens', () => {
      async function grant(address: string): Promise<TokenResponse> {
        const response = await new Client(server).request('POST', '/auth/token', {
          json: { email: address, password: PASSWORD },
        })
        expect(response.status).toBe(200)
        return json<TokenResponse>(response)
      }

      it('POST /auth/token: a pair; the access token works as Bearer on /auth/session', async () => {
        const address = email()
        await signedUp(server, address)
        const pair = await grant(address)
        expect(Object.keys(pair).sort()).toEqual(
          ['access_token', 'expires_in', 'refresh_token', 'token_type'].sort(),
        )
        expect(pair.token_type).toBe('Bearer')
        expect(pair.expires_in).toBe(900)
        const [header, payload] = pair.access_token.split('.')
        expect(JSON.parse(Buffer.from(header ?? '', 'base64url').toString())).toMatchObject({
          alg: 'EdDSA',
        })
        const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as object
        expect(Object.keys(claims)).toEqual(
          expect.arrayContaining(['iss', 'aud', 'sub', 'sid', 'iat', 'exp', 'jti']),
        )
        const session = await new Client(server, {
          authorization: `Bearer ${pair.access_token}`,
        }).request('GET', '/auth/session')
        expect(session.status).toBe(200)
        expect((await json<{ user: { email: string } }>(session)).user.email).toBe(address)
      })

      it('POST /auth/token: wrong password 401 invalid_credentials', async () => {
        const address = email()
        await signedUp(server, address)
        const response = await new Client(server).request('POST', '/auth/token', {
          json: { email: address, password: 'wrong password here' },
        })
        expect(response.status).toBe(401)
        expect((await apiError(response)).code).toBe('invalid_credentials')
      })

      it('refresh rotates; a used refresh token is token_reused and kills the family and session', async () => {
        const address = email()
        await signedUp(server, address)
        const first = await grant(address)
        const cli = new Client(server)
        const rotated = await cli.request('POST', '/auth/refresh', {
          json: { refresh_token: first.refresh_token },
        })
        expect(rotated.status).toBe(200)
        const second = await json<TokenResponse>(rotated)
        expect(second.refresh_token).not.toBe(first.refresh_token)
        expect(second.token_type).toBe('Bearer')

        const reused = await cli.request('POST', '/auth/refresh', {
          json: { refresh_token: first.refresh_token },
        })
        expect(reused.status).toBe(401)
        expect((await apiError(reused)).code).toBe('token_reused')
        const after = await cli.request('POST', '/auth/refresh', {
          json: { refresh_token: second.refresh_token },
        })
        expect(after.status).toBe(401)
        const bearer = await new Client(server, {
          authorization: `Bearer ${second.access_token}`,
        }).request('GET', '/auth/session')
        expect(bearer.status).toBe(401)
      })

      it('refresh with garbage: 401 invalid_token', async () => {
        const response = await new Client(server).request('POST', '/auth/refresh', {
          json: { refresh_token: 'garbage' },
        })
        expect(response.status).toBe(401)
        expect((await apiError(response)).code).toBe('invalid_token')
      })

      it('revoke: 200 (unknown tokens too), then the refresh token stops working', async () => {
        const address = email()
        await signedUp(server, address)
        const pair = await grant(address)
        const cli = new Client(server)
        expect(
          (await cli.request('POST', '/auth/revoke', { json: { token: 'unknown' } })).status,
        ).toBe(200)
        const revoked = await cli.request('POST', '/auth/revoke', {
          json: { token: pair.refresh_token },
        })
        expect(revoked.status).toBe(200)
        const response = await cli.request('POST', '/auth/refresh', {
          json: { refresh_token: pair.refresh_token },
        })
        expect(response.status).toBe(401)
      })

      it('revoking a refresh token ends its session: the access token stops working at once', async () => {
        const address = email()
        const browser = await signedUp(server, address)
        const pair = await grant(address)
        const bearer = new Client(server, { authorization: `Bearer ${pair.access_token}` })
        expect((await bearer.request('GET', '/auth/session')).status).toBe(200)
        const revoked = await new Client(server).request('POST', '/auth/revoke', {
          json: { token: pair.refresh_token },
        })
        expect(revoked.status).toBe(200)
        expect(await revoked.json()).toEqual({})
        expect((await bearer.request('GET', '/auth/session')).status).toBe(401)
        // Only that session: the browser's own session is untouched.
        expect((await browser.request('GET', '/auth/session')).status).toBe(200)
        // Revoking it again, or an unknown token, is still 200 (RFC 7009).
        const again = await new Client(server).request('POST', '/auth/revoke', {
          json: { token: pair.refresh_token },
        })
        expect(again.status).toBe(200)
      })

      it('access tokens carry auth_time, acr and amr from their session, and refreshed ones keep them', async () => {
        const address = email()
        await signedUp(server, address)
        const before = Math.floor(Date.now() / 1000)
        const pair = await grant(address)
        const claimsOf = (token: string): Record<string, unknown> =>
          JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<
            string,
            unknown
          >
        const claims = claimsOf(pair.access_token)
        expect(claims).toMatchObject({ acr: 'aal1', amr: ['pwd'] })
        expect(claims.auth_time).toBeGreaterThanOrEqual(before)
        expect(claims.auth_time).toBeLessThanOrEqual(claims.iat as number)
        const session = await new Client(server, {
          authorization: `Bearer ${pair.access_token}`,
        }).request('GET', '/auth/session')
        const body = await json<{
          session: { id: string; authTime: string; aal: number; amr: string[] }
        }>(session)
        expect(body.session).toMatchObject({ aal: 1, amr: ['pwd'] })
        expect(Math.floor(Date.parse(body.session.authTime) / 1000)).toBe(claims.auth_time)
        expect(claims.sid).toBe(body.session.id)
        const refreshed = await new Client(server).request('POST', '/auth/refresh', {
          json: { refresh_token: pair.refresh_token },
        })
        const next = await json<TokenResponse>(refreshed)
        expect(claimsOf(next.access_token)).toMatchObject({
          auth_time: claims.auth_time,
          acr: 'aal1',
          amr: ['pwd'],
          sid: claims.sid,
        })
      })

      it('logging a token session out from the sessions list ends its refresh token', async () => {
        const address = email()
        const browser = await signedUp(server, address)
        const pair = await grant(address)
        expect((await browser.request('DELETE', '/auth/sessions')).status).toBe(204)
        const response = await new Client(server).request('POST', '/auth/refresh', {
          json: { refresh_token: pair.refresh_token },
        })
        expect(response.status).toBe(401)
      })

      it('rejects an access token with alg none or a forged signature', async () => {
        const address = email()
        await signedUp(server, address)
        const pair = await grant(address)
        const [header, payload, signature] = pair.access_token.split('.')
        const none = Buffer.from(
          JSON.stringify({
            ...(JSON.parse(Buffer.from(header ?? '', 'base64url').toString()) as object),
            alg: 'none',
          }),
        ).toString('base64url')
        for (const token of [
          `${none}.${payload}.`,
          `${header}.${payload}.${randomBytes(64).toString('base64url')}`,
          `${header}.${payload}`,
          signature ?? 'x',
        ]) {
          const response = await new Client(server, { authorization: `Bearer ${token}` }).request(
            'GET',
            '/auth/session',
          )
          expect(response.status).toBe(401)
        }
      })

      it('JWKS: public keys only, each with kid, alg and use: sig', async () => {
        const response = await fetch(`${server.url}/.well-known/jwks.json`)
        expect(response.status).toBe(200)
        const { keys } = await json<{ keys: Array<Record<string, unknown>> }>(response)
        expect(keys.length).toBeGreaterThan(0)
        for (const key of keys) {
          expect(typeof key.kid).toBe('string')
          expect(key.alg).toBe('EdDSA')
          expect(key.use).toBe('sig')
          expect(key).not.toHaveProperty('d')
        }
      })
    })

    describe('operations', () => {
      it('/healthz, /readyz and /metrics answer', async () => {
        // Its own login, so the counters below do not depend on other cases.
        const address = email()
        await signedUp(server, address)
        const login = await new Client(server).request('POST', '/auth/login', {
          json: { email: address, password: PASSWORD },
        })
        expect(login.status).toBe(200)
        expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
        const ready = await fetch(`${server.url}/readyz`)
        expect(ready.status).toBe(200)
        const { checks } = await json<{ checks: Record<string, string> }>(ready)
        expect(Object.values(checks).every((state) => state === 'ok')).toBe(true)
        expect(Object.keys(checks).length).toBeGreaterThan(0)
        const metrics = await (await fetch(`${server.url}/metrics`)).text()
        expect(metrics).toMatch(/tessera_http_requests_total\{method="POST",route="\/auth\/login"/)
        expect(metrics).toMatch(/tessera_logins_total\{result="success"\} [1-9]/)
        // Every backend counts its live sessions (SQL COUNT; Redis SCAN, cached for 30 s).
        expect(metrics).toMatch(/tessera_active_sessions [1-9]/)
      })
    })
  })
}

apiSuite('HTTP API on SQLite', () =>
  Promise.resolve({ backend: { kind: 'sqlite' }, done: () => Promise.resolve() }),
)

describeWithPostgresAndRedis('HTTP API on PostgreSQL + Redis', (urls) => {
  apiSuite('(postgres + redis)', () => postgresRedisBackend(urls, 'srv'))

  /** Signs up on one server, stops it, and checks the cookie on a new one over the same data. */
  async function survivesRestart(start: (cwd: string) => Promise<TestServer>): Promise<void> {
    // One cwd for both: the generated development secret (data/.tessera-secret) is kept.
    const cwd = mkdtempSync(join(tmpdir(), 'tessera-restart-'))
    try {
      const first = await start(cwd)
      const client = await signedUp(first)
      const cookie = client.cookies.get('tessera_session') ?? ''
      expect(cookie).not.toBe('')
      await first.stop()
      const second = await start(cwd)
      try {
        const again = new Client(second)
        again.cookies.set('tessera_session', cookie)
        const response = await again.request('GET', '/auth/session')
        expect(response.status).toBe(200)
        expect((await json<{ user: { email: string } }>(response)).user.email).toMatch(/@/)
      } finally {
        await second.stop()
      }
    } finally {
      rmSync(cwd, { recursive: true, force: true })
    }
  }

  it('sessions survive a restart with PostgreSQL + Redis', async () => {
    const made = await postgresRedisBackend(urls, 'rst')
    try {
      await survivesRestart((cwd) => startTestServer(made.backend, {}, { cwd }))
    } finally {
      await made.done()
    }
  })

  it('sessions survive a restart with PostgreSQL alone (sessions in PostgreSQL)', async () => {
    const made = await postgresRedisBackend(urls, 'rsp')
    try {
      if (made.backend.kind !== 'postgres+redis') throw new Error('unexpected backend')
      const url = new URL(made.backend.pgUrl)
      url.searchParams.set('options', `-c search_path=${made.backend.schema}`)
      // No REDIS_URL: sessions, refresh tokens and rate limits live in PostgreSQL.
      await survivesRestart((cwd) =>
        startTestServer({ kind: 'sqlite' }, { DATABASE_URL: url.toString() }, { cwd }),
      )
    } finally {
      await made.done()
    }
  })
})

describe('server settings', () => {
  it('an https public URL: __Host- cookie with Secure, and HSTS', async () => {
    const server = await startTestServer(
      { kind: 'sqlite' },
      { TESSERA_PUBLIC_URL: 'https://auth.example.com' },
    )
    try {
      const client = new Client(server, {
        'sec-fetch-site': 'same-origin',
        origin: 'https://auth.example.com',
      })
      const response = await client.request('POST', '/auth/signup', {
        json: { email: email(), password: PASSWORD },
      })
      expect(response.status).toBe(201)
      const cookie = response.headers.getSetCookie().join('\n')
      expect(cookie).toMatch(/^__Host-tessera_session=/)
      expect(cookie).toMatch(/; Secure/i)
      expect(cookie).toMatch(/; Path=\//i)
      expect(cookie).not.toMatch(/Domain=/i)
      expect(response.headers.get('strict-transport-security')).toMatch(/max-age=\d+/)
      expect((await client.request('GET', '/auth/session')).status).toBe(200)
      // The plain-http origin is not the public one any more.
      const wrongOrigin = await new Client(server, { origin: server.url }).request(
        'POST',
        '/auth/login',
        { json: { email: email(), password: PASSWORD } },
      )
      expect(wrongOrigin.status).toBe(403)
    } finally {
      await server.stop()
    }
  })

  it('TESSERA_SIGNUP=closed: signup is 403 forbidden', async () => {
    const server = await startTestServer({ kind: 'sqlite' }, { TESSERA_SIGNUP: 'closed' })
    try {
      const response = await new Client(server).request('POST', '/auth/signup', {
        json: { email: email(), password: PASSWORD },
      })
      expect(response.status).toBe(403)
      expect((await apiError(response)).code).toBe('forbidden')
    } finally {
      await server.stop()
    }
  })

  it('sessions survive a restart (SQLite file and generated secret kept)', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'tessera-restart-'))
    try {
      const first = await startTestServer({ kind: 'sqlite' }, {}, { cwd })
      const client = await signedUp(first)
      const cookie = client.cookies.get('tessera_session') ?? ''
      await first.stop()
      const second = await startTestServer({ kind: 'sqlite' }, {}, { cwd })
      try {
        const again = new Client(second)
        again.cookies.set('tessera_session', cookie)
        expect((await again.request('GET', '/auth/session')).status).toBe(200)
      } finally {
        await second.stop()
      }
    } finally {
      rmSync(cwd, { recursive: true, force: true })
    }
  })
})
