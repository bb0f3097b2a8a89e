import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { serve } from '@hono/node-server'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { currentUser, tessera } from '../../src/adapters/express.js'
import { createTesseraAPI, type TesseraAPI } from '../../src/server/mount.js'
import { REDIS_URL, uniqueName } from '../helpers/services.js'
import { dropRedisPrefix } from './api-harness.js'
import { captureLogger, type CapturedLogger } from './helpers.js'

// The server's API mounted in an app of each framework under a prefix, over real HTTP: signup,
// login, the session, the app's own /me over the same sessions, the CSRF token and a
// CSRF-protected logout, the prefix respected (nothing answered outside it, the app's own routes
// untouched), the cookies' Path, and the links the services make (reset mail, admin panel).

const PASSWORD = 'correct horse battery staple'
const PUBLIC_URL = 'http://app.example.test'
const PREFIX = '/api/auth'

interface Mounted {
  url: string
  api: TesseraAPI
  log: CapturedLogger
  outbox: string
  stop(): Promise<void>
}

function listening(server: Server): Promise<string> {
  return new Promise((resolve) => {
    const done = (): void => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    if (server.listening) done()
    else server.once('listening', done)
  })
}

/** A mounted API's options for one test app: its own SQLite file, mail outbox and log. */
function apiFor(
  cwd: string,
  extra: { env?: Record<string, string>; admin?: boolean } = {},
): { api: TesseraAPI; log: CapturedLogger; outbox: string } {
  const log = captureLogger()
  const outbox = join(cwd, 'outbox')
  const api = createTesseraAPI({
    basePath: PREFIX,
    database: `sqlite:${join(cwd, 'accounts.db')}`,
    publicUrl: PUBLIC_URL,
    env: { NODE_ENV: 'test', TESSERA_MAILER: `file:${outbox}`, ...extra.env },
    cwd,
    logger: log.logger,
    ...(extra.admin === undefined ? {} : { admin: extra.admin }),
  })
  return { api, log, outbox }
}

async function expressApp(cwd: string): Promise<Mounted> {
  const { api, log, outbox } = apiFor(cwd, { admin: true })
  const services = await api.ready()
  const auth = tessera(services.authOptions)
  const app = express()
  // A body parser before the mount: the API reads the body the parser already read.
  app.use(express.json())
  app.use(api.node)
  app.use(auth.middleware)
  app.get('/me', auth.requireAuth, (req, res) => {
    res.json({ email: (currentUser(req)?.record as { email?: string } | undefined)?.email })
  })
  app.get('/hello', (_req, res) => res.json({ hello: 'express' }))
  const server = app.listen(0, '127.0.0.1')
  const url = await listening(server)
  return {
    url,
    api,
    log,
    outbox,
    stop: async () => {
      await new Promise((resolve) => server.close(resolve))
      await api.close()
    },
  }
}

async function fastifyApp(cwd: string): Promise<Mounted> {
  const { api, log, outbox } = apiFor(cwd)
  const app = Fastify()
  await app.register(api.fastify)
  app.get('/me', async (request, reply) => {
    const me = await api.getSession(request.raw)
    if (me === null) return reply.code(401).send({ error: { code: 'unauthenticated' } })
    return { email: me.user.email }
  })
  app.get('/hello', () => ({ hello: 'fastify' }))
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    url,
    api,
    log,
    outbox,
    stop: async () => {
      await app.close()
      await api.close()
    },
  }
}

async function honoApp(cwd: string, env: Record<string, string>): Promise<Mounted> {
  const { api, log, outbox } = apiFor(cwd, { env })
  const app = new Hono()
  app.all(`${PREFIX}/*`, (c) => api.fetch(c.req.raw, c.env))
  app.get('/me', async (c) => {
    const me = await api.getSession(c.req.raw)
    return me === null
      ? c.json({ error: { code: 'unauthenticated' } }, 401)
      : c.json({ email: me.user.email })
  })
  app.get('/hello', (c) => c.json({ hello: 'hono' }))
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server
  const url = await listening(server)
  return {
    url,
    api,
    log,
    outbox,
    stop: async () => {
      await new Promise((resolve) => server.close(resolve))
      await api.close()
    },
  }
}

/** The first `name=value` of a response's Set-Cookie lines for `name`, and the line. */
function cookieOf(response: Response, name: string): { pair: string; line: string } {
  const line = response.headers.getSetCookie().find((entry) => entry.startsWith(`${name}=`))
  if (line === undefined)
    throw new Error(`no ${name} cookie in ${response.headers.getSetCookie().join(' | ')}`)
  return { pair: line.split(';')[0] ?? '', line }
}

const sameOrigin = { 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' }

/** The walk every framework must pass. */
function walk(name: string, start: (cwd: string) => Promise<Mounted>): void {
  describe(`the API mounted in ${name} under ${PREFIX}`, () => {
    let cwd = ''
    let mounted: Mounted
    beforeAll(async () => {
      cwd = mkdtempSync(join(tmpdir(), 'tessera-mount-'))
      mounted = await start(cwd)
    }, 60_000)
    afterAll(async () => {
      await mounted?.stop()
      rmSync(cwd, { recursive: true, force: true })
    })

    it('signs up, signs in, shares the session with the app, and logs out with CSRF', async () => {
      const { url } = mounted
      const email = `${uniqueName('ada')}@example.com`
      const signup = await fetch(`${url}${PREFIX}/auth/signup`, {
        method: 'POST',
        headers: sameOrigin,
        body: JSON.stringify({ email, password: PASSWORD }),
      })
      expect(signup.status).toBe(201)
      expect(((await signup.json()) as { user: { email: string } }).user.email).toBe(email)
      // The session cookie is the app's: Path=/, so the app's own routes see it.
      expect(cookieOf(signup, 'tessera_session').line).toMatch(/; Path=\/(;|$)/)

      const login = await fetch(`${url}${PREFIX}/auth/login`, {
        method: 'POST',
        headers: sameOrigin,
        body: JSON.stringify({ email, password: PASSWORD }),
      })
      expect(login.status).toBe(200)
      const { pair: cookie, line } = cookieOf(login, 'tessera_session')
      expect(line).toMatch(/; Path=\/(;|$)/)
      expect(line).toMatch(/HttpOnly/i)

      const session = await fetch(`${url}${PREFIX}/auth/session`, { headers: { cookie } })
      expect(session.status).toBe(200)
      expect(((await session.json()) as { user: { email: string } }).user.email).toBe(email)

      // The app's own route, over the same sessions and users.
      const me = await fetch(`${url}/me`, { headers: { cookie } })
      expect(me.status).toBe(200)
      expect(await me.json()).toEqual({ email })

      const csrf = await fetch(`${url}${PREFIX}/auth/csrf`, { headers: { cookie } })
      expect(csrf.status).toBe(200)
      const { token } = (await csrf.json()) as { token: string }

      // SECURITY: a cross-site logout is refused and leaves the session alive.
      const crossSite = await fetch(`${url}${PREFIX}/auth/logout`, {
        method: 'POST',
        headers: { cookie, origin: 'https://evil.example' },
      })
      expect(crossSite.status).toBe(403)
      expect(((await crossSite.json()) as { error: { code: string } }).error.code).toBe(
        'csrf_failed',
      )
      expect((await fetch(`${url}/me`, { headers: { cookie } })).status).toBe(200)

      const logout = await fetch(`${url}${PREFIX}/auth/logout`, {
        method: 'POST',
        headers: { cookie, 'x-csrf-token': token },
      })
      expect(logout.status).toBe(204)
      expect(cookieOf(logout, 'tessera_session').line).toMatch(/; Path=\/(;|$)/)
      expect((await fetch(`${url}${PREFIX}/auth/session`, { headers: { cookie } })).status).toBe(
        401,
      )
      expect((await fetch(`${url}/me`, { headers: { cookie } })).status).toBe(401)
    })

    it('answers only under its prefix and leaves the app its own routes', async () => {
      const { url } = mounted
      const hello = (await (await fetch(`${url}/hello`)).json()) as { hello: string }
      expect(typeof hello.hello).toBe('string')
      // The unprefixed path is not the API's.
      const bare = await fetch(`${url}/auth/login`, {
        method: 'POST',
        headers: sameOrigin,
        body: JSON.stringify({ email: 'a@example.com', password: PASSWORD }),
      })
      expect(bare.status).toBe(404)
      const unknown = await fetch(`${url}${PREFIX}/auth/nothing-here`)
      expect(unknown.status).toBe(404)
      expect(await unknown.json()).toMatchObject({ error: { code: 'not_found' } })
      // The operational routes are the app's business, not the mount's.
      expect((await fetch(`${url}${PREFIX}/metrics`)).status).toBe(404)
      // Bad input is a 4xx in the API's shape, never a 500.
      const bad = await fetch(`${url}${PREFIX}/auth/login`, {
        method: 'POST',
        headers: sameOrigin,
        body: '{not json',
      })
      expect(bad.status).toBe(400)
    })

    it('mails a reset link under the prefix, and serves the page there', async () => {
      const { url, outbox } = mounted
      const email = `${uniqueName('reset')}@example.com`
      await fetch(`${url}${PREFIX}/auth/signup`, {
        method: 'POST',
        headers: sameOrigin,
        body: JSON.stringify({ email, password: PASSWORD }),
      })
      const asked = await fetch(`${url}${PREFIX}/auth/password-reset/request`, {
        method: 'POST',
        headers: sameOrigin,
        body: JSON.stringify({ email }),
      })
      expect(asked.status).toBe(202)
      await mounted.api.ready().then((services) => services.auth.idle())
      const mails = readdirSync(outbox).map((file) => readFileSync(join(outbox, file), 'utf8'))
      const mail = mails.find((text) => text.includes(email)) ?? ''
      const link = /http:\/\/app\.example\.test(\/[^\s"<]*?reset\?token=)([A-Za-z0-9_-]+)/.exec(
        mail.replace(/=\r?\n/g, '').replace(/=3D/g, '='),
      )
      expect(link?.[1]).toBe(`${PREFIX}/reset?token=`)
      const page = await fetch(`${url}${PREFIX}/reset?token=${link?.[2] ?? ''}`)
      expect(page.status).toBe(200)
      expect(await page.text()).toContain('<form')
    })
  })
}

walk('Express (app.use(api.node), after express.json())', expressApp)
walk('Fastify (app.register(api.fastify))', fastifyApp)
walk('Hono (app.all(prefix/*, api.fetch)), sessions in Redis', async (cwd) => {
  const prefix = `${uniqueName('tmount')}:`
  const mounted = await honoApp(
    cwd,
    REDIS_URL === undefined ? {} : { REDIS_URL, TESSERA_REDIS_PREFIX: prefix },
  )
  return {
    ...mounted,
    stop: async () => {
      await mounted.stop()
      if (REDIS_URL !== undefined) await dropRedisPrefix(REDIS_URL, prefix)
    },
  }
})

describe('the admin panel mounted with the API', () => {
  let cwd = ''
  let mounted: Mounted
  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'tessera-mount-admin-'))
    mounted = await expressApp(cwd)
  }, 60_000)
  afterAll(async () => {
    await mounted?.stop()
    rmSync(cwd, { recursive: true, force: true })
  })

  it('is under the prefix: setup link, pages, and a cookie whose Path is the panel', async () => {
    const line = mounted.log.lines().find((entry) => typeof entry.setupUrl === 'string')
    const setupUrl = new URL(String(line?.setupUrl))
    expect(setupUrl.origin).toBe(PUBLIC_URL)
    expect(setupUrl.pathname).toBe(`${PREFIX}/admin/setup`)
    const token = setupUrl.searchParams.get('token') ?? ''
    const setup = await fetch(`${mounted.url}${setupUrl.pathname}${setupUrl.search}`)
    expect(setup.status).toBe(200)
    const page = await setup.text()
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page)?.[1] ?? ''
    const created = await fetch(`${mounted.url}${PREFIX}/admin/setup`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'sec-fetch-site': 'same-origin',
      },
      body: new URLSearchParams({
        _csrf: csrf,
        token,
        email: 'first@example.com',
        password: PASSWORD,
        password2: PASSWORD,
      }).toString(),
    })
    expect(created.status).toBe(303)
    expect(created.headers.get('location')).toBe(`${PREFIX}/admin`)
    const [cookieLine = ''] = created.headers.getSetCookie()
    // SECURITY: the panel's cookie goes only to the panel's paths, under the prefix.
    expect(cookieLine).toContain(`; Path=${PREFIX}/admin`)
    const dashboard = await fetch(`${mounted.url}${PREFIX}/admin`, {
      headers: { cookie: cookieLine.split(';')[0] ?? '' },
    })
    expect(dashboard.status).toBe(200)
    const html = await dashboard.text()
    expect(html).toContain('<h1>Dashboard</h1>')
    expect(html).toContain(`href="${PREFIX}/admin/users"`)

    const anonymous = await fetch(`${mounted.url}${PREFIX}/admin`, { redirect: 'manual' })
    expect(anonymous.status).toBe(303)
    expect(anonymous.headers.get('location')).toMatch(new RegExp(`^${PREFIX}/admin/login`))
    await anonymous.body?.cancel()
    const slash = await fetch(`${mounted.url}${PREFIX}/admin/`, { redirect: 'manual' })
    expect(slash.headers.get('location')).toBe(`${PREFIX}/admin`)
    await slash.body?.cancel()
  })
})

describe('every route of the server, under the prefix', () => {
  // docs/api.md lists exactly the routes the server registers (test/server/api-reference.test.ts),
  // so a route another module adds to buildServices shows up here without anything else to do.
  it('answers every documented route under the prefix, and none without it', async () => {
    const reference = readFileSync(join(import.meta.dirname, '../../docs/api.md'), 'utf8')
    const routes = [
      ...new Set(
        [...reference.matchAll(/^(?:### |\| )`(GET|POST|PUT|PATCH|DELETE) (\/[^`\s]*)`/gm)].map(
          (match) => `${match[1]} ${match[2]}`,
        ),
      ),
    ]
    expect(routes.length).toBeGreaterThan(15)
    const cwd = mkdtempSync(join(tmpdir(), 'tessera-mount-routes-'))
    const { api } = apiFor(cwd, { admin: true })
    const operational = new Set(['GET /healthz', 'GET /readyz', 'GET /metrics'])
    const unmatched: string[] = []
    try {
      for (const route of routes) {
        const [method = 'GET', pattern = '/'] = route.split(' ')
        const path = pattern.replace(/:[A-Za-z]+(\{[^}]*\})?/g, 'x')
        const ask = (at: string): Promise<Response> =>
          api.fetch(
            new Request(`${PUBLIC_URL}${at}`, {
              method,
              redirect: 'manual',
              headers: { 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' },
              ...(method === 'GET' ? {} : { body: '{}' }),
            }),
          )
        const answer = await ask(`${PREFIX}${path}`)
        const text = await answer.text()
        const noRoute = answer.status === 404 && text.includes('no such route')
        // The operational routes are the app's own unless asked for (operationalRoutes).
        if (noRoute !== operational.has(route)) unmatched.push(`${route} → ${answer.status}`)
        const bare = await ask(path)
        if (bare.status !== 404) unmatched.push(`${route} without the prefix → ${bare.status}`)
        await bare.body?.cancel()
      }
    } finally {
      await api.close()
      rmSync(cwd, { recursive: true, force: true })
    }
    expect(unmatched).toEqual([])
  })
})

describe('createTesseraAPI options', () => {
  it('works under an Express mount path too (it reads originalUrl)', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'tessera-mount-path-'))
    const { api } = apiFor(cwd)
    const app = express()
    app.use(PREFIX, api.node)
    const server = app.listen(0, '127.0.0.1')
    const url = await listening(server)
    try {
      const signup = await fetch(`${url}${PREFIX}/auth/signup`, {
        method: 'POST',
        headers: sameOrigin,
        body: JSON.stringify({ email: 'path@example.com', password: PASSWORD }),
      })
      expect(signup.status).toBe(201)
      const { pair: cookie } = cookieOf(signup, 'tessera_session')
      const session = await fetch(`${url}${PREFIX}/auth/session`, { headers: { cookie } })
      expect(session.status).toBe(200)
    } finally {
      await new Promise((resolve) => server.close(resolve))
      await api.close()
      rmSync(cwd, { recursive: true, force: true })
    }
  })

  it('reads the session from Headers-like objects (Next.js headers()) and Node headers', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'tessera-mount-headers-'))
    const { api } = apiFor(cwd)
    try {
      const signup = await api.fetch(
        new Request(`${PUBLIC_URL}${PREFIX}/auth/signup`, {
          method: 'POST',
          headers: sameOrigin,
          body: JSON.stringify({ email: 'headers@example.com', password: PASSWORD }),
        }),
      )
      const { pair: cookie } = cookieOf(signup, 'tessera_session')
      // Like Next's ReadonlyHeaders: answers get(), is no instance of Headers, has no own keys.
      const nextLike = { get: (name: string) => (name === 'cookie' ? cookie : null) }
      expect((await api.getSession({ headers: nextLike }))?.user.email).toBe('headers@example.com')
      expect((await api.getSession({ headers: { cookie } }))?.user.email).toBe(
        'headers@example.com',
      )
      expect(await api.getSession({ headers: new Headers() })).toBeNull()
    } finally {
      await api.close()
      rmSync(cwd, { recursive: true, force: true })
    }
  })

  it('refuses a base path that is not a path', () => {
    expect(() => createTesseraAPI({ basePath: 'api' })).toThrow(/basePath must be a path/)
    expect(() => createTesseraAPI({ basePath: '/a b' })).toThrow(/basePath must be a path/)
  })

  it('answers a request with a clean 500 when the configuration is bad, and says why in the log', async () => {
    const log = captureLogger()
    const api = createTesseraAPI({
      basePath: PREFIX,
      env: { NODE_ENV: 'production' },
      database: 'sqlite::memory:',
      logger: log.logger,
      cwd: tmpdir(),
    })
    const response = await api.fetch(new Request(`${PUBLIC_URL}${PREFIX}/auth/session`))
    expect(response.status).toBe(500)
    expect(await response.json()).toEqual({
      error: { code: 'internal_error', message: 'internal server error' },
    })
    expect(log.text()).toContain('TESSERA_SECRET is not set')
    await expect(api.ready()).rejects.toThrow(/TESSERA_SECRET is not set/)
    await api.close()
  })
})
