import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeJwt } from 'jose'
import { totpCode } from '../../src/auth/totp.js'
import { describeWithPostgresAndRedis, uniqueName } from '../helpers/services.js'
import {
  apiError,
  Client,
  postgresRedisBackend,
  startTestServer,
  testClock,
  type Backend,
  type TestClock,
  type TestServer,
} from './api-harness.js'

/*
 * Second factors over HTTP (API.md "Second factors and step-up"), on a real socket, SQLite and
 * PostgreSQL + Redis, with the server's clock injected: codes are computed from the secret at
 * the server's time, and the clock moves a step forward where a new code is needed.
 */

const PASSWORD = 'correct horse battery staple'

interface Challenge {
  mfaRequired: true
  challenge: string
  methods: string[]
  expiresAt: string
}

interface SessionBody {
  user: { id: string; email: string }
  session: { aal: number; amr: string[]; authTime: string }
}

function mfaSuite(
  name: string,
  backend: () => Promise<{ backend: Backend; done: () => Promise<void> }>,
): void {
  describe(name, () => {
    let server: TestServer
    let clock: TestClock
    let cleanup: () => Promise<void> = () => Promise.resolve()

    beforeAll(async () => {
      const made = await backend()
      cleanup = made.done
      clock = testClock()
      server = await startTestServer(made.backend, {}, { now: clock.now })
    })

    afterAll(async () => {
      await server.stop()
      await cleanup()
    })

    const browser = (): Client => new Client(server, Client.sameOrigin(server))
    const code = (secret: string): string => totpCode(secret, { now: clock.now() })
    /** A new step, so that a new code is not a replay of the last accepted one. */
    const nextStep = (): void => clock.advance(30)

    async function signUp(): Promise<{ client: Client; email: string }> {
      const client = browser()
      const email = `${uniqueName('mfa')}@example.com`
      const response = await client.request('POST', '/auth/signup', {
        json: { email, password: PASSWORD },
      })
      expect(response.status).toBe(201)
      return { client, email }
    }

    async function enrol(client: Client): Promise<{ secret: string; recoveryCodes: string[] }> {
      const started = await client.request('POST', '/auth/mfa/totp')
      expect(started.status).toBe(200)
      const body = (await started.json()) as { secret: string; uri: string; qrSvg: string }
      expect(body.uri).toContain(`secret=${body.secret}`)
      expect(body.qrSvg.startsWith('<svg')).toBe(true)
      // Pending: nothing changes until a code confirms it.
      const pending = (await (await client.request('GET', '/auth/mfa')).json()) as {
        totp: { enabled: boolean }
      }
      expect(pending.totp.enabled).toBe(false)
      const confirmed = await client.request('POST', '/auth/mfa/totp/confirm', {
        json: { code: code(body.secret) },
      })
      expect(confirmed.status).toBe(200)
      const { recoveryCodes } = (await confirmed.json()) as { recoveryCodes: string[] }
      expect(recoveryCodes).toHaveLength(10)
      return { secret: body.secret, recoveryCodes }
    }

    async function firstStep(
      client: Client,
      email: string,
      path = '/auth/login',
    ): Promise<Challenge> {
      const response = await client.request('POST', path, { json: { email, password: PASSWORD } })
      expect(response.status).toBe(200)
      expect(response.headers.getSetCookie()).toEqual([])
      const body = (await response.json()) as Challenge
      expect(body.mfaRequired).toBe(true)
      return body
    }

    it('enrol, confirm (the session becomes aal 2), sign in with TOTP; a replayed code fails', async () => {
      const { client, email } = await signUp()
      const { secret } = await enrol(client)
      const session = (await (await client.request('GET', '/auth/session')).json()) as SessionBody
      expect(session.session.aal).toBe(2)
      const status = await (await client.request('GET', '/auth/mfa')).json()
      expect(status).toMatchObject({
        totp: { enabled: true },
        recoveryCodes: { remaining: 10 },
        passkeys: [],
      })

      const other = browser()
      const challenge = await firstStep(other, email)
      expect(challenge.methods).toEqual(['totp', 'recovery_code'])
      expect(Date.parse(challenge.expiresAt) - clock.now()).toBe(300_000)
      // No session yet.
      expect((await other.request('GET', '/auth/session')).status).toBe(401)

      const wrong = await other.request('POST', '/auth/mfa/verify', {
        json: { challenge: challenge.challenge, method: 'totp', code: '000000' },
      })
      expect(wrong.status).toBe(401)
      expect((await apiError(wrong)).code).toBe('invalid_credentials')

      nextStep()
      const good = code(secret)
      const verified = await other.request('POST', '/auth/mfa/verify', {
        json: { challenge: challenge.challenge, method: 'totp', code: good },
      })
      expect(verified.status).toBe(200)
      const body = (await verified.json()) as SessionBody
      expect(body.user.email).toBe(email)
      expect(body.session.aal).toBe(2)
      expect(body.session.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']))
      expect((await other.request('GET', '/auth/session')).status).toBe(200)

      // The challenge is single use; the code is too.
      const reused = await browser().request('POST', '/auth/mfa/verify', {
        json: { challenge: challenge.challenge, method: 'totp', code: good },
      })
      expect(reused.status).toBe(400)
      expect((await apiError(reused)).code).toBe('invalid_token')
      const again = await firstStep(browser(), email)
      const replay = await browser().request('POST', '/auth/mfa/verify', {
        json: { challenge: again.challenge, method: 'totp', code: good },
      })
      expect(replay.status).toBe(401)
    })

    it('bearer tokens through the challenge, with a recovery code; each code works once', async () => {
      const { client, email } = await signUp()
      const { recoveryCodes } = await enrol(client)
      const cli = new Client(server)
      const challenge = await firstStep(cli, email, '/auth/token')
      const recovery = recoveryCodes[0] as string
      const response = await cli.request('POST', '/auth/mfa/verify', {
        json: { challenge: challenge.challenge, method: 'recovery_code', code: recovery },
      })
      expect(response.status).toBe(200)
      const tokens = (await response.json()) as { access_token: string; refresh_token: string }
      const claims = decodeJwt(tokens.access_token)
      expect(claims.acr).toBe('aal2')
      expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'mca', 'mfa']))
      const bearer = new Client(server, { authorization: `Bearer ${tokens.access_token}` })
      const status = (await (await bearer.request('GET', '/auth/mfa')).json()) as {
        recoveryCodes: { remaining: number }
      }
      expect(status.recoveryCodes.remaining).toBe(9)
      const second = await firstStep(cli, email, '/auth/token')
      const reused = await cli.request('POST', '/auth/mfa/verify', {
        json: { challenge: second.challenge, method: 'recovery_code', code: recovery },
      })
      expect(reused.status).toBe(401)
    })

    it('no oracle: a wrong password gets the same answer whether or not the account has a factor', async () => {
      const withFactor = await signUp()
      await enrol(withFactor.client)
      const without = await signUp()
      const answers = []
      for (const email of [
        withFactor.email,
        without.email,
        `${uniqueName('nobody')}@example.com`,
      ]) {
        const response = await browser().request('POST', '/auth/login', {
          json: { email, password: 'wrong password, quite long' },
        })
        answers.push({ status: response.status, body: await response.text() })
      }
      expect(answers[0]).toEqual(answers[1])
      expect(answers[1]).toEqual(answers[2])
      expect(answers[0]?.status).toBe(401)
    })

    it('wrong codes count toward the account backoff', async () => {
      const { client, email } = await signUp()
      const { secret } = await enrol(client)
      const challenge = await firstStep(browser(), email)
      // The first step counted one attempt; four wrong codes make five: the account locks.
      for (let i = 0; i < 4; i++) {
        const wrong = await browser().request('POST', '/auth/mfa/verify', {
          json: { challenge: challenge.challenge, method: 'totp', code: '000000' },
        })
        expect(wrong.status).toBe(401)
      }
      // The lock is decided before the code is looked at: even a right code is refused.
      const locked = await browser().request('POST', '/auth/mfa/verify', {
        json: { challenge: challenge.challenge, method: 'totp', code: code(secret) },
      })
      expect(locked.status).toBe(429)
      expect(locked.headers.get('retry-after')).not.toBeNull()
      const password = await browser().request('POST', '/auth/login', {
        json: { email, password: PASSWORD },
      })
      expect(password.status).toBe(429)
    })

    it('step-up: factor changes and revoke-all need a recent sign-in; removal needs a second factor', async () => {
      const { client, email } = await signUp()
      clock.advance(11 * 60)
      const refused = await client.request('POST', '/auth/mfa/totp')
      expect(refused.status).toBe(403)
      const error = await apiError(refused)
      expect(error.code).toBe('reauthentication_required')
      expect(error.message).toContain('/auth/reauthenticate')
      expect((await client.request('DELETE', '/auth/sessions')).status).toBe(403)

      const wrongPassword = await client.request('POST', '/auth/reauthenticate', {
        json: { password: 'not the password at all' },
      })
      expect(wrongPassword.status).toBe(401)
      const before = client.cookies.get('tessera_session')
      const reauth = await client.request('POST', '/auth/reauthenticate', {
        json: { password: PASSWORD },
      })
      expect(reauth.status).toBe(200)
      expect(client.cookies.get('tessera_session')).not.toBe(before)
      const reauthBody = (await reauth.json()) as { session: { aal: number; authTime: string } }
      expect(Date.parse(reauthBody.session.authTime)).toBe(clock.now())
      expect((await client.request('DELETE', '/auth/sessions')).status).toBe(204)

      const { secret } = await enrol(client)
      clock.advance(11 * 60)
      expect((await client.request('DELETE', '/auth/mfa/totp')).status).toBe(403)
      expect((await client.request('POST', '/auth/mfa/recovery-codes')).status).toBe(403)
      // A password alone is one factor: removal still wants the second.
      await client.request('POST', '/auth/reauthenticate', { json: { password: PASSWORD } })
      const needsFactor = await client.request('DELETE', '/auth/mfa/totp')
      expect(needsFactor.status).toBe(403)
      expect((await apiError(needsFactor)).message).toContain('second factor')
      const withCode = await client.request('POST', '/auth/reauthenticate', {
        json: { method: 'totp', code: code(secret) },
      })
      expect(withCode.status).toBe(200)
      expect(((await withCode.json()) as { session: { aal: number } }).session.aal).toBe(2)
      const regenerated = await client.request('POST', '/auth/mfa/recovery-codes')
      expect(regenerated.status).toBe(200)
      expect((await client.request('DELETE', '/auth/mfa/totp')).status).toBe(204)
      // Without a factor the password alone signs in again.
      const login = await browser().request('POST', '/auth/login', {
        json: { email, password: PASSWORD },
      })
      expect(login.status).toBe(200)
      expect(((await login.json()) as { session?: unknown }).session).toBeDefined()
    })

    it('bad input on every new route: a clear 4xx, nothing changed', async () => {
      const alice = await signUp()
      const { secret } = await enrol(alice.client)
      const bob = await signUp()
      const bobFactor = await enrol(bob.client)
      const challenge = await firstStep(browser(), alice.email)
      const post = (json: unknown): Promise<Response> =>
        browser().request('POST', '/auth/mfa/verify', { json })
      const cases: Array<[unknown, number, string]> = [
        [
          { challenge: challenge.challenge, method: 'totp', code: 'abcdef' },
          401,
          'invalid_credentials',
        ],
        [
          { challenge: challenge.challenge, method: 'totp', code: '1'.repeat(300) },
          400,
          'invalid_request',
        ],
        [{ challenge: challenge.challenge, method: 'totp', code: 123456 }, 400, 'invalid_request'],
        [{ challenge: challenge.challenge, method: 'sms', code: '123456' }, 400, 'invalid_request'],
        [{ challenge: challenge.challenge, method: 'totp' }, 400, 'invalid_request'],
        [{ challenge: 'x'.repeat(43), method: 'totp', code: '123456' }, 400, 'invalid_token'],
        [{ challenge: 'short', method: 'totp', code: '123456' }, 400, 'invalid_token'],
        [[1, 2], 400, 'invalid_request'],
        [null, 400, 'invalid_request'],
      ]
      for (const [json, status, errorCode] of cases) {
        const response = await post(json)
        expect([JSON.stringify(json).slice(0, 60), response.status]).toEqual([
          JSON.stringify(json).slice(0, 60),
          status,
        ])
        expect((await apiError(response)).code).toBe(errorCode)
      }
      const huge = await browser().request('POST', '/auth/mfa/verify', {
        body: JSON.stringify({
          challenge: challenge.challenge,
          method: 'totp',
          code: 'x'.repeat(70_000),
        }),
        headers: { 'content-type': 'application/json' },
      })
      expect(huge.status).toBe(413)
      const form = await browser().request('POST', '/auth/mfa/verify', {
        body: 'challenge=x',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      })
      expect(form.status).toBe(415)
      // Bob's code on Alice's challenge is a wrong code, and signs nobody in.
      nextStep()
      const foreign = await post({
        challenge: challenge.challenge,
        method: 'totp',
        code: code(bobFactor.secret),
      })
      expect(foreign.status).toBe(401)

      // Signed-in routes.
      const anonymous = browser()
      expect((await anonymous.request('GET', '/auth/mfa')).status).toBe(401)
      expect((await anonymous.request('POST', '/auth/mfa/totp')).status).toBe(401)
      expect((await anonymous.request('POST', '/auth/reauthenticate', { json: {} })).status).toBe(
        401,
      )
      const confirmNothing = await alice.client.request('POST', '/auth/mfa/totp/confirm', {
        json: { code: '123456' },
      })
      expect(confirmNothing.status).toBe(404)
      expect(
        (await alice.client.request('POST', '/auth/mfa/totp/confirm', { json: {} })).status,
      ).toBe(400)
      expect((await alice.client.request('POST', '/auth/mfa/totp')).status).toBe(409)
      for (const json of [
        {},
        { password: 42 },
        { method: 'sms', code: '1' },
        { method: 'totp', code: 'x'.repeat(300) },
        'text',
      ]) {
        const response = await alice.client.request('POST', '/auth/reauthenticate', { json })
        expect(response.status).toBe(400)
      }
      const noFactor = await signUp()
      expect((await noFactor.client.request('POST', '/auth/mfa/recovery-codes')).status).toBe(409)
      // A cross-site request changes nothing.
      const crossSite = await alice.client.request('DELETE', '/auth/mfa/totp', {
        headers: { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' },
      })
      expect(crossSite.status).toBe(403)

      // Nothing changed: Alice still has her factor, and her own code still signs her in.
      const status = (await (await alice.client.request('GET', '/auth/mfa')).json()) as {
        totp: { enabled: boolean }
        recoveryCodes: { remaining: number }
      }
      expect(status.totp.enabled).toBe(true)
      expect(status.recoveryCodes.remaining).toBe(10)
      const fresh = await firstStep(browser(), alice.email)
      const ok = await post({ challenge: fresh.challenge, method: 'totp', code: code(secret) })
      expect(ok.status).toBe(200)
    })
  })
}

mfaSuite('second factors over HTTP (SQLite)', () =>
  Promise.resolve({ backend: { kind: 'sqlite' }, done: () => Promise.resolve() }),
)

describeWithPostgresAndRedis('second factors over HTTP (PostgreSQL + Redis)', (urls) => {
  mfaSuite('(postgres + redis)', () => postgresRedisBackend(urls, 'mfa'))
})
