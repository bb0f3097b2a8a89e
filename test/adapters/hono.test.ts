import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { csrfToken, signIn, signOut, tessera, type TesseraEnv } from '../../src/adapters/hono.js'
import type { RequestAuthOptions } from '../../src/core/request-auth.js'
import {
  describeAdapterScenarios,
  signInOptions,
  type BuildApp,
  type LoginBody,
} from './scenarios.js'

/** The scenario app on Hono, through the middleware only. */
function buildHonoApp(options: RequestAuthOptions): Hono<TesseraEnv> {
  const auth = tessera(options)
  const app = new Hono<TesseraEnv>()
  app.use(auth.middleware)
  app.post('/login', async (c) => {
    const body = await c.req.json<LoginBody>()
    const session = await signIn(c, body.userId, signInOptions(body))
    return c.json({ id: session.id })
  })
  app.post('/logout', async (c) => {
    await signOut(c)
    return c.body(null, 204)
  })
  app.get('/me', auth.requireAuth, (c) => {
    const user = c.get('user')
    return c.json({ user: { id: user?.id, permissions: user?.permissions, via: user?.via } })
  })
  app.get('/admin', auth.requirePermission('admin.read'), (c) => c.json({ ok: true }))
  app.post('/echo', (c) => c.json({ user: c.get('user')?.id ?? null }))
  app.get('/csrf', (c) => c.json({ token: csrfToken(c) }))
  app.get('/fresh', auth.requireFresh(600), (c) => c.json({ ok: true }))
  app.get('/aal2', auth.requireAAL(2), (c) => c.json({ ok: true }))
  return app
}

const build: BuildApp = (options) => {
  const app = buildHonoApp(options)
  return Promise.resolve({
    async send(method, path, { headers = {}, json } = {}) {
      const response = await app.request(path, {
        method,
        headers: json === undefined ? headers : { ...headers, 'content-type': 'application/json' },
        ...(json === undefined ? {} : { body: JSON.stringify(json) }),
      })
      const text = await response.text()
      let body: unknown = null
      try {
        body = text.length > 0 ? JSON.parse(text) : null
      } catch {
        body = null
      }
      return {
        status: response.status,
        body,
        setCookies: response.headers.getSetCookie(),
        headers: Object.fromEntries(response.headers.entries()),
      }
    },
    close: () => Promise.resolve(),
  })
}

describeAdapterScenarios('Hono', build)

describe('Hono adapter typing', () => {
  it('exposes session and user as typed context variables', async () => {
    const { createKeyring } = await import('../../src/core/keyring.js')
    const { createSessionManager } = await import('../../src/core/session-manager.js')
    const { createMemoryStore } = await import('../../src/stores/memory.js')
    const keyring = createKeyring(Buffer.alloc(32, 7).toString('base64url') + 'x9Q!')
    const sessions = createSessionManager(createMemoryStore(), keyring)
    const app = buildHonoApp({ sessions, keyring, trustedOrigins: ['https://a.example'] })
    const response = await app.request('/echo', { method: 'POST' })
    expect(await response.json()).toEqual({ user: null })
  })
})

describe('Hono adapter for an HTML panel (the admin panel shape): form-token proof, own sessions', () => {
  const PANEL = 'https://panel.example.test'

  async function panel(): Promise<{
    app: Hono<TesseraEnv<{ email: string }>>
    signedIn: () => Promise<string>
    api: string
  }> {
    const { createKeyring } = await import('../../src/core/keyring.js')
    const { createSessionManager } = await import('../../src/core/session-manager.js')
    const { createMemoryStore } = await import('../../src/stores/memory.js')
    const keyring = createKeyring(Buffer.alloc(32, 9).toString('base64url') + 'p4N!')
    const store = createMemoryStore()
    const adminSessions = createSessionManager(store, keyring, {
      cookieName: 'tessera_admin',
      purpose: 'admin-session',
      path: '/admin',
      sameSite: 'Strict',
    })
    const appSessions = createSessionManager(store, keyring)
    const admins = new Map([['root', { email: 'root@example.test', admin: true }]])
    const auth = tessera<{ email: string }>({
      sessions: adminSessions,
      keyring,
      trustedOrigins: [PANEL],
      csrf: { proof: 'form-token', scope: 'admin' },
      // The form's own field, read before the route (Hono keeps the body for it).
      csrfToken: async (c) => {
        const form = await c.req.parseBody()
        return typeof form._csrf === 'string' ? form._csrf : undefined
      },
      loadUser: ({ userId }) => {
        const user = admins.get(userId)
        return user?.admin === true ? { permissions: ['admin.access'], record: user } : null
      },
      onRefusal: (c, refusal) =>
        refusal.status === 401
          ? c.redirect('/admin/login', 303)
          : c.html(`<h1>Request refused</h1><p>${refusal.code}</p>`, refusal.status),
    })
    const app = new Hono<TesseraEnv<{ email: string }>>()
    app.use('/admin/*', auth.middleware)
    app.use('/admin/app/*', auth.requirePermission('admin.access'))
    app.get('/admin/app/form', (c) => c.html(`<input name="_csrf" value="${csrfToken(c)}">`))
    app.post('/admin/app/act', async (c) => {
      const form = await c.req.parseBody()
      return c.text(
        `done by ${c.get('user')?.record.email ?? '?'} (${typeof form.what === 'string' ? form.what : '?'})`,
      )
    })
    return {
      app,
      signedIn: async () => (await adminSessions.create('root')).setCookie.split(';')[0] ?? '',
      // A token of the API (bound to an app session's bare id) must not work on the panel.
      api: (await appSessions.create('root')).session.id,
    }
  }

  function post(
    app: Hono<TesseraEnv<{ email: string }>>,
    cookie: string,
    fields: Record<string, string>,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    return Promise.resolve(
      app.request('/admin/app/act', {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams(fields).toString(),
      }),
    )
  }

  it('needs the form token bound to the panel session, plus the Origin rule; renders refusals as pages', async () => {
    const { app, signedIn, api } = await panel()
    const cookie = await signedIn()
    const form = await (await app.request('/admin/app/form', { headers: { cookie } })).text()
    const token = /value="([^"]+)"/.exec(form)?.[1] ?? ''
    expect(token.length).toBeGreaterThan(20)

    const ok = await post(app, cookie, { _csrf: token, what: 'x' }, { origin: PANEL })
    expect(ok.status).toBe(200)
    expect(await ok.text()).toBe('done by root@example.test (x)')
    // SECURITY: same-origin headers are no proof for a form: its token is required.
    const noToken = await post(app, cookie, { what: 'x' }, { 'sec-fetch-site': 'same-origin' })
    expect(noToken.status).toBe(403)
    expect(await noToken.text()).toContain('csrf_failed')
    const { createCSRFToken } = await import('../../src/core/csrf.js')
    const { createKeyring } = await import('../../src/core/keyring.js')
    const sameKeys = createKeyring(Buffer.alloc(32, 9).toString('base64url') + 'p4N!')
    const apiToken = createCSRFToken(sameKeys, api)
    expect((await post(app, cookie, { _csrf: apiToken, what: 'x' })).status).toBe(403)
    // The Origin rule holds even with a valid token.
    const cross = await post(app, cookie, { _csrf: token }, { origin: 'https://evil.example' })
    expect(cross.status).toBe(403)
    // No session, or the panel cookie sent twice: anonymous, sent to the sign-in page.
    const twice = await post(app, `${cookie}; ${cookie}`, { _csrf: token })
    expect(twice.status).toBe(303)
    expect(twice.headers.get('location')).toBe('/admin/login')
    expect((await app.request('/admin/app/form')).status).toBe(303)
  })
})
