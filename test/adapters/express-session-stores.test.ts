/* eslint-disable @typescript-eslint/no-unsafe-member-access -- supertest response bodies are `any` */
// Published connect stores, unchanged, behind the drop-in in a real Express app: connect-pg-simple
// on the real PostgreSQL (an ES class), session-file-store and connect-loki (written the classic
// way, `Store.call(this)` with util.inherits / __proto__), memorystore (an ES class).
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import connectLoki from 'connect-loki'
import connectPgSimple from 'connect-pg-simple'
import express from 'express'
import type { Request, Response } from 'express'
import memorystore from 'memorystore'
import pg from 'pg'
import sessionFileStore from 'session-file-store'
import request from 'supertest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import session, {
  type ConnectStore,
  type SessionData,
} from '../../src/adapters/express-session/index.js'
import {
  cookieParts,
  sessionCookie as sessionCookieOf,
  sha256,
} from '../helpers/express-session.js'
import { describeWithService, uniqueName } from '../helpers/services.js'

type Sess = Record<string, unknown> & {
  id: string
  regenerate(cb: (e?: unknown) => void): void
  destroy(cb: (e?: unknown) => void): void
}
type SessReq = Omit<Request, 'session' | 'sessionID'> & {
  session?: Sess | null
  sessionID?: string
}

// The store modules are typed against express-session's own default export; the drop-in has the
// same shape at run time, which is the point of these tests.
type ExpressSession = Parameters<typeof connectPgSimple>[0]
const dropIn = session as unknown as ExpressSession

function tokenOf(cookie: string): string {
  return cookieParts(cookie).token
}

function sessionCookie(res: request.Response): string {
  const cookie = sessionCookieOf(res)
  expect(cookie).toBeDefined()
  return cookie as string
}

function stored(store: ConnectStore, sid: string): Promise<SessionData | null | undefined> {
  return new Promise((resolve, reject) => {
    store.get(sid, (error, data) => {
      if (error !== undefined && error !== null && (error as { code?: string }).code !== 'ENOENT')
        reject(new Error('store.get failed', { cause: error }))
      else resolve(data)
    })
  })
}

/**
 * One app over `store`: sign in (regenerate, then data), count visits, sign out (destroy).
 * `keys()` lists what the store holds, as its own storage shows it (rows, files, entries).
 */
async function exercise(store: ConnectStore, keys: () => Promise<string[]>): Promise<void> {
  const server = express()
  server.use(
    session({
      secret: randomBytes(32).toString('base64url'),
      store,
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: 3_600_000 },
    }),
  )
  server.get('/login', (req, res: Response) => {
    const r = req as unknown as SessReq
    const before = r.sessionID
    r.session!.regenerate((error) => {
      if (error) throw error as Error
      r.session!.user = 'ann'
      res.json({ before, after: r.sessionID })
    })
  })
  server.get('/visit', (req, res: Response) => {
    const r = req as unknown as SessReq
    r.session!.visits = ((r.session!.visits as number | undefined) ?? 0) + 1
    res.json({ user: r.session!.user ?? null, visits: r.session!.visits, id: r.sessionID })
  })
  server.get('/logout', (req, res: Response) => {
    ;(req as unknown as SessReq).session!.destroy((error) => {
      if (error) throw error as Error
      res.json({ out: true })
    })
  })

  const anonymous = await request(server).get('/visit')
  expect(anonymous.body.visits).toBe(1)
  const anonymousCookie = sessionCookie(anonymous)
  const login = await request(server).get('/login').set('Cookie', anonymousCookie)
  expect(login.body.before).toBe(anonymous.body.id)
  const cookie = sessionCookie(login)
  const sid = login.body.after as string
  expect(sid).not.toBe(anonymous.body.id)
  // SECURITY: the store key is SHA-256 of the cookie's token; the token is not in the store.
  expect(sid).toBe(sha256(tokenOf(cookie)))
  expect(await keys()).toEqual([sid])
  expect(JSON.stringify(await stored(store, sid))).not.toContain(tokenOf(cookie))

  for (const visits of [1, 2]) {
    const res = await request(server).get('/visit').set('Cookie', cookie)
    expect(res.body).toEqual({ user: 'ann', visits, id: sid })
  }
  expect((await stored(store, sid))?.user).toBe('ann')
  // The pre-login session was destroyed by regenerate: its cookie starts afresh.
  const stale = await request(server).get('/visit').set('Cookie', anonymousCookie)
  expect(stale.body.user).toBeNull()

  await request(server).get('/logout').set('Cookie', cookie).expect(200)
  expect(await stored(store, sid)).toBeFalsy()
  const after = await request(server).get('/visit').set('Cookie', cookie)
  expect(after.body).toMatchObject({ user: null, visits: 1 })
  expect(after.body.id).not.toBe(sid)
}

describeWithService(
  'postgres',
  'express-session drop-in + connect-pg-simple (PostgreSQL)',
  (url) => {
    const schema = uniqueName('dropin_pg')
    let pool: pg.Pool

    beforeAll(async () => {
      pool = new pg.Pool({ connectionString: url, max: 2 })
      await pool.query(`CREATE SCHEMA "${schema}"`)
    })

    afterAll(async () => {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      await pool.end()
    })

    it('works unchanged; the session table holds hashed ids only', async () => {
      const PGStore = connectPgSimple(dropIn)
      const store = new PGStore({
        pool,
        schemaName: schema,
        createTableIfMissing: true,
        pruneSessionInterval: false,
      }) as unknown as ConnectStore
      await exercise(store, async () => {
        const rows = await pool.query<{ sid: string }>(`SELECT sid FROM "${schema}".session`)
        return rows.rows.map((row) => row.sid).sort()
      })
    })
  },
)

describe('express-session drop-in + classic file and memory stores', () => {
  const dirs: string[] = []
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })
  const scratch = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-dropin-'))
    dirs.push(dir)
    return dir
  }

  it('session-file-store (Store.call(this), one JSON file per session)', async () => {
    const FileStore = sessionFileStore(dropIn)
    const path = scratch()
    const store = new FileStore({
      path,
      reapInterval: -1,
      retries: 0,
      logFn: () => undefined,
    }) as unknown as ConnectStore
    await exercise(store, () =>
      Promise.resolve(
        readdirSync(path)
          .filter((file) => file.endsWith('.json'))
          .map((file) => file.slice(0, -'.json'.length))
          .sort(),
      ),
    )
    for (const file of readdirSync(path)) {
      expect(readFileSync(join(path, file), 'utf8')).not.toMatch(/"t:/)
    }
  })

  it('connect-loki (Store.call(this) with util.inherits, a Loki.js database)', async () => {
    const LokiStore = connectLoki(dropIn)
    const store = new LokiStore({ path: join(scratch(), 'sessions.db'), autosave: false })
    await once(store, 'connect')
    const collection = (store as unknown as { collection: { find(): { sid: string }[] } })
      .collection
    await exercise(store as unknown as ConnectStore, () =>
      Promise.resolve(
        collection
          .find()
          .map((doc) => doc.sid)
          .sort(),
      ),
    )
  })

  it('memorystore (an ES class extending Store, LRU without leaks)', async () => {
    const MemoryStore = memorystore(session as unknown as Parameters<typeof memorystore>[0])
    const store = new MemoryStore({})
    try {
      const lru = (store as unknown as { store: { keys(): string[] } }).store
      await exercise(store as unknown as ConnectStore, () => Promise.resolve(lru.keys().sort()))
    } finally {
      store.stopInterval()
    }
  })
})
