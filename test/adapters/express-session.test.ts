/* eslint-disable @typescript-eslint/no-unsafe-member-access -- supertest response bodies are `any` */
import { createHmac } from 'node:crypto'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { RedisStore } from 'connect-redis'
import express from 'express'
import type { Request, RequestHandler, Response } from 'express'
import expressSession from 'express-session'
import { createClient } from 'redis'
import request from 'supertest'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import session, {
  Cookie,
  MemoryStore,
  Session,
  Store,
  type SessionOptions,
} from '../../src/adapters/express-session/index.js'
import { secretPolicyFromEnv } from '../../src/adapters/express-session/options.js'
import { createMemoryStore } from '../../src/stores/memory.js'
import { createRedisStore } from '../../src/stores/redis.js'
import {
  cookieParts,
  secret,
  sessionCookie,
  setCookieLines as setCookies,
  sha256,
} from '../helpers/express-session.js'
import { describeWithService, uniqueName } from '../helpers/services.js'

// The express-session behaviours below follow its README; each case builds its own app.

type Sess = Record<string, unknown> & {
  id: string
  cookie: Cookie
  save(cb?: (e?: unknown) => void): void
  regenerate(cb: (e?: unknown) => void): void
  destroy(cb?: (e?: unknown) => void): void
  reload(cb: (e?: unknown) => void): void
  touch(): void
}
type SessReq = Omit<Request, 'session' | 'sessionID'> & {
  session?: Sess | null
  sessionID?: string
}

/** An Express app with the drop-in and a handler. */
function app(
  options: Partial<SessionOptions>,
  handler: (req: SessReq, res: Response) => void | Promise<void>,
  middleware: RequestHandler = session({
    secret: secret(),
    resave: false,
    saveUninitialized: false,
    ...options,
  }),
): express.Express {
  const server = express()
  server.use(middleware)
  server.use((req, res, next) => {
    Promise.resolve(handler(req as unknown as SessReq, res)).catch(next)
  })
  return server
}

/** A connect-style MemoryStore that counts calls. */
class CountingStore extends MemoryStore {
  calls = { get: 0, set: 0, touch: 0, destroy: 0 }
  override get(...args: Parameters<MemoryStore['get']>): void {
    this.calls.get++
    super.get(...args)
  }
  override set(...args: Parameters<MemoryStore['set']>): void {
    this.calls.set++
    super.set(...args)
  }
  override touch(...args: Parameters<MemoryStore['touch']>): void {
    this.calls.touch++
    super.touch(...args)
  }
  override destroy(...args: Parameters<MemoryStore['destroy']>): void {
    this.calls.destroy++
    super.destroy(...args)
  }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('express-session drop-in: options and exports', () => {
  it('exports the same names as express-session, also on the default export', () => {
    expect(typeof session).toBe('function')
    const attached = session as unknown as Record<string, unknown>
    expect(attached.Store).toBe(Store)
    expect(attached.MemoryStore).toBe(MemoryStore)
    expect(attached.Session).toBe(Session)
    expect(attached.Cookie).toBe(Cookie)
    expect(new MemoryStore()).toBeInstanceOf(Store)
  })

  it('refuses a weak secret under the strict policy, accepts it with a warning under weak', () => {
    expect(() => session({ secret: 'keyboard cat', secretPolicy: 'strict' })).toThrow(
      /option "secret": the secret is a published sample secret.*secretPolicy "weak"/,
    )
    expect(() => session({ secret: [secret(), 'short'], secretPolicy: 'strict' })).toThrow(
      /fallback secret #1/,
    )
    expect(() => session({ secret: Buffer.alloc(16, 7), secretPolicy: 'strict' })).toThrow(
      /the secret is 16 bytes long/,
    )
    expect(() => session({ secret: [], secretPolicy: 'strict' })).toThrow(
      /secret option array must contain one or more strings/,
    )
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    expect(typeof session({ secret: 'keyboard cat', secretPolicy: 'weak' })).toBe('function')
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('acceptable only in development'))
    warn.mockRestore()
  })

  it('takes the default policy from NODE_ENV, at the edge only', () => {
    expect(secretPolicyFromEnv('production')).toBe('strict')
    expect(secretPolicyFromEnv('')).toBe('strict')
    expect(secretPolicyFromEnv('development')).toBe('weak')
    expect(secretPolicyFromEnv('test')).toBe('weak')
  })

  it('refuses bad options when built', () => {
    expect(() => session({ secret: secret(), unset: 'drop' as 'keep' })).toThrow(/unset/)
    expect(() => session({ secret: secret(), store: {} as MemoryStore })).toThrow(/store must be/)
    expect(() =>
      session({ secret: secret(), store: createMemoryStore(), legacyIds: true }),
    ).toThrow(/legacyIds/)
  })
})

describe('express-session drop-in: behaviour of express-session (connect MemoryStore)', () => {
  it('saveUninitialized: false stores and sends nothing until the session is modified', async () => {
    const store = new CountingStore()
    const server = app({ store }, (req, res) => {
      if (req.query.set !== undefined) req.session!.user = 'ann'
      res.send('ok')
    })
    const untouched = await request(server).get('/')
    expect(sessionCookie(untouched)).toBeUndefined()
    expect(store.calls.set).toBe(0)
    const modified = await request(server).get('/?set')
    expect(sessionCookie(modified)).toBeDefined()
    expect(store.calls.set).toBe(1)
  })

  it('saveUninitialized: true stores and sends a new session at once', async () => {
    const store = new CountingStore()
    const server = app({ store, saveUninitialized: true }, (_req, res) => {
      res.send('ok')
    })
    const res = await request(server).get('/')
    expect(sessionCookie(res)).toBeDefined()
    expect(Object.keys(store.sessions)).toHaveLength(1)
  })

  it('keeps data across requests with the cookie, and req.sessionID is session.id', async () => {
    const server = app({}, (req, res) => {
      req.session!.views = ((req.session!.views as number | undefined) ?? 0) + 1
      res.json({ views: req.session!.views, same: req.sessionID === req.session!.id })
    })
    const first = await request(server).get('/')
    const cookie = sessionCookie(first)!
    const second = await request(server).get('/').set('Cookie', cookie)
    expect(second.body).toEqual({ views: 2, same: true })
  })

  it('SECURITY: the store key is req.sessionID, SHA-256 of the cookie token, never the token', async () => {
    const store = new MemoryStore()
    let sid = ''
    const server = app({ store }, (req, res) => {
      req.session!.user = 'ann'
      sid = req.sessionID!
      res.send('ok')
    })
    const parts = cookieParts(sessionCookie(await request(server).get('/'))!)
    expect(parts.sid).toBe(sid)
    expect(sid).toBe(sha256(parts.token))
    expect(Object.keys(store.sessions)).toEqual([sid])
    expect(JSON.stringify(store.sessions)).not.toContain(parts.token)
  })

  it('resave: false writes an unmodified session never; resave: true on every request', async () => {
    for (const resave of [false, true]) {
      const store = new CountingStore()
      const server = app({ store, resave }, (req, res) => {
        if (req.query.set !== undefined) req.session!.user = 'ann'
        res.send('ok')
      })
      const cookie = sessionCookie(await request(server).get('/?set'))!
      await request(server).get('/').set('Cookie', cookie)
      await request(server).get('/').set('Cookie', cookie)
      expect(store.calls.set).toBe(resave ? 3 : 1)
      // express-session touches the store when it does not save
      expect(store.calls.touch).toBe(resave ? 0 : 2)
    }
  })

  it('rolling: true sends the cookie on every response; false only when it changes', async () => {
    for (const rolling of [false, true]) {
      const server = app({ rolling, cookie: { maxAge: 60_000 } }, (req, res) => {
        if (req.query.set !== undefined) req.session!.user = 'ann'
        res.send('ok')
      })
      const cookie = sessionCookie(await request(server).get('/?set'))!
      const again = await request(server).get('/').set('Cookie', cookie)
      expect(sessionCookie(again) !== undefined).toBe(rolling)
    }
  })

  it('cookie.maxAge sets Expires and counts down; a request can change it', async () => {
    const server = app({ cookie: { maxAge: 60_000 } }, (req, res) => {
      req.session!.user = 'ann'
      if (req.query.remember !== undefined) req.session!.cookie.maxAge = 30 * 86_400_000
      res.json({ maxAge: req.session!.cookie.maxAge, original: req.session!.cookie.originalMaxAge })
    })
    const res = await request(server).get('/')
    const line = setCookies(res)[0]!
    expect(line).toMatch(/; Expires=/)
    expect(line).toMatch(/; HttpOnly/)
    const when = Date.parse(/Expires=([^;]+)/.exec(line)![1]!)
    expect(when - Date.now()).toBeGreaterThan(50_000)
    expect(when - Date.now()).toBeLessThanOrEqual(61_000)
    expect(res.body.original).toBe(60_000)
    const remembered = await request(server).get('/?remember')
    const later = Date.parse(/Expires=([^;]+)/.exec(setCookies(remembered)[0]!)![1]!)
    expect(later - Date.now()).toBeGreaterThan(29 * 86_400_000)
  })

  it('a cookie with expires: a browser-session cookie without maxAge has no Expires', async () => {
    const server = app({}, (req, res) => {
      req.session!.user = 'ann'
      res.send('ok')
    })
    const line = setCookies(await request(server).get('/'))[0]!
    expect(line).not.toMatch(/Expires=/)
    expect(line).toMatch(/^connect\.sid=[^;]+; Path=\/; HttpOnly; SameSite=Lax$/)
  })

  it('regenerate gives a new, empty session under a new id and removes the old one', async () => {
    const store = new MemoryStore()
    const server = app({ store }, (req, res) => {
      if (req.query.login !== undefined) {
        const before = req.sessionID
        req.session!.regenerate((error) => {
          if (error) throw error as Error
          req.session!.user = 'ann'
          res.json({ before, after: req.sessionID, kept: req.session!.cart ?? null })
        })
        return
      }
      req.session!.cart = 'apples'
      res.json({ id: req.sessionID, user: req.session!.user ?? null })
    })
    const first = await request(server).get('/')
    const login = await request(server).get('/?login').set('Cookie', sessionCookie(first)!)
    expect(login.body.before).toBe(first.body.id)
    expect(login.body.after).not.toBe(first.body.id)
    expect(login.body.kept).toBeNull()
    expect(Object.keys(store.sessions)).toEqual([login.body.after])
    const old = await request(server).get('/').set('Cookie', sessionCookie(first)!)
    expect(old.body.user).toBeNull()
    expect(old.body.id).not.toBe(first.body.id)
  })

  it('destroy removes the session; the old cookie then starts a new one', async () => {
    const store = new MemoryStore()
    const server = app({ store }, (req, res) => {
      if (req.query.logout !== undefined) {
        req.session!.destroy((error) => {
          if (error) throw error as Error
          res.json({ session: req.session ?? null })
        })
        return
      }
      req.session!.user = 'ann'
      res.json({ id: req.sessionID })
    })
    const first = await request(server).get('/')
    const out = await request(server).get('/?logout').set('Cookie', sessionCookie(first)!)
    expect(out.body.session).toBeNull()
    expect(Object.keys(store.sessions)).toHaveLength(0)
  })

  it('reload reads what another request saved; save(cb) writes before responding', async () => {
    const store = new MemoryStore()
    const server = app({ store }, (req, res) => {
      if (req.query.a !== undefined) {
        req.session!.a = 1
        req.session!.save((error) => {
          if (error) throw error as Error
          res.json({ stored: Object.keys(store.sessions).length })
        })
        return
      }
      if (req.query.b !== undefined) {
        req.session!.b = 2
        res.send('ok')
        return
      }
      req.session!.reload((error) => {
        if (error) throw error as Error
        res.json({ a: req.session!.a ?? null, b: req.session!.b ?? null })
      })
    })
    const first = await request(server).get('/?a')
    expect(first.body.stored).toBe(1)
    const cookie = sessionCookie(first)!
    await request(server).get('/?b').set('Cookie', cookie)
    const reloaded = await request(server).get('/').set('Cookie', cookie)
    expect(reloaded.body).toEqual({ a: 1, b: 2 })
  })

  it('reload of a session that was never stored fails with express-session’s error', async () => {
    const server = app({}, (req, res) => {
      req.session!.reload((error) => {
        res.json({ error: (error as Error | undefined)?.message ?? null })
      })
    })
    expect((await request(server).get('/')).body.error).toBe('failed to load session')
  })

  it('touch() resets maxAge and the store is touched for an unmodified session', async () => {
    const store = new CountingStore()
    const server = app({ store, cookie: { maxAge: 60_000 } }, (req, res) => {
      if (req.query.set !== undefined) req.session!.user = 'ann'
      req.session!.touch()
      res.json({ maxAge: req.session!.cookie.maxAge })
    })
    const cookie = sessionCookie(await request(server).get('/?set'))!
    const res = await request(server).get('/').set('Cookie', cookie)
    expect(res.body.maxAge).toBeGreaterThan(59_000)
    expect(store.calls.touch).toBe(1)
  })

  it('genid makes the tokens, used as-is in the cookie; the id is their hash', async () => {
    let count = 0
    const server = app({ genid: () => `id-${++count}` }, (req, res) => {
      req.session!.user = 'ann'
      res.json({ id: req.sessionID })
    })
    for (const token of ['id-1', 'id-2']) {
      const res = await request(server).get('/')
      expect(res.body.id).toBe(sha256(token))
      expect(cookieParts(sessionCookie(res)!)).toEqual({ sid: sha256(token), token })
    }
  })

  it('unset: destroy deletes the stored session when req.session is set to null; keep keeps it', async () => {
    for (const unset of ['destroy', 'keep'] as const) {
      const store = new MemoryStore()
      const server = app({ store, unset }, (req, res) => {
        if (req.query.drop !== undefined) req.session = null
        else req.session!.user = 'ann'
        res.send('ok')
      })
      const cookie = sessionCookie(await request(server).get('/'))!
      await request(server).get('/?drop').set('Cookie', cookie)
      expect(Object.keys(store.sessions)).toHaveLength(unset === 'destroy' ? 0 : 1)
    }
  })

  it('secure: "auto" with proxy: true follows X-Forwarded-Proto; a secure cookie is not sent over http', async () => {
    const server = app({ proxy: true, cookie: { secure: 'auto' } }, (req, res) => {
      req.session!.user = 'ann'
      res.send('ok')
    })
    const https = await request(server).get('/').set('X-Forwarded-Proto', 'https')
    expect(setCookies(https)[0]).toMatch(/; Secure/)
    const http = await request(server).get('/')
    expect(setCookies(http)[0]).not.toMatch(/; Secure/)
    const untrusted = app({ proxy: false, cookie: { secure: true } }, (req, res) => {
      req.session!.user = 'ann'
      res.send('ok')
    })
    const refused = await request(untrusted).get('/').set('X-Forwarded-Proto', 'https')
    expect(sessionCookie(refused)).toBeUndefined()
  })

  it('a cookie path that does not match the request path leaves req.session unset', async () => {
    const server = app({ cookie: { path: '/admin' } }, (req, res) => {
      res.json({ has: req.session !== undefined })
    })
    expect((await request(server).get('/other')).body.has).toBe(false)
    expect((await request(server).get('/admin/x')).body.has).toBe(true)
  })

  it('SECURITY: rotates secrets: a cookie signed by an older secret verifies and is re-signed', async () => {
    const store = new MemoryStore()
    const [oldSecret, newSecret] = [secret(), secret()]
    const handler = (req: SessReq, res: Response): void => {
      if (req.query.set !== undefined) req.session!.user = 'ann'
      res.json({ user: req.session!.user ?? null })
    }
    const before = app({ store, secret: oldSecret }, handler)
    const cookie = sessionCookie(await request(before).get('/?set'))!
    const after = app({ store, secret: [newSecret, oldSecret] }, handler)
    const res = await request(after).get('/').set('Cookie', cookie)
    expect(res.body.user).toBe('ann')
    const resigned = sessionCookie(res)!
    expect(resigned).not.toBe(cookie)
    const retired = app({ store, secret: newSecret }, handler)
    expect((await request(retired).get('/').set('Cookie', resigned)).body.user).toBe('ann')
    expect((await request(retired).get('/').set('Cookie', cookie)).body.user).toBeNull()
  })

  it('SECURITY: a forged or tampered cookie gets a new session and no store lookup', async () => {
    const store = new CountingStore()
    const server = app({ store }, (req, res) => {
      req.session!.user ??= 'ann'
      res.json({ id: req.sessionID })
    })
    const first = await request(server).get('/')
    const cookie = sessionCookie(first)!
    const gets = store.calls.get
    const tampered = `${cookie.slice(0, -2)}${cookie.endsWith('A') ? 'B' : 'A'}A`
    const res = await request(server).get('/').set('Cookie', tampered)
    expect(res.body.id).not.toBe(first.body.id)
    const forged = await request(server)
      .get('/')
      .set('Cookie', `connect.sid=${first.body.id as string}`)
    expect(forged.body.id).not.toBe(first.body.id)
    expect(store.calls.get).toBe(gets)
  })

  it('absoluteTimeout ends a session however active it is', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const store = new MemoryStore()
    const server = app({ store, absoluteTimeout: 3600, rolling: true }, (req, res) => {
      req.session!.user ??= 'ann'
      res.json({ id: req.sessionID })
    })
    const first = await request(server).get('/')
    const cookie = sessionCookie(first)!
    vi.setSystemTime(Date.now() + 1800_000)
    expect((await request(server).get('/').set('Cookie', cookie)).body.id).toBe(first.body.id)
    vi.setSystemTime(Date.now() + 1801_000)
    expect((await request(server).get('/').set('Cookie', cookie)).body.id).not.toBe(first.body.id)
  })
})

describe('express-session drop-in: migrating from express-session', () => {
  it('legacyIds reads express-session cookies and moves each session to its hashed key', async () => {
    const store = new MemoryStore()
    const key = secret()
    const old = app(
      {},
      (req, res) => {
        req.session!.user = 'ann'
        res.json({ id: req.sessionID })
      },
      expressSession({
        secret: key,
        resave: false,
        saveUninitialized: false,
        store: store as unknown as expressSession.Store,
      }),
    )
    const first = await request(old).get('/')
    const legacyCookie = sessionCookie(first)!
    expect(legacyCookie).toMatch(/^connect\.sid=s%3A/)
    const sid = first.body.id as string
    expect(Object.keys(store.sessions)).toEqual([sid])

    const handler = (req: SessReq, res: Response): void => {
      res.json({ user: req.session!.user ?? null, id: req.sessionID })
    }
    const without = app({ store, secret: key }, handler)
    expect((await request(without).get('/').set('Cookie', legacyCookie)).body.user).toBeNull()

    const migrating = app({ store, secret: key, legacyIds: true }, handler)
    const res = await request(migrating).get('/').set('Cookie', legacyCookie)
    expect(res.body).toEqual({ user: 'ann', id: sha256(sid) })
    const newCookie = sessionCookie(res)!
    expect(newCookie).not.toMatch(/s%3A/)
    expect(cookieParts(newCookie)).toEqual({ sid: sha256(sid), token: sid })
    expect(Object.keys(store.sessions)).toEqual([sha256(sid)])
    expect((await request(migrating).get('/').set('Cookie', newCookie)).body.user).toBe('ann')
    // a forged express-session cookie is refused
    const forged = `connect.sid=s%3A${sid}.${createHmac('sha256', 'other').update(sid).digest('base64').replace(/=+$/, '')}`
    expect((await request(migrating).get('/').set('Cookie', forged)).body.user).toBeNull()
  })
})

/** Two requests that both read the session before either writes it. */
async function concurrentWrites(middleware: RequestHandler): Promise<{ a: unknown; b: unknown }> {
  let arrived = 0
  let release!: () => void
  const bothIn = new Promise<void>((resolve) => {
    release = resolve
  })
  const server = express()
  server.use(middleware)
  server.get('/start', (req, res) => {
    ;(req as unknown as SessReq).session!.started = true
    res.send('ok')
  })
  server.get('/set/:key', (req, res, next) => {
    arrived++
    if (arrived === 2) release()
    bothIn
      .then(() => {
        ;(req as unknown as SessReq).session![req.params.key] = true
        res.send('ok')
      })
      .catch(next)
  })
  server.get('/read', (req, res) => {
    const sess = (req as unknown as SessReq).session!
    res.json({ a: sess.a ?? null, b: sess.b ?? null })
  })
  const listener: Server = await new Promise((resolve) => {
    const s = server.listen(0, '127.0.0.1', () => resolve(s))
  })
  try {
    const base = `http://127.0.0.1:${(listener.address() as AddressInfo).port}`
    const start = await request(base).get('/start')
    const cookie = sessionCookie(start)!
    await Promise.all([
      request(base).get('/set/a').set('Cookie', cookie),
      request(base).get('/set/b').set('Cookie', cookie),
    ])
    const read = await request(base).get('/read').set('Cookie', cookie)
    return read.body as { a: unknown; b: unknown }
  } finally {
    await new Promise((resolve) => listener.close(resolve))
  }
}

describe('express-session drop-in: concurrent requests', () => {
  it('plain express-session loses one of two concurrent writes (why the merge exists)', async () => {
    const body = await concurrentWrites(
      expressSession({
        secret: secret(),
        resave: false,
        saveUninitialized: false,
        store: new expressSession.MemoryStore(),
      }),
    )
    expect([body.a, body.b].filter((value) => value === true)).toHaveLength(1)
  })

  it('on a tessera store both concurrent writes survive (key-by-key compare-and-set)', async () => {
    const body = await concurrentWrites(
      session({
        secret: secret(),
        resave: false,
        saveUninitialized: false,
        store: createMemoryStore(),
      }),
    )
    expect(body).toEqual({ a: true, b: true })
  })

  it('on a connect-style store the drop-in behaves like express-session (last write wins)', async () => {
    const body = await concurrentWrites(
      session({
        secret: secret(),
        resave: false,
        saveUninitialized: false,
        store: new MemoryStore(),
      }),
    )
    expect([body.a, body.b].filter((value) => value === true)).toHaveLength(1)
  })
})

describe('express-session drop-in: tessera memory store', () => {
  it('runs the session life cycle: create, read, modify, remove a key, regenerate, destroy', async () => {
    const store = createMemoryStore()
    const server = app({ store, cookie: { maxAge: 60_000 } }, (req, res) => {
      const sess = req.session!
      const step = req.query.step
      if (step === 'login') {
        sess.regenerate((error) => {
          if (error) throw error as Error
          req.session!.user = 'ann'
          res.json({ id: req.sessionID })
        })
        return
      }
      if (step === 'logout') {
        sess.destroy(() => res.json({ ok: true }))
        return
      }
      if (step === 'cart') sess.cart = ['apple']
      if (step === 'uncart') delete sess.cart
      res.json({ user: sess.user ?? null, cart: sess.cart ?? null, id: req.sessionID })
    })
    const first = await request(server).get('/?step=cart')
    let cookie = sessionCookie(first)!
    expect(store.size).toBe(1)
    const login = await request(server).get('/?step=login').set('Cookie', cookie)
    cookie = sessionCookie(login)!
    expect(store.size).toBe(1)
    const read = await request(server).get('/').set('Cookie', cookie)
    expect(read.body).toEqual({ user: 'ann', cart: null, id: login.body.id as string })
    await request(server).get('/?step=cart').set('Cookie', cookie)
    expect((await request(server).get('/').set('Cookie', cookie)).body.cart).toEqual(['apple'])
    await request(server).get('/?step=uncart').set('Cookie', cookie)
    expect((await request(server).get('/').set('Cookie', cookie)).body.cart).toBeNull()
    await request(server).get('/?step=logout').set('Cookie', cookie)
    expect(store.size).toBe(0)
    expect((await request(server).get('/').set('Cookie', cookie)).body.user).toBeNull()
  })

  it('expires an idle session after the cookie maxAge, from the stored record', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const store = createMemoryStore({ sweepInterval: 0 })
    const server = app({ store, cookie: { maxAge: 60_000 } }, (req, res) => {
      req.session!.user ??= 'ann'
      res.json({ id: req.sessionID })
    })
    const first = await request(server).get('/')
    const cookie = sessionCookie(first)!
    vi.setSystemTime(Date.now() + 45_000)
    expect((await request(server).get('/').set('Cookie', cookie)).body.id).toBe(first.body.id)
    vi.setSystemTime(Date.now() + 45_000) // active: the idle window slid
    expect((await request(server).get('/').set('Cookie', cookie)).body.id).toBe(first.body.id)
    vi.setSystemTime(Date.now() + 61_000)
    expect((await request(server).get('/').set('Cookie', cookie)).body.id).not.toBe(first.body.id)
  })

  it('absoluteTimeout ends a session however active it is', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const server = app(
      {
        store: createMemoryStore({ sweepInterval: 0 }),
        absoluteTimeout: 100,
        cookie: { maxAge: 60_000 },
      },
      (req, res) => {
        req.session!.user ??= 'ann'
        res.json({ id: req.sessionID })
      },
    )
    const first = await request(server).get('/')
    const cookie = sessionCookie(first)!
    for (let step = 0; step < 3; step++) {
      vi.setSystemTime(Date.now() + 40_000)
      const res = await request(server).get('/').set('Cookie', cookie)
      expect(res.body.id === first.body.id).toBe(step < 2)
    }
  })

  it('a request racing a destroy does not bring the session back', async () => {
    const store = createMemoryStore()
    let gate!: () => void
    const wait = new Promise<void>((resolve) => {
      gate = resolve
    })
    let arrived!: () => void
    const slowArrived = new Promise<void>((resolve) => {
      arrived = resolve
    })
    const server = app({ store }, async (req, res) => {
      if (req.query.slow !== undefined) {
        arrived()
        await wait
        req.session!.late = true
        res.send('ok')
        return
      }
      if (req.query.logout !== undefined) {
        req.session!.destroy(() => res.send('ok'))
        return
      }
      req.session!.user = 'ann'
      res.send('ok')
    })
    const listener: Server = await new Promise((resolve) => {
      const s = server.listen(0, '127.0.0.1', () => resolve(s))
    })
    try {
      const base = `http://127.0.0.1:${(listener.address() as AddressInfo).port}`
      const cookie = sessionCookie(await request(base).get('/'))!
      const slow = request(base)
        .get('/?slow')
        .set('Cookie', cookie)
        .then((r) => r)
      await slowArrived // it has read the session
      await request(base).get('/?logout').set('Cookie', cookie)
      gate()
      await slow
      expect(store.size).toBe(0)
    } finally {
      await new Promise((resolve) => listener.close(resolve))
    }
  })
})

describeWithService('redis', 'express-session drop-in on the real Redis server', (url) => {
  const client = createClient({ url })
  beforeAll(async () => {
    await client.connect()
  })
  afterAll(() => {
    client.destroy()
  })

  async function keysWith(prefix: string): Promise<string[]> {
    const found: string[] = []
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 100 })) {
      found.push(...keys)
    }
    return found
  }

  it('connect-redis 9 plugs in unchanged; Redis holds the hashed id only', async () => {
    const prefix = `${uniqueName('dropin')}:`
    const store = new RedisStore({ client, prefix })
    try {
      const server = app({ store: store as never, cookie: { maxAge: 60_000 } }, (req, res) => {
        if (req.query.set !== undefined) req.session!.user = 'ann'
        if (req.query.logout !== undefined) {
          req.session!.destroy(() => res.json({ out: true }))
          return
        }
        res.json({ id: req.sessionID, user: req.session!.user ?? null })
      })
      const first = await request(server).get('/?set')
      const cookie = sessionCookie(first)!
      const sid = first.body.id as string
      expect(sid).toBe(sha256(cookieParts(cookie).token))
      expect(await keysWith(prefix)).toEqual([`${prefix}${sid}`])
      expect(await client.ttl(`${prefix}${sid}`)).toBeGreaterThan(50)
      expect((await request(server).get('/').set('Cookie', cookie)).body.user).toBe('ann')
      await request(server).get('/?logout').set('Cookie', cookie)
      expect(await keysWith(prefix)).toEqual([])
    } finally {
      for (const key of await keysWith(prefix)) await client.del(key)
    }
  })

  it('tessera’s Redis store keeps both of two concurrent writes', async () => {
    const prefix = `${uniqueName('dropin')}:`
    try {
      const body = await concurrentWrites(
        session({
          secret: secret(),
          resave: false,
          saveUninitialized: false,
          store: createRedisStore(client, { prefix }),
        }),
      )
      expect(body).toEqual({ a: true, b: true })
    } finally {
      for (const key of await keysWith(prefix)) await client.del(key)
    }
  })

  it('connect-redis loses one of two concurrent writes, as with express-session', async () => {
    const prefix = `${uniqueName('dropin')}:`
    try {
      const body = await concurrentWrites(
        session({
          secret: secret(),
          resave: false,
          saveUninitialized: false,
          store: new RedisStore({ client, prefix }) as never,
        }),
      )
      expect([body.a, body.b].filter((value) => value === true)).toHaveLength(1)
    } finally {
      for (const key of await keysWith(prefix)) await client.del(key)
    }
  })
})
