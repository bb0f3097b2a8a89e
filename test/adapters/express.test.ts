import express from 'express'
import request from 'supertest'
import { describe, expect, it } from 'vitest'
import {
  csrfToken,
  currentUser,
  signIn,
  signOut,
  tessera,
  tesseraErrors,
} from '../../src/adapters/express.js'
import type { RequestAuthOptions } from '../../src/core/request-auth.js'
import { describeAdapterScenarios, type BuildApp, type Reply } from './scenarios.js'

/** The scenario app on Express, through the adapter only. */
function buildExpressApp(options: RequestAuthOptions): express.Express {
  const auth = tessera(options)
  const app = express()
  app.use(auth.middleware)
  app.use(express.json())
  app.post('/login', async (req, res) => {
    const body = req.body as { userId: string; permissions?: string[] }
    const session = await signIn(req, res, body.userId, {
      data: body.permissions === undefined ? {} : { permissions: body.permissions },
    })
    res.json({ id: session.id })
  })
  app.post('/logout', async (req, res) => {
    await signOut(req, res)
    res.status(204).end()
  })
  app.get('/me', auth.requireAuth, (req, res) => {
    const user = currentUser(req)
    res.json({ user: { id: user?.id, permissions: user?.permissions, via: user?.via } })
  })
  app.get('/admin', auth.requirePermission('admin.read'), (_req, res) => {
    res.json({ ok: true })
  })
  app.post('/echo', (req, res) => {
    res.json({ user: currentUser(req)?.id ?? null })
  })
  app.get('/csrf', (req, res) => {
    res.json({ token: csrfToken(req) })
  })
  app.use(tesseraErrors)
  return app
}

function toReply(response: request.Response): Reply {
  const raw = response.headers['set-cookie'] as string[] | string | undefined
  const setCookies = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]
  const text = response.text
  let body: unknown = null
  if (typeof text === 'string' && text.length > 0) {
    try {
      body = JSON.parse(text)
    } catch {
      body = null
    }
  }
  return {
    status: response.status,
    body,
    setCookies,
    headers: response.headers,
  }
}

const build: BuildApp = (options) => {
  const app = buildExpressApp(options)
  const agent = request(app)
  return Promise.resolve({
    async send(method, path, { headers = {}, json } = {}) {
      let test = agent[method.toLowerCase() as 'get' | 'post'](path)
      for (const [name, value] of Object.entries(headers)) test = test.set(name, value)
      if (json !== undefined) test = test.send(json as object)
      return toReply(await test)
    },
    close: () => Promise.resolve(),
  })
}

describeAdapterScenarios('Express 5', build)

describe('Express adapter setup', () => {
  it('fails at setup on a bad permission name, not on the first request', async () => {
    const { createSessionManager } = await import('../../src/core/session-manager.js')
    const { createMemoryStore } = await import('../../src/stores/memory.js')
    const { createKeyring } = await import('../../src/core/keyring.js')
    const keyring = createKeyring('k'.repeat(10) + 'Q7x!pZ2#mN9$vB4%tR6^wY8&')
    const auth = tessera({
      sessions: createSessionManager(createMemoryStore(), keyring),
      trustedOrigins: ['https://a.example'],
    })
    expect(() => auth.requirePermission('Admin')).toThrow(/app\.action/)
    expect(() =>
      tessera({
        sessions: createSessionManager(createMemoryStore(), keyring),
        trustedOrigins: ['*'],
      }),
    ).toThrow(/origin/)
  })
})
