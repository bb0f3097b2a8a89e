import { createRequire } from 'node:module'
import express, {
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
} from 'express'
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
import {
  describeAdapterScenarios,
  signInOptions,
  type BuildApp,
  type LoginBody,
  type Reply,
} from './scenarios.js'

// Express 4 (installed as the alias `express4`) has no types of its own; its API is the subset
// of Express 5's that these apps use.
const express4 = createRequire(import.meta.url)('express4') as typeof express

/** Express 4 does not catch a rejected handler: pass the rejection to next(), as Express 4 apps do. */
function wrap(handler: (req: Request, res: Response) => Promise<void>): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    handler(req, res).catch(next)
  }
}

/** The scenario app on Express, through the adapter only. */
function buildExpressApp(factory: typeof express, options: RequestAuthOptions): express.Express {
  const auth = tessera(options)
  const app = factory()
  app.use(auth.middleware)
  app.use(factory.json())
  app.post(
    '/login',
    wrap(async (req, res) => {
      const session = await signIn(
        req,
        res,
        (req.body as LoginBody).userId,
        signInOptions(req.body as LoginBody),
      )
      res.json({ id: session.id })
    }),
  )
  app.post(
    '/logout',
    wrap(async (req, res) => {
      await signOut(req, res)
      res.status(204).end()
    }),
  )
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
  app.get('/fresh', auth.requireFresh(600), (_req, res) => {
    res.json({ ok: true })
  })
  app.get('/aal2', auth.requireAAL(2), (_req, res) => {
    res.json({ ok: true })
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

const builder =
  (factory: typeof express): BuildApp =>
  (options) => {
    const app = buildExpressApp(factory, options)
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

describeAdapterScenarios('Express 5', builder(express))
describeAdapterScenarios('Express 4', builder(express4))

it('runs the Express 4 suite on Express 4 indeed', () => {
  const version = (createRequire(import.meta.url)('express4/package.json') as { version: string })
    .version
  expect(version.startsWith('4.')).toBe(true)
})

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
