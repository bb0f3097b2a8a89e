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
