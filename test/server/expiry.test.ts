import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { describeWithPostgresAndRedis, uniqueName } from '../helpers/services.js'
import {
  Client,
  postgresRedisBackend,
  resetTokenFrom,
  startTestServer,
  testClock,
  waitForMail,
  type Backend,
  type TestClock,
  type TestServer,
} from './api-harness.js'

/*
 * Expiry over HTTP, on a real socket, with the server's clock injected (`startServer({ now })`)
 * and moved by hand: no sleeps, no timed assertions.
 *
 * With Redis the clock is the stores' clock too: key TTLs are computed from it as
 * `deathTime - now()` and handed to Redis as relative PEXPIREs, which Redis counts on its own
 * real clock. Moving the fake clock forward therefore never makes Redis drop a key early; the
 * keys outlive their fake death, and what these tests check is the rule of DESIGN.md: expiry is
 * decided by the session manager from the record, the store TTL only cleans up.
 */

const PASSWORD = 'correct horse battery staple'
const IDLE = 600 // 10 minutes
const ABSOLUTE = 3600 // 1 hour
const ACCESS_TTL = 120 // 2 minutes; verification allows 60 s of leeway
const RESET_TTL = 30 * 60 // fixed by the server (API.md)

interface SessionBody {
  session: { expiresAt: string; absoluteExpiresAt: string; lastSeenAt: string }
}

function expirySuite(
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
      server = await startTestServer(
        made.backend,
        {
          TESSERA_SESSION_IDLE: String(IDLE),
          TESSERA_SESSION_ABSOLUTE: String(ABSOLUTE),
          TESSERA_ACCESS_TTL: String(ACCESS_TTL),
        },
        { now: clock.now },
      )
    })

    afterAll(async () => {
      await server?.stop()
      await cleanup()
    })

    async function signedUp(): Promise<{ address: string; browser: Client }> {
      const address = `${uniqueName('exp')}@example.com`
      const browser = new Client(server, Client.sameOrigin(server))
      const response = await browser.request('POST', '/auth/signup', {
        json: { email: address, password: PASSWORD },
      })
      expect(response.status).toBe(201)
      return { address, browser }
    }

    async function session(browser: Client): Promise<Response> {
      return browser.request('GET', '/auth/session')
    }

    it('idle expiry: 200 until the idle time passes without a request, then 401', async () => {
      const { browser } = await signedUp()
      expect((await session(browser)).status).toBe(200)
      clock.advance(IDLE - 5)
      const alive = await session(browser)
      expect(alive.status).toBe(200)
      // That request renewed the idle time; now stay away for longer than it.
      clock.advance(IDLE + 1)
      expect((await session(browser)).status).toBe(401)
      // Gone for good: the clock does not bring it back.
      expect((await session(browser)).status).toBe(401)
    })

    it('sliding renewal: activity keeps a session alive far past the first idle deadline', async () => {
      const { browser } = await signedUp()
      const first = (await (await session(browser)).json()) as SessionBody
      const firstExpiry = Date.parse(first.session.expiresAt)
      let expiry = firstExpiry
      // Four requests 0.8 x idle apart: 3.2 x idle in all, each one inside the idle window.
      for (let step = 0; step < 4; step++) {
        clock.advance(IDLE * 0.8)
        const response = await session(browser)
        expect(response.status).toBe(200)
        const body = (await response.json()) as SessionBody
        const next = Date.parse(body.session.expiresAt)
        expect(next).toBeGreaterThan(expiry)
        expect(next).toBe(clock.now() + IDLE * 1000)
        expiry = next
      }
      expect(clock.now()).toBeGreaterThan(firstExpiry + IDLE * 1000)
      expect((await session(browser)).status).toBe(200)
    })

    it('absolute expiry: an active session still ends when the absolute time is reached', async () => {
      const { browser } = await signedUp()
      const body = (await (await session(browser)).json()) as SessionBody
      const absolute = Date.parse(body.session.absoluteExpiresAt)
      expect(absolute).toBe(clock.now() + ABSOLUTE * 1000)
      // Active every 0.8 x idle: never idle-expired.
      while (clock.now() + IDLE * 800 < absolute) {
        clock.advance(IDLE * 0.8)
        expect((await session(browser)).status).toBe(200)
      }
      // Renewal never reaches past the absolute deadline: the idle one is capped at it.
      const last = (await (await session(browser)).json()) as SessionBody
      expect(Date.parse(last.session.expiresAt)).toBe(absolute)
      clock.advance((absolute - clock.now()) / 1000 - 1)
      expect((await session(browser)).status).toBe(200)
      clock.advance(1)
      expect(clock.now()).toBe(absolute)
      expect((await session(browser)).status).toBe(401)
    })

    it('reset tokens: one used 29 minutes after the mail works, one used after 31 minutes does not', async () => {
      const early = await signedUp()
      const late = await signedUp()
      const before = server.mails().length
      for (const address of [early.address, late.address]) {
        await new Client(server).request('POST', '/auth/password-reset/request', {
          json: { email: address },
        })
      }
      await waitForMail(server, before + 2)
      const mails = server.mails().slice(before)
      const tokenFor = (address: string): string => {
        const mail = mails.find((text) => text.includes(address))
        if (mail === undefined) throw new Error(`no mail to ${address}`)
        return resetTokenFrom(mail)
      }
      const earlyToken = tokenFor(early.address)
      const lateToken = tokenFor(late.address)

      clock.advance(RESET_TTL - 60)
      const used = await new Client(server).request('POST', '/auth/password-reset/confirm', {
        json: { token: earlyToken, newPassword: `${PASSWORD} early` },
      })
      expect(used.status).toBe(204)

      clock.advance(120)
      const page = await fetch(`${server.url}/reset?token=${lateToken}`)
      expect(page.status).toBe(200) // the page checks the link's shape; the post decides
      const expired = await new Client(server).request('POST', '/reset', {
        body: new URLSearchParams({
          token: lateToken,
          newPassword: `${PASSWORD} late`,
          confirmPassword: `${PASSWORD} late`,
        }).toString(),
        headers: {
          ...Client.sameOrigin(server),
          'content-type': 'application/x-www-form-urlencoded',
        },
      })
      expect(expired.status).toBe(400)
      expect(await expired.text()).toContain('This reset link does not work')
      const api = await new Client(server).request('POST', '/auth/password-reset/confirm', {
        json: { token: lateToken, newPassword: `${PASSWORD} late` },
      })
      expect(api.status).toBe(400)
      const login = await new Client(server).request('POST', '/auth/login', {
        json: { email: late.address, password: PASSWORD },
      })
      expect(login.status).toBe(200)
    })

    it('access tokens: accepted until expiry plus the 60 s leeway, then 401', async () => {
      const { address } = await signedUp()
      const issued = await new Client(server).request('POST', '/auth/token', {
        json: { email: address, password: PASSWORD },
      })
      expect(issued.status).toBe(200)
      const {
        access_token: token,
        expires_in: expiresIn,
        refresh_token: refreshToken,
      } = (await issued.json()) as {
        access_token: string
        expires_in: number
        refresh_token: string
      }
      expect(expiresIn).toBe(ACCESS_TTL)
      const bearer = new Client(server, { authorization: `Bearer ${token}` })
      expect((await bearer.request('GET', '/auth/session')).status).toBe(200)
      clock.advance(ACCESS_TTL + 50)
      expect((await bearer.request('GET', '/auth/session')).status).toBe(200)
      clock.advance(20)
      expect((await bearer.request('GET', '/auth/session')).status).toBe(401)
      // Only the token expired: its session is alive, so the refresh token still gets a new pair.
      const refreshed = await new Client(server).request('POST', '/auth/refresh', {
        json: { refresh_token: refreshToken },
      })
      expect(refreshed.status).toBe(200)
      const fresh = ((await refreshed.json()) as { access_token: string }).access_token
      const again = new Client(server, { authorization: `Bearer ${fresh}` })
      expect((await again.request('GET', '/auth/session')).status).toBe(200)
    })
  })
}

expirySuite('expiry over HTTP with an injected clock (SQLite)', () =>
  Promise.resolve({ backend: { kind: 'sqlite' }, done: () => Promise.resolve() }),
)

describeWithPostgresAndRedis(
  'expiry over HTTP with an injected clock (PostgreSQL + Redis)',
  (urls) => {
    expirySuite('(postgres + redis)', () => postgresRedisBackend(urls, 'exp'))
  },
)
