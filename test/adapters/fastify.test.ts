import Fastify, { type FastifyInstance } from 'fastify'
import { describe, expect, it } from 'vitest'
import {
  csrfToken,
  currentUser,
  signIn,
  signOut,
  tesseraPlugin,
} from '../../src/adapters/fastify.js'
import { createKeyring } from '../../src/core/keyring.js'
import type { RequestAuthOptions } from '../../src/core/request-auth.js'
import { createSessionManager } from '../../src/core/session-manager.js'
import { createMemoryStore } from '../../src/stores/memory.js'
import {
  cookieOf,
  describeAdapterScenarios,
  signInOptions,
  SITE,
  type BuildApp,
  type LoginBody,
  type Reply,
} from './scenarios.js'

/** The scenario app on Fastify, through the plugin only. */
async function buildFastifyApp(options: RequestAuthOptions): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(tesseraPlugin, options)
  app.post('/login', async (request) => {
    const body = request.body as LoginBody
    const session = await signIn(request, body.userId, signInOptions(body))
    return { id: session.id }
  })
  app.post('/logout', async (request, reply) => {
    await signOut(request)
    return reply.code(204).send()
  })
  app.get('/me', { preHandler: app.tessera.requireAuth }, (request) => {
    const user = currentUser(request)
    return { user: { id: user?.id, permissions: user?.permissions, via: user?.via } }
  })
  app.get('/admin', { preHandler: app.tessera.requirePermission('admin.read') }, () => ({
    ok: true,
  }))
  app.post('/echo', (request) => ({ user: currentUser(request)?.id ?? null }))
  app.get('/csrf', (request) => ({ token: csrfToken(request) }))
  app.get('/fresh', { preHandler: app.tessera.requireFresh(600) }, () => ({ ok: true }))
  app.get('/aal2', { preHandler: app.tessera.requireAAL(2) }, () => ({ ok: true }))
  await app.ready()
  return app
}

const build: BuildApp = async (options) => {
  const app = await buildFastifyApp(options)
  return {
    async send(method, path, { headers = {}, json } = {}) {
      const response = await app.inject({
        method: method as 'GET' | 'POST',
        url: path,
        headers: json === undefined ? headers : { ...headers, 'content-type': 'application/json' },
        ...(json === undefined ? {} : { payload: JSON.stringify(json) }),
      })
      const raw = response.headers['set-cookie']
      const setCookies = raw === undefined ? [] : Array.isArray(raw) ? raw : [String(raw)]
      let body: unknown = null
      try {
        body = response.body.length > 0 ? JSON.parse(response.body) : null
      } catch {
        body = null
      }
      return {
        status: response.statusCode,
        body,
        setCookies,
        headers: response.headers as Reply['headers'],
      }
    },
    close: () => app.close(),
  }
}

describeAdapterScenarios('Fastify 5', build)

describe('Fastify adapter over a real socket', () => {
  it('signs in, reads /me and refuses a cross-site post through a listening server', async () => {
    const keyring = createKeyring(randomSecret())
    const sessions = createSessionManager(createMemoryStore(), keyring)
    const app = await buildFastifyApp({ sessions, keyring, trustedOrigins: [SITE] })
    const address = await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      const login = await fetch(`${address}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' },
        body: JSON.stringify({ userId: 'socket-user' }),
      })
      expect(login.status).toBe(200)
      const cookie = cookieOf(login.headers.getSetCookie(), sessions.cookieName) ?? ''
      const me = await fetch(`${address}/me`, { headers: { cookie } })
      expect(me.status).toBe(200)
      expect(await me.json()).toMatchObject({ user: { id: 'socket-user' } })
      const cross = await fetch(`${address}/echo`, {
        method: 'POST',
        headers: { cookie, origin: 'https://evil.example' },
      })
      expect(cross.status).toBe(403)
      expect(await cross.json()).toMatchObject({ error: { code: 'csrf_failed' } })
    } finally {
      await app.close()
    }
  })
})

function randomSecret(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url')
}
