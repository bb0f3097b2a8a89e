import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createAccounts, type Accounts } from '../../src/auth/accounts.js'
import { createDatabase } from '../../src/auth/db/database.js'
import { loadConfig } from '../../src/server/config.js'
import { createMetrics } from '../../src/server/metrics.js'
import { buildServices } from '../../src/server/services.js'
import { captureLogger } from './helpers.js'
import { Client, startTestServer, testClock, type TestServer } from './api-harness.js'

// The admin panel mounted in the real server (startServer), over a real socket.

const PASSWORD = 'correct horse battery staple'

/** The hidden `_csrf` field of the page's (first) form. */
function csrfOf(page: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(page)
  if (match?.[1] === undefined) throw new Error('no CSRF field in the page')
  return match[1]
}

function form(fields: Record<string, string>): {
  body: string
  headers: Record<string, string>
  redirect: 'manual'
} {
  return {
    body: new URLSearchParams(fields).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    redirect: 'manual',
  }
}

async function expectRedirect(response: Response, location: string): Promise<void> {
  expect(response.status).toBe(303)
  expect(response.headers.get('location')).toBe(location)
  await response.body?.cancel()
}

async function expectDashboard(client: Client): Promise<void> {
  const dashboard = await client.request('GET', '/admin')
  expect(dashboard.status).toBe(200)
  expect(dashboard.headers.get('content-type')).toMatch(/^text\/html/)
  expect(dashboard.headers.get('content-security-policy')).toContain("script-src 'none'")
  expect(await dashboard.text()).toContain('<h1>Dashboard</h1>')
}

/** The setup link the server logged at start, or undefined. */
function loggedSetupUrl(server: TestServer): string | undefined {
  const line = server.log.lines().find((entry) => typeof entry.setupUrl === 'string')
  return line?.setupUrl as string | undefined
}

/** The accounts of the server's SQLite file, opened beside the running server. */
async function openAccounts(cwd: string): Promise<Accounts & { close(): Promise<void> }> {
  const db = await createDatabase({ dialect: 'sqlite', filename: join(cwd, 'data', 'tessera.db') })
  // Sessions are not ended here, so only the per-request user read can refuse a disabled user.
  const sessions = { revokeAll: (): Promise<number> => Promise.resolve(0) }
  return Object.assign(createAccounts(db, { sessions }), { close: () => db.destroy() })
}

/**
 * Creates root@example.com as an admin in the SQLite database under `cwd`, through the services
 * the server is built from, before the server starts there.
 */
async function createAdminBeforeStart(cwd: string): Promise<void> {
  const env = { NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', TESSERA_MAILER: 'console' }
  const services = await buildServices(loadConfig(env, { cwd, envFiles: false }), {
    logger: captureLogger().logger,
    metrics: createMetrics(),
  })
  try {
    const created = await services.auth.createUser(
      { email: 'root@example.com', password: PASSWORD, isAdmin: true },
      {},
    )
    expect(created.ok).toBe(true)
  } finally {
    await services.close()
  }
}

describe('admin panel in the server', { timeout: 60_000 }, () => {
  it('ends panel sessions after 30 minutes idle and 12 hours in any case (server clock)', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'tessera-admin-expiry-'))
    try {
      await createAdminBeforeStart(cwd)
      const clock = testClock()
      const server = await startTestServer({ kind: 'sqlite' }, {}, { cwd, now: clock.now })
      const signIn = async (): Promise<Client> => {
        const browser = new Client(server, Client.sameOrigin(server))
        const page = await browser.request('GET', '/admin/login')
        const csrf = csrfOf(await page.text())
        await expectRedirect(
          await browser.request(
            'POST',
            '/admin/login',
            form({ _csrf: csrf, email: 'root@example.com', password: PASSWORD }),
          ),
          '/admin',
        )
        return browser
      }
      const signedOut = async (browser: Client): Promise<void> =>
        expectRedirect(
          await browser.request('GET', '/admin', { redirect: 'manual' }),
          '/admin/login',
        )
      try {
        // Idle: 29 minutes between requests keeps the session (sliding); 31 minutes ends it.
        const idle = await signIn()
        for (let i = 0; i < 3; i++) {
          clock.advance(29 * 60)
          await expectDashboard(idle)
        }
        clock.advance(31 * 60)
        await signedOut(idle)

        // Absolute: a request every 20 minutes still ends 12 hours after sign-in.
        const busy = await signIn()
        for (let elapsed = 20; elapsed < 12 * 60; elapsed += 20) {
          clock.advance(20 * 60)
          await expectDashboard(busy)
        }
        clock.advance(20 * 60) // 12 h 00 min since sign-in
        await signedOut(busy)
      } finally {
        await server.stop()
      }
    } finally {
      rmSync(cwd, { recursive: true, force: true })
    }
  })

  it('redirects /admin to sign-in; an admin made by the auth service signs in through the form', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'tessera-admin-'))
    try {
      await createAdminBeforeStart(cwd)

      const server = await startTestServer({ kind: 'sqlite' }, {}, { cwd })
      try {
        expect(loggedSetupUrl(server)).toBeUndefined()
        const browser = new Client(server, Client.sameOrigin(server))
        await expectRedirect(
          await browser.request('GET', '/admin', { redirect: 'manual' }),
          '/admin/login',
        )

        const signIn = await browser.request('GET', '/admin/login')
        expect(signIn.status).toBe(200)
        expect(browser.cookies.has('tessera_admin_login')).toBe(true)
        const csrf = csrfOf(await signIn.text())

        // A form post is not held to the API's JSON-only rule, but still needs its CSRF token.
        const noToken = await browser.request(
          'POST',
          '/admin/login',
          form({ email: 'root@example.com', password: PASSWORD }),
        )
        expect(noToken.status).toBe(403)
        await noToken.body?.cancel()

        const wrong = await browser.request(
          'POST',
          '/admin/login',
          form({ _csrf: csrf, email: 'root@example.com', password: 'not the password at all' }),
        )
        expect(wrong.status).toBe(401)
        const retry = csrfOf(await wrong.text())

        await expectRedirect(
          await browser.request(
            'POST',
            '/admin/login',
            form({ _csrf: retry, email: 'root@example.com', password: PASSWORD }),
          ),
          '/admin',
        )
        expect(browser.cookies.has('tessera_admin')).toBe(true)
        await expectDashboard(browser)
        // The panel's sign-ins count in the server's login metric like the API's.
        const metrics = await (await fetch(`${server.url}/metrics`)).text()
        expect(metrics).toContain('tessera_logins_total{result="success"} 1')
        expect(metrics).toContain('tessera_logins_total{result="failure"} 1')

        // SECURITY: GET /auth/session reads the user afresh on every request: a permission
        // revoked or an account disabled in the panel's database counts at the next request.
        const member = new Client(server, Client.sameOrigin(server))
        const signup = await member.request('POST', '/auth/signup', {
          json: { email: 'member@example.com', password: PASSWORD },
        })
        expect(signup.status).toBe(201)
        const memberId = ((await signup.json()) as { user: { id: string } }).user.id
        const admin = await openAccounts(cwd)
        try {
          await admin.grantPermission(memberId, 'posts.edit')
          const granted = await member.request('GET', '/auth/session')
          expect(
            ((await granted.json()) as { user: { permissions: string[] } }).user.permissions,
          ).toEqual(['posts.edit'])
          await admin.revokePermission(memberId, 'posts.edit')
          const revoked = await member.request('GET', '/auth/session')
          expect(
            ((await revoked.json()) as { user: { permissions: string[] } }).user.permissions,
          ).toEqual([])
          await admin.disableUser(memberId)
          const disabled = await member.request('GET', '/auth/session')
          expect(disabled.status).toBe(401)
          await disabled.body?.cancel()
        } finally {
          await admin.close()
        }

        // The panel's cookie is not an application session.
        const api = await browser.request('GET', '/auth/session')
        expect(api.status).toBe(401)
        await api.body?.cancel()
      } finally {
        await server.stop()
      }
    } finally {
      rmSync(cwd, { recursive: true, force: true })
    }
  })

  it('logs one setup link at first start; it opens a form that creates the first admin, once', async () => {
    const server = await startTestServer({ kind: 'sqlite' })
    try {
      const logged = loggedSetupUrl(server)
      expect(logged).toBeDefined()
      const link = new URL(logged ?? '')
      expect(link.origin).toBe(server.origin)
      expect(link.pathname).toBe('/admin/setup')
      const token = link.searchParams.get('token') ?? ''
      const path = `/admin/setup?token=${encodeURIComponent(token)}`
      // The old API-side setup page is gone: one mechanism only.
      const old = await fetch(`${server.url}/setup?token=${encodeURIComponent(token)}`)
      expect(old.status).toBe(404)
      await old.body?.cancel()

      const browser = new Client(server, Client.sameOrigin(server))
      const wrongToken = await browser.request('GET', '/admin/setup?token=wrong')
      expect(wrongToken.status).toBe(404)
      await wrongToken.body?.cancel()

      const page = await browser.request('GET', path)
      expect(page.status).toBe(200)
      expect(page.headers.get('content-security-policy')).toContain("form-action 'self'")
      const text = await page.text()
      expect(text).not.toMatch(/<script/i)
      const csrf = csrfOf(text)
      const fields = {
        _csrf: csrf,
        token,
        email: 'first@example.com',
        password: PASSWORD,
        password2: PASSWORD,
      }

      const crossSite = await new Client(server, {
        'sec-fetch-site': 'cross-site',
        origin: 'https://evil.example',
      }).request('POST', '/admin/setup', form(fields))
      expect(crossSite.status).toBe(403)
      await crossSite.body?.cancel()

      await expectRedirect(
        await browser.request('POST', path.split('?')[0] ?? '', form(fields)),
        '/admin',
      )
      await expectDashboard(browser)

      const reused = await new Client(server, Client.sameOrigin(server)).request(
        'POST',
        '/admin/setup',
        form({ ...fields, email: 'second@example.com' }),
      )
      expect(reused.status).toBe(404)
      await reused.body?.cancel()
      const reopened = await fetch(`${server.url}${path}`)
      expect(reopened.status).toBe(404)
      await reopened.body?.cancel()

      // The first admin is a real account of the API too.
      const login = await new Client(server).request('POST', '/auth/login', {
        json: { email: 'first@example.com', password: PASSWORD },
      })
      expect(login.status).toBe(200)
      expect(((await login.json()) as { user: { isAdmin: boolean } }).user.isAdmin).toBe(true)
    } finally {
      await server.stop()
    }
  })
})
