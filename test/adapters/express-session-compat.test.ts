// The express-session behaviours the drop-in gained to pass express-session's own suite (run by
// hand, see docs/migrating.md), each proved here in our own words on a real Express app.
import { createHmac, randomBytes } from 'node:crypto'
import util from 'node:util'
import cookieParser from 'cookie-parser'
import express from 'express'
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express'
import request from 'supertest'
import { describe, expect, it, vi } from 'vitest'
import session, {
  MemoryStore,
  Session,
  Store,
  type SessionData,
  type SessionOptions,
  type StoreCallback,
} from '../../src/adapters/express-session/index.js'
import { createMemoryStore } from '../../src/stores/memory.js'
import {
  cookieParts,
  countVisits,
  secret,
  sessionCookie as sessionCookieOf,
  setCookieLine,
  sha256,
} from '../helpers/express-session.js'

type Sess = Session & Record<string, unknown>
type SessReq = Omit<Request, 'session' | 'sessionID'> & {
  session?: Sess | null
  sessionID?: string
}

/** A clock the test moves by hand. */
function clock(start = Date.UTC(2026, 0, 1)): { now: () => number; advance(ms: number): void } {
  let time = start
  return {
    now: () => time,
    advance(ms) {
      time += ms
    },
  }
}

interface Built {
  server: express.Express
  errors: string[]
}

/** An Express app: `before` middleware, the drop-in, the handler, and an error recorder. */
function build(
  options: Partial<SessionOptions>,
  handler: (req: SessReq, res: Response) => void,
  before: RequestHandler[] = [],
): Built {
  const errors: string[] = []
  const server = express()
  for (const middleware of before) server.use(middleware)
  server.use(session({ secret: secret(), resave: false, saveUninitialized: false, ...options }))
  server.use((req, res) => handler(req as unknown as SessReq, res))
  const recorder: ErrorRequestHandler = (error: Error, _req, res, _next) => {
    errors.push(error.message)
    if (!res.headersSent) res.status(500).send(error.message)
  }
  server.use(recorder)
  return { server, errors }
}

function sessionCookie(res: request.Response): string {
  const cookie = sessionCookieOf(res)
  expect(cookie).toBeDefined()
  return cookie as string
}

function tokenOf(cookie: string): string {
  return cookieParts(cookie).token
}

/** A store written the classic way, with synchronous callbacks (like express-session's SyncStore test). */
interface ClassicStore extends Store {
  sessions: Record<string, string>
  get(sid: string, callback: StoreCallback<SessionData | null>): void
  set(sid: string, data: SessionData, callback: StoreCallback): void
  destroy(sid: string, callback: StoreCallback): void
}
const ClassicStore = function ClassicStore(this: ClassicStore): void {
  Store.call(this)
  this.sessions = Object.create(null) as Record<string, string>
} as unknown as new () => ClassicStore
util.inherits(ClassicStore, Store)
Object.assign(ClassicStore.prototype, {
  get(this: ClassicStore, sid: string, callback: StoreCallback<SessionData | null>): void {
    const text = this.sessions[sid]
    callback(null, text === undefined ? null : (JSON.parse(text) as SessionData))
  },
  set(this: ClassicStore, sid: string, data: SessionData, callback: StoreCallback): void {
    this.sessions[sid] = JSON.stringify(data)
    callback()
  },
  destroy(this: ClassicStore, sid: string, callback: StoreCallback): void {
    delete this.sessions[sid]
    callback()
  },
})

describe('express-session drop-in: classic and synchronous stores', () => {
  it('accepts a store made with Store.call(this) and util.inherits, with synchronous callbacks', async () => {
    const store = new ClassicStore()
    expect(store).toBeInstanceOf(Store)
    expect(typeof store.on).toBe('function')
    const { server, errors } = build({ store }, (req, res) => {
      if (req.query.out !== undefined) {
        req.session!.destroy(() => res.send('out'))
        return
      }
      req.session!.views = ((req.session!.views as number | undefined) ?? 0) + 1
      res.send(String(req.session!.views))
    })
    const first = await request(server).get('/').expect(200, '1')
    const cookie = sessionCookie(first)
    await request(server).get('/').set('Cookie', cookie).expect(200, '2')
    expect(Object.keys(store.sessions)).toEqual([sha256(tokenOf(cookie))])
    await request(server).get('/?out').set('Cookie', cookie).expect(200, 'out')
    expect(Object.keys(store.sessions)).toEqual([])
    expect(errors).toEqual([])
  })

  it('Store#load finds a session by req.sessionID, the store key', async () => {
    const store = new MemoryStore()
    const { server } = build({ store }, (req, res) => {
      req.session!.user = 'ann'
      res.send(req.sessionID)
    })
    const sid = (await request(server).get('/')).text
    const loaded = await new Promise<Session | undefined>((resolve, reject) => {
      store.load(sid, (error, found) => (error ? reject(new Error('load failed')) : resolve(found)))
    })
    expect(loaded).toBeInstanceOf(Session)
    expect((loaded as Sess).user).toBe('ann')
    expect(loaded?.id).toBe(sid)
  })
})

describe('express-session drop-in: secrets', () => {
  it('signs with a Buffer secret, and rotates from one Buffer to another', async () => {
    const old = randomBytes(32)
    const current = randomBytes(32)
    const store = new MemoryStore()
    const handler = (req: SessReq, res: Response): void => {
      req.session!.n = ((req.session!.n as number | undefined) ?? 0) + 1
      res.send(String(req.session!.n))
    }
    const before = build({ store, secret: old }, handler).server
    const cookie = sessionCookie(await request(before).get('/').expect('1'))
    const after = build({ store, secret: [current, old] }, handler).server
    const res = await request(after).get('/').set('Cookie', cookie).expect('2')
    const resigned = sessionCookie(res)
    expect(resigned).not.toBe(cookie)
    expect(tokenOf(resigned)).toBe(tokenOf(cookie))
    const only = build({ store, secret: current }, handler).server
    await request(only).get('/').set('Cookie', resigned).expect('3')
    await request(only).get('/').set('Cookie', cookie).expect('1')
  })

  it('without a secret option signs with cookie-parser’s req.secret', async () => {
    const key = secret()
    const { server, errors } = build({ secret: undefined }, countVisits, [cookieParser(key)])
    const cookie = sessionCookie(await request(server).get('/').expect(200, '1'))
    await request(server).get('/').set('Cookie', cookie).expect(200, '2')
    expect(errors).toEqual([])
  })

  it('without a secret option or req.secret, each request fails through next, naming the option', async () => {
    const { server, errors } = build({ secret: undefined }, (_req, res) => {
      res.send('unreachable')
    })
    const res = await request(server).get('/').expect(500)
    expect(res.text).toMatch(/secret option required for sessions/)
    expect(errors).toHaveLength(1)
  })

  it('SECURITY: a weak req.secret is refused under the strict policy', async () => {
    const store = new ClassicStore()
    const get = vi.spyOn(store, 'get')
    const { server } = build(
      { secret: undefined, secretPolicy: 'strict', store },
      (_req, res) => {
        res.send('unreachable')
      },
      [cookieParser('keyboard cat')],
    )
    const res = await request(server).get('/').set('Cookie', 'connect.sid=t%3Ax.y.z.w').expect(500)
    expect(res.text).toMatch(/published sample secret/)
    expect(res.text).not.toContain('keyboard cat')
    expect(get).not.toHaveBeenCalled()
  })
})

describe('express-session drop-in: cookie-parser in front', () => {
  it('reads the session from req.cookies when the Cookie header no longer has it', async () => {
    const { server } = build({}, countVisits, [
      cookieParser(),
      (req, _res, next) => {
        req.headers.cookie = 'other=1'
        next()
      },
    ])
    const cookie = sessionCookie(await request(server).get('/').expect('1'))
    await request(server).get('/').set('Cookie', cookie).expect('2')
  })

  it('SECURITY: a forged value in req.cookies is refused like one in the header', async () => {
    const { server } = build({}, countVisits, [
      cookieParser(),
      (req, _res, next) => {
        delete req.headers.cookie
        next()
      },
    ])
    const cookie = sessionCookie(await request(server).get('/').expect('1'))
    const forged = cookie.slice(0, -3) + (cookie.endsWith('AAA') ? 'BBB' : 'AAA')
    await request(server).get('/').set('Cookie', forged).expect('1')
  })

  it('with legacyIds, reads express-session ids from req.signedCookies (cookie-parser verified them)', async () => {
    const key = secret()
    const store = new MemoryStore()
    const legacy = 'legacy-id-1'
    await new Promise<void>((resolve) => {
      store.set(legacy, { cookie: { originalMaxAge: null }, user: 'ann' }, () => resolve())
    })
    const signed = `s:${legacy}.${createHmac('sha256', key).update(legacy).digest('base64').replace(/=+$/, '')}`
    const { server } = build(
      { store, secret: key, legacyIds: true },
      (req, res) => {
        res.json({ user: req.session!.user ?? null, id: req.sessionID })
      },
      [
        cookieParser(key),
        (req, _res, next) => {
          delete req.headers.cookie
          next()
        },
      ],
    )
    const res = await request(server)
      .get('/')
      .set('Cookie', `connect.sid=${encodeURIComponent(signed)}`)
    expect(res.body).toEqual({ user: 'ann', id: sha256(legacy) })
    expect(Object.keys(store.sessions)).toEqual([sha256(legacy)])
  })
})

describe('express-session drop-in: cookie attributes decided per request', () => {
  const proxied = (options: Partial<SessionOptions>): Built =>
    build({ proxy: true, saveUninitialized: true, ...options }, (_req, res) => {
      res.send('ok')
    })

  it('sameSite auto: None on https, Lax on http, with secure auto following', async () => {
    const { server } = proxied({ cookie: { sameSite: 'auto', secure: 'auto' } })
    const https = setCookieLine(await request(server).get('/').set('X-Forwarded-Proto', 'https'))
    expect(https).toMatch(/; Secure; HttpOnly; SameSite=None/)
    const http = setCookieLine(await request(server).get('/').set('X-Forwarded-Proto', 'http'))
    expect(http).toMatch(/; HttpOnly; SameSite=Lax/)
    expect(http).not.toMatch(/Secure/)
  })

  it('sameSite auto with proxy false ignores X-Forwarded-Proto', async () => {
    const { server } = proxied({ proxy: false, cookie: { sameSite: 'auto' } })
    const res = await request(server).get('/').set('X-Forwarded-Proto', 'https')
    expect(setCookieLine(res)).toMatch(/SameSite=Lax/)
  })

  it('sameSite auto with secure false sends SameSite=None without Secure on https, as express-session', async () => {
    const { server } = proxied({ cookie: { sameSite: 'auto', secure: false } })
    const line = setCookieLine(await request(server).get('/').set('X-Forwarded-Proto', 'https'))
    expect(line).toMatch(/; SameSite=None/)
    expect(line).not.toMatch(/Secure/)
  })

  it('partitioned sends Partitioned, with or without Secure', async () => {
    const plain = proxied({ cookie: { partitioned: true } }).server
    expect(setCookieLine(await request(plain).get('/'))).toMatch(/; Partitioned/)
    const secure = proxied({ cookie: { partitioned: true, secure: true } }).server
    const line = setCookieLine(await request(secure).get('/').set('X-Forwarded-Proto', 'https'))
    expect(line).toMatch(/; Secure; .*; Partitioned/)
    expect(setCookieLine(await request(proxied({}).server).get('/'))).not.toMatch(/Partitioned/)
  })

  it('maxAge given as a Date sets that expiry', async () => {
    const time = clock()
    const at = new Date(time.now() + 3_600_000)
    const { server } = build(
      { now: time.now, saveUninitialized: true, cookie: { maxAge: at } },
      (_req, res) => {
        res.send('ok')
      },
    )
    expect(setCookieLine(await request(server).get('/'))).toContain(`Expires=${at.toUTCString()}`)
  })

  it('an invalid expires reaches next as an error; the response itself still goes out', async () => {
    const { server, errors } = build(
      { saveUninitialized: true, cookie: { expires: new Date(NaN) } },
      (_req, res) => {
        res.send('ok')
      },
    )
    const res = await request(server).get('/').expect(200, 'ok')
    expect(setCookieLine(res)).toBeUndefined()
    await new Promise((resolve) => setImmediate(resolve))
    expect(errors).toEqual(['option expires is invalid'])
  })
})

describe('express-session drop-in: genid', () => {
  it('uses what genid returns as-is in the cookie (URI-encoded), and passes it the request', async () => {
    const seen: string[] = []
    const { server } = build(
      {
        saveUninitialized: true,
        genid: (req) => {
          seen.push(req.url ?? '')
          return `%${req.url ?? ''}`
        },
      },
      (req, res) => {
        res.send(req.sessionID)
      },
    )
    const res = await request(server).get('/a/b')
    const cookie = sessionCookie(res)
    expect(cookie.startsWith(`connect.sid=t%3A${sha256('%/a/b')}.%25%2Fa%2Fb.`)).toBe(true)
    expect(tokenOf(cookie)).toBe('%/a/b')
    expect(res.text).toBe(sha256('%/a/b'))
    expect(seen).toEqual(['/a/b'])
  })

  it('SECURITY: a cookie whose id is not its token’s hash is refused before the store is asked', async () => {
    const store = new ClassicStore()
    const { server } = build({ store }, countVisits)
    const a = sessionCookie(await request(server).get('/').expect('1'))
    const b = sessionCookie(await request(server).get('/').expect('1'))
    // b's id in front of a's (validly signed) token
    const valueA = decodeURIComponent(a.slice(a.indexOf('=') + 1))
    const valueB = decodeURIComponent(b.slice(b.indexOf('=') + 1))
    const mixed = `${valueB.slice(0, valueB.indexOf('.'))}${valueA.slice(valueA.indexOf('.'))}`
    const get = vi.spyOn(store, 'get')
    await request(server)
      .get('/')
      .set('Cookie', `connect.sid=${encodeURIComponent(mixed)}`)
      .expect('1')
    expect(get).not.toHaveBeenCalled()
    await request(server).get('/').set('Cookie', a).expect('2')
  })
})

describe('express-session drop-in: save, touch and what the store holds', () => {
  it('save() writes at once: the store has the session under req.session.id in the callback', async () => {
    const store = new MemoryStore()
    const { server } = build({ store }, (req, res) => {
      req.session!.hit = true
      req.session!.save(() => {
        store.get(req.session!.id, (_error, found) => {
          res.send(found ? 'stored' : 'missing')
        })
      })
    })
    await request(server).get('/').expect('stored')
  })

  it('a save on a later request stores the moved cookie expiry (injected clock)', async () => {
    const time = clock()
    const store = new MemoryStore({ now: time.now })
    const { server } = build(
      { store, now: time.now, resave: true, cookie: { maxAge: 60_000 } },
      (req, res) => {
        req.session!.user = 'bob'
        res.send(req.session!.id)
      },
    )
    const first = await request(server).get('/')
    const sid = first.text
    const stored = (): string => {
      const data = JSON.parse(store.sessions[sid] as string) as { cookie: { expires: string } }
      return data.cookie.expires
    }
    expect(stored()).toBe(new Date(time.now() + 60_000).toISOString())
    time.advance(5_000)
    await request(server).get('/').set('Cookie', sessionCookie(first)).expect(sid)
    expect(stored()).toBe(new Date(time.now() + 60_000).toISOString())
  })

  it('touch() on an unmodified session moves the stored expiry (store.touch)', async () => {
    const time = clock()
    const store = new MemoryStore({ now: time.now })
    const { server } = build({ store, now: time.now, cookie: { maxAge: 60_000 } }, (req, res) => {
      if (req.query.set !== undefined) req.session!.hit = true
      req.session!.touch()
      res.send(req.sessionID)
    })
    const first = await request(server).get('/?set')
    const expiry = (): string =>
      (JSON.parse(store.sessions[first.text] as string) as { cookie: { expires: string } }).cookie
        .expires
    const before = expiry()
    time.advance(10_000)
    await request(server).get('/').set('Cookie', sessionCookie(first))
    expect(expiry()).not.toBe(before)
    expect(expiry()).toBe(new Date(time.now() + 60_000).toISOString())
  })

  it('data persists across requests and the stored session expires on the injected clock', async () => {
    const time = clock()
    const store = new MemoryStore({ now: time.now })
    const { server } = build({ store, now: time.now, cookie: { maxAge: 1_000 } }, countVisits)
    const cookie = sessionCookie(await request(server).get('/').expect('1'))
    time.advance(500)
    await request(server).get('/').set('Cookie', cookie).expect('2')
    time.advance(1_001)
    await request(server).get('/').set('Cookie', cookie).expect('1')
  })

  it('a stored session without a cookie property is an error through next, and nothing is written', async () => {
    const store = new MemoryStore()
    const { server, errors } = build({ store }, (req, res) => {
      req.session!.n = 1
      res.send(req.sessionID)
    })
    const first = await request(server).get('/')
    const cookie = sessionCookie(first)
    store.sessions[first.text] = JSON.stringify({ foo: 'bar' })
    await request(server).get('/').set('Cookie', cookie).expect(500)
    expect(errors).toHaveLength(1)
    expect(store.sessions[first.text]).toBe(JSON.stringify({ foo: 'bar' }))
  })

  it('stored data named like a Session method does not replace the method', async () => {
    const store = new MemoryStore()
    const { server, errors } = build({ store }, (req, res) => {
      req.session!.n = ((req.session!.n as number | undefined) ?? 0) + 1
      res.send(`${String(req.session!.n)} ${typeof req.session!.save}`)
    })
    const first = await request(server).get('/')
    const sid = Object.keys(store.sessions)[0] as string
    const data = JSON.parse(store.sessions[sid] as string) as Record<string, unknown>
    store.sessions[sid] = JSON.stringify({ ...data, save: 'nope', regenerate: 1 })
    await request(server).get('/').set('Cookie', sessionCookie(first)).expect('2 function')
    expect(errors).toEqual([])
  })
})

describe('express-session drop-in: what tessera adds still holds', () => {
  it('SECURITY: on a tessera store the record id is req.sessionID and the token is nowhere in it', async () => {
    const store = createMemoryStore()
    const { server } = build({ store }, (req, res) => {
      req.session!.user = 'ann'
      res.send(req.sessionID)
    })
    const res = await request(server).get('/')
    const token = tokenOf(sessionCookie(res))
    expect(res.text).toBe(sha256(token))
    const record = await store.get(res.text)
    expect(record?.data.user).toBe('ann')
    expect(JSON.stringify(record)).not.toContain(token)
  })

  it('reads tessera’s previous cookie form (<token>.<kid>.<mac>) and sends the current one', async () => {
    const key = secret()
    const store = new MemoryStore()
    const { server } = build({ store, secret: key }, countVisits)
    const current = sessionCookie(await request(server).get('/').expect('1'))
    const value = decodeURIComponent(current.slice(current.indexOf('=') + 1))
    const previous = value.slice(value.indexOf('.') + 1)
    const res = await request(server)
      .get('/')
      .set('Cookie', `connect.sid=${encodeURIComponent(previous)}`)
      .expect('2')
    expect(sessionCookie(res)).toBe(current)
  })
})
