import { randomBytes } from 'node:crypto'
import { createClient, type RedisClientType } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAccessTokens, type AccessTokens } from '../../src/auth/access-tokens.js'
import { createHMACKeySet } from '../../src/auth/keys.js'
import { createKeyring, type Keyring } from '../../src/core/keyring.js'
import type { RequestAuthOptions, SignInOptions } from '../../src/core/request-auth.js'
import { createSessionManager } from '../../src/core/session-manager.js'
import type { SessionStore } from '../../src/core/session-store.js'
import { createMemoryStore } from '../../src/stores/memory.js'
import { createRedisStore } from '../../src/stores/redis.js'
import { describeWithService, uniqueName } from '../helpers/services.js'

/** The origin every test app trusts. */
export const SITE = 'https://app.example.test'

/** A response as the scenarios read it, whatever the framework. */
export interface Reply {
  status: number
  /** The parsed JSON body, or `null` when there is none or it is not JSON. */
  body: unknown
  setCookies: string[]
  headers: Record<string, string | undefined>
}

/** Sends one request to the app under test. */
export type Send = (
  method: string,
  path: string,
  options?: { headers?: Record<string, string>; json?: unknown },
) => Promise<Reply>

/**
 * Builds the app under test with these routes, each through the adapter only:
 * - `POST /login` `{userId, permissions?, auth?}` → signIn (with `auth`: time, aal) → `200 {id}`
 *   (session public id)
 * - `POST /logout` → signOut → `204`
 * - `GET /me` (requireAuth) → `200 {user: {id, permissions, via}}`
 * - `GET /admin` (requirePermission('admin.read')) → `200 {ok: true}`
 * - `POST /echo` → `200 {user: id | null}`
 * - `GET /csrf` → `200 {token}`
 * - `GET /fresh` (requireFresh(600)) → `200 {ok: true}`
 * - `GET /aal2` (requireAAL(2)) → `200 {ok: true}`
 */
export type BuildApp = (options: RequestAuthOptions) => Promise<{
  send: Send
  close: () => Promise<void>
}>

/** The body of the scenario apps' `POST /login`. */
export interface LoginBody {
  userId: string
  permissions?: string[]
  auth?: { time?: number; aal?: 1 | 2 }
}

/** What the scenario apps' `POST /login` passes to the adapter's `signIn`. */
export function signInOptions(body: LoginBody): SignInOptions {
  return {
    data: body.permissions === undefined ? {} : { permissions: body.permissions },
    ...(body.auth === undefined ? {} : { auth: body.auth }),
  }
}

/** The `name=value` of the session cookie in a list of Set-Cookie values (the last one wins). */
export function cookieOf(setCookies: readonly string[], name: string): string | undefined {
  let found: string | undefined
  for (const line of setCookies) {
    const pair = line.split(';')[0] ?? ''
    if (pair.startsWith(`${name}=`)) found = pair
  }
  return found
}

interface Fixture {
  keyring: Keyring
  tokens: AccessTokens
  options: RequestAuthOptions
  clock: { now: () => number; advance: (seconds: number) => void }
}

function fixture(store: SessionStore): Fixture {
  const keyring = createKeyring(randomBytes(32).toString('base64url'))
  // One injected clock for the sessions, the tokens and the freshness guard: expiry and
  // step-up are tested by moving it, never by sleeping.
  let offset = 0
  const clock = {
    now: () => Date.now() + offset,
    advance: (seconds: number) => {
      offset += seconds * 1000
    },
  }
  const tokens = createAccessTokens({
    keys: createHMACKeySet(keyring),
    issuer: SITE,
    audience: 'test-api',
    now: clock.now,
  })
  const sessions = createSessionManager(store, keyring, { now: clock.now })
  return {
    keyring,
    tokens,
    clock,
    options: { sessions, keyring, trustedOrigins: [SITE], bearer: tokens, now: clock.now },
  }
}

const SAME_ORIGIN = { 'sec-fetch-site': 'same-origin' }

function errorCode(reply: Reply): unknown {
  return (reply.body as { error?: { code?: unknown } } | null)?.error?.code
}

/** Runs every adapter scenario against `build`, on the memory store and on the real Redis. */
export function describeAdapterScenarios(name: string, build: BuildApp): void {
  describe(`${name} adapter (memory store)`, () => {
    scenarios(build, () => Promise.resolve({ store: createMemoryStore(), cleanup: async () => {} }))
  })

  describeWithService('redis', `${name} adapter (Redis store)`, (url) => {
    let client: RedisClientType
    beforeAll(async () => {
      client = createClient({ url, socket: { connectTimeout: 5000 } })
      client.on('error', () => undefined)
      await client.connect()
    })
    afterAll(() => {
      client.destroy()
    })
    scenarios(build, () => {
      const prefix = `${uniqueName('tessera_adapter')}:`
      return Promise.resolve({
        store: createRedisStore(client, { prefix, timeout: 10 }),
        cleanup: async () => {
          for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
            if (keys.length > 0) await client.del(keys)
          }
        },
      })
    })
  })

  describe(`${name} adapter with the store down`, () => {
    it('answers 503 unavailable, never 500, for a session lookup and a sign-in', async () => {
      // A client pointed at a port nothing listens on, never connected.
      const down = createClient({ url: 'redis://127.0.0.1:1', socket: { connectTimeout: 200 } })
      down.on('error', () => undefined)
      const { keyring, options } = fixture(createRedisStore(down, { timeout: 0.5 }))
      // A correctly signed cookie made by a working manager with the same key, so the request
      // gets past the signature check to the store.
      const working = createSessionManager(createMemoryStore(), keyring)
      const issued = await working.create('u1')
      const cookie = issued.setCookie.split(';')[0] ?? ''
      const app = await build(options)
      try {
        const me = await app.send('GET', '/me', { headers: { cookie } })
        expect(me.status).toBe(503)
        expect(errorCode(me)).toBe('unavailable')
        const login = await app.send('POST', '/login', {
          headers: SAME_ORIGIN,
          json: { userId: 'u1' },
        })
        expect(login.status).toBe(503)
        // SECURITY: the cross-site rule runs before the store: a refused request never gets
        // as far as the (unreachable) store, so it is a 403, not a 503.
        const cross = await app.send('POST', '/echo', {
          headers: { cookie, 'sec-fetch-site': 'cross-site' },
        })
        expect(cross.status).toBe(403)
        expect(errorCode(cross)).toBe('csrf_failed')
      } finally {
        await app.close()
        down.destroy()
      }
    })
  })
}

function scenarios(
  build: BuildApp,
  makeStore: () => Promise<{ store: SessionStore; cleanup: () => Promise<void> }>,
): void {
  async function setup(): Promise<{
    app: Awaited<ReturnType<BuildApp>>
    fx: Fixture
    cookieName: string
    login: (
      userId: string,
      permissions?: string[],
      auth?: { time?: number; aal?: 1 | 2 },
    ) => Promise<string>
    done: () => Promise<void>
  }> {
    const { store, cleanup } = await makeStore()
    const fx = fixture(store)
    const app = await build(fx.options)
    const cookieName = fx.options.sessions.cookieName
    async function login(
      userId: string,
      permissions?: string[],
      auth?: { time?: number; aal?: 1 | 2 },
    ): Promise<string> {
      const reply = await app.send('POST', '/login', {
        headers: SAME_ORIGIN,
        json: { userId, ...(permissions === undefined ? {} : { permissions }), auth },
      })
      expect(reply.status).toBe(200)
      const cookie = cookieOf(reply.setCookies, cookieName)
      expect(cookie).toBeDefined()
      return cookie ?? ''
    }
    return {
      app,
      fx,
      cookieName,
      login,
      done: async () => {
        await app.close()
        await cleanup()
      },
    }
  }

  it('sign in → cookie → authenticated request → sign out → old cookie refused', async () => {
    const { app, login, cookieName, done } = await setup()
    try {
      expect((await app.send('GET', '/me')).status).toBe(401)
      const cookie = await login('alice')
      const me = await app.send('GET', '/me', { headers: { cookie } })
      expect(me.status).toBe(200)
      expect(me.body).toEqual({ user: { id: 'alice', permissions: [], via: 'session' } })
      const out = await app.send('POST', '/logout', { headers: { cookie, ...SAME_ORIGIN } })
      expect(out.status).toBe(204)
      // The cookie is cleared in the browser…
      expect(out.setCookies.some((line) => line.startsWith(`${cookieName}=;`))).toBe(true)
      // …and refused by the server if replayed.
      const replay = await app.send('GET', '/me', { headers: { cookie } })
      expect(replay.status).toBe(401)
      expect(errorCode(replay)).toBe('unauthenticated')
    } finally {
      await done()
    }
  })

  it('signing in again replaces the session: the cookie from before is refused (no fixation)', async () => {
    const { app, login, cookieName, done } = await setup()
    try {
      const planted = await login('anon-before')
      const reply = await app.send('POST', '/login', {
        headers: { cookie: planted, ...SAME_ORIGIN },
        json: { userId: 'bob' },
      })
      expect(reply.status).toBe(200)
      const fresh = cookieOf(reply.setCookies, cookieName)
      expect(fresh).toBeDefined()
      expect(fresh).not.toBe(planted)
      expect((await app.send('GET', '/me', { headers: { cookie: planted } })).status).toBe(401)
      const me = await app.send('GET', '/me', { headers: { cookie: fresh ?? '' } })
      expect((me.body as { user: { id: string } }).user.id).toBe('bob')
    } finally {
      await done()
    }
  })

  it('refuses cross-site unsafe requests with a session cookie: 403 csrf_failed, nothing changes', async () => {
    const { app, login, done } = await setup()
    try {
      const cookie = await login('carol')
      const refusedHeaders = [
        { 'sec-fetch-site': 'cross-site' },
        { 'sec-fetch-site': 'same-site' },
        { origin: 'https://evil.example' },
        { origin: 'null' },
        {}, // a cookie and no proof at all
        { 'x-csrf-token': 'forged' },
      ]
      for (const headers of refusedHeaders) {
        const reply = await app.send('POST', '/echo', { headers: { cookie, ...headers } })
        expect(reply.status, JSON.stringify(headers)).toBe(403)
        expect(reply.body).toMatchObject({ error: { code: 'csrf_failed' } })
        expect(typeof (reply.body as { error: { message: unknown } }).error.message).toBe('string')
      }
      // A cross-site logout changes nothing: the session still works.
      const logout = await app.send('POST', '/logout', {
        headers: { cookie, 'sec-fetch-site': 'cross-site' },
      })
      expect(logout.status).toBe(403)
      expect((await app.send('GET', '/me', { headers: { cookie } })).status).toBe(200)
      // Login CSRF: a cross-site sign-in is refused even without a cookie.
      const crossLogin = await app.send('POST', '/login', {
        headers: { origin: 'https://evil.example' },
        json: { userId: 'mallory' },
      })
      expect(crossLogin.status).toBe(403)
      expect(crossLogin.setCookies).toEqual([])
    } finally {
      await done()
    }
  })

  it('lets same-site proof through: Sec-Fetch-Site, trusted Origin, or a session-bound X-CSRF-Token', async () => {
    const { app, login, done } = await setup()
    try {
      const cookie = await login('dave')
      for (const headers of [SAME_ORIGIN, { origin: SITE }]) {
        const reply = await app.send('POST', '/echo', { headers: { cookie, ...headers } })
        expect(reply.status).toBe(200)
        expect(reply.body).toEqual({ user: 'dave' })
      }
      const csrf = await app.send('GET', '/csrf', { headers: { cookie } })
      const token = (csrf.body as { token: string }).token
      const withToken = await app.send('POST', '/echo', {
        headers: { cookie, 'x-csrf-token': token },
      })
      expect(withToken.status).toBe(200)
      // A token of another session does not count.
      const other = await login('erin')
      const crossed = await app.send('POST', '/echo', {
        headers: { cookie: other, 'x-csrf-token': token },
      })
      expect(crossed.status).toBe(403)
      // No cookie, no headers (a command-line client): not a cross-site request.
      const cli = await app.send('POST', '/echo')
      expect(cli.status).toBe(200)
      expect(cli.body).toEqual({ user: null })
    } finally {
      await done()
    }
  })

  it('accepts a valid bearer access token and refuses a bad one with 401 invalid_token', async () => {
    const { app, fx, done } = await setup()
    try {
      const { token } = await fx.tokens.issue('frank', 'sid-1', {
        claims: { permissions: ['admin.read'] },
      })
      const me = await app.send('GET', '/me', { headers: { authorization: `Bearer ${token}` } })
      expect(me.status).toBe(200)
      expect(me.body).toEqual({ user: { id: 'frank', permissions: ['admin.read'], via: 'bearer' } })
      const admin = await app.send('GET', '/admin', {
        headers: { authorization: `bearer ${token}` },
      })
      expect(admin.status).toBe(200)
      // A bearer request is not cookie-authenticated: a cross-origin API call may post.
      const post = await app.send('POST', '/echo', {
        headers: { authorization: `Bearer ${token}`, origin: 'https://other.example' },
      })
      expect(post.status).toBe(200)

      const otherKeys = fixture(createMemoryStore()).tokens
      const foreign = (await otherKeys.issue('frank', 'sid-1')).token
      const tampered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`
      for (const bad of [foreign, tampered, 'a.b.c', 'Bearer', `Bearer ${token} extra`]) {
        const authorization = bad.startsWith('Bearer') ? bad : `Bearer ${bad}`
        const reply = await app.send('GET', '/me', { headers: { authorization } })
        expect(reply.status, authorization.slice(0, 20)).toBe(401)
        expect(errorCode(reply)).toBe('invalid_token')
        expect(reply.headers['www-authenticate']).toContain('invalid_token')
      }
      // Another scheme is not a bearer token: the request is simply anonymous.
      const basic = await app.send('GET', '/me', {
        headers: { authorization: 'Basic dXNlcjpwdw==' },
      })
      expect(basic.status).toBe(401)
      expect(errorCode(basic)).toBe('unauthenticated')
    } finally {
      await done()
    }
  })

  it('guards: 401 without a user, 403 forbidden without the permission, 200 with it', async () => {
    const { app, login, done } = await setup()
    try {
      const anonymous = await app.send('GET', '/admin')
      expect(anonymous.status).toBe(401)
      expect(errorCode(anonymous)).toBe('unauthenticated')
      const plain = await login('gina', ['posts.read'])
      const forbidden = await app.send('GET', '/admin', { headers: { cookie: plain } })
      expect(forbidden.status).toBe(403)
      expect(errorCode(forbidden)).toBe('forbidden')
      const admin = await login('hank', ['admin.read'])
      const allowed = await app.send('GET', '/admin', { headers: { cookie: admin } })
      expect(allowed.status).toBe(200)
      expect(allowed.body).toEqual({ ok: true })
    } finally {
      await done()
    }
  })

  it('requireFresh and requireAAL: 401 anonymous, 403 reauthentication_required when stale or below the level', async () => {
    const { app, fx, login, done } = await setup()
    try {
      for (const path of ['/fresh', '/aal2']) {
        const anonymous = await app.send('GET', path)
        expect(anonymous.status).toBe(401)
        expect(errorCode(anonymous)).toBe('unauthenticated')
      }
      const cookie = await login('kim', [], { time: fx.clock.now() })
      expect((await app.send('GET', '/fresh', { headers: { cookie } })).status).toBe(200)
      const aal1 = await app.send('GET', '/aal2', { headers: { cookie } })
      expect(aal1.status).toBe(403)
      expect(errorCode(aal1)).toBe('reauthentication_required')
      expect((aal1.body as { error: { message: string } }).error.message).toMatch(/second factor/)
      // Ten minutes and one second later the sign-in is no longer recent.
      fx.clock.advance(601)
      const stale = await app.send('GET', '/fresh', { headers: { cookie } })
      expect(stale.status).toBe(403)
      expect(errorCode(stale)).toBe('reauthentication_required')
      expect((stale.body as { error: { message: string } }).error.message).toMatch(/600 seconds/)
      // A session made without an auth record counts from its creation; a two-factor one passes.
      const strong = await login('lee', [], { aal: 2 })
      expect((await app.send('GET', '/aal2', { headers: { cookie: strong } })).status).toBe(200)
      expect((await app.send('GET', '/fresh', { headers: { cookie: strong } })).status).toBe(200)
      // Bearer tokens are judged by their auth_time (seconds) and acr claims.
      const nowSeconds = Math.floor(fx.clock.now() / 1000)
      const token = async (claims: Record<string, unknown>): Promise<Record<string, string>> => ({
        authorization: `Bearer ${(await fx.tokens.issue('mo', 'sid-9', { claims })).token}`,
      })
      const fresh2 = await token({ auth_time: nowSeconds - 30, acr: 'aal2' })
      expect((await app.send('GET', '/fresh', { headers: fresh2 })).status).toBe(200)
      expect((await app.send('GET', '/aal2', { headers: fresh2 })).status).toBe(200)
      const old1 = await token({ auth_time: nowSeconds - 601, acr: 'aal1' })
      expect(errorCode(await app.send('GET', '/fresh', { headers: old1 }))).toBe(
        'reauthentication_required',
      )
      expect(errorCode(await app.send('GET', '/aal2', { headers: old1 }))).toBe(
        'reauthentication_required',
      )
      // SECURITY: a token that does not say when or how the user signed in passes neither.
      const bare = await token({})
      expect((await app.send('GET', '/fresh', { headers: bare })).status).toBe(403)
      expect((await app.send('GET', '/aal2', { headers: bare })).status).toBe(403)
    } finally {
      await done()
    }
  })

  it('reads a session cookie sent twice as none, also with the CSRF token of the first (cookie tossing)', async () => {
    const { app, login, cookieName, done } = await setup()
    try {
      const mine = await login('nia')
      const planted = await login('mallory')
      const csrf = await app.send('GET', '/csrf', { headers: { cookie: mine } })
      const token = (csrf.body as { token: string }).token
      for (const cookie of [`${mine}; ${planted}`, `${planted}; ${mine}`, `${mine}; ${mine}`]) {
        const me = await app.send('GET', '/me', { headers: { cookie } })
        expect(me.status, cookie.slice(0, 30)).toBe(401)
        // An unsafe request with the token of the first cookie is anonymous: it signs nobody out.
        const echo = await app.send('POST', '/echo', {
          headers: { cookie, 'x-csrf-token': token },
        })
        expect(echo.status).toBe(200)
        expect(echo.body).toEqual({ user: null })
        const out = await app.send('POST', '/logout', {
          headers: { cookie, 'x-csrf-token': token },
        })
        expect(out.status).toBe(204)
      }
      // Both sessions are still alive: nothing acted on either of them.
      for (const cookie of [mine, planted]) {
        expect((await app.send('GET', '/me', { headers: { cookie } })).status).toBe(200)
      }
      expect(cookieName.length).toBeGreaterThan(0)
    } finally {
      await done()
    }
  })

  it('never answers 500 to a malformed cookie or Authorization header', async () => {
    const { app, login, cookieName, done } = await setup()
    try {
      const good = await login('ivy')
      const value = good.slice(cookieName.length + 1)
      const cookies = [
        `${cookieName}=`,
        `${cookieName}=%`,
        `${cookieName}=%E0%A4%A`,
        `${cookieName}="${value}`,
        `${cookieName}=${value.slice(0, -1)}`,
        `${cookieName}=${value}${value}`,
        `${cookieName}=${'a'.repeat(8000)}`,
        `${cookieName}=${value.replace('.', '..')}`,
        `;;;=;${cookieName}`,
        `${cookieName}=\u00ff\u00fe`,
        `${cookieName}=__proto__`,
      ]
      for (const cookie of cookies) {
        const reply = await app.send('GET', '/me', { headers: { cookie } })
        expect(reply.status, cookie.slice(0, 40)).toBe(401)
        const post = await app.send('POST', '/echo', { headers: { cookie, ...SAME_ORIGIN } })
        expect(post.status, cookie.slice(0, 40)).toBe(200)
      }
      const authorizations = [
        'Bearer',
        'Bearer ',
        'Bearer \u00ff',
        `Bearer ${'x'.repeat(12_000)}`,
        'Bearer a b',
        'Bearer ..',
        'Bearer=abc',
        'Negotiate',
      ]
      for (const authorization of authorizations) {
        const reply = await app.send('GET', '/me', { headers: { authorization } })
        expect([401], authorization.slice(0, 20)).toContain(reply.status)
      }
    } finally {
      await done()
    }
  })
}
