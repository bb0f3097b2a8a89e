/*
 * Sign-in with identity providers over HTTP, against real OpenID providers (panva's
 * oidc-provider in this process, on 127.0.0.1) and the real server (startServer): the flow, and
 * each refusal of issue 15 as its own test. Every refusal signs nobody in and is audited.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDatabase } from '../../src/auth/db/database.js'
import { freePort } from '../helpers/private-servers.js'
import { ProviderBrowser, startTestProvider, type TestProvider } from '../helpers/oidc-provider.js'
import {
  apiError,
  Client,
  postgresRedisBackend,
  startTestServer,
  testClock,
  type TestServer,
} from './api-harness.js'
import { describeWithPostgresAndRedis } from '../helpers/services.js'

const PASSWORD = 'correct horse battery staple'

describe('sign-in with an OpenID provider', () => {
  let op: TestProvider
  let second: TestProvider
  let server: TestServer
  let base = ''
  let counter = 0

  beforeAll(async () => {
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    op = await startTestProvider({
      redirectUris: [`${base}/auth/oidc/test/callback`, `${base}/auth/oidc/badsecret/callback`],
      cookiePrefix: 'op1',
    })
    second = await startTestProvider({
      redirectUris: [`${base}/auth/oidc/second/callback`],
      cookiePrefix: 'op2',
    })
    server = await startTestServer(
      { kind: 'sqlite' },
      {
        PORT: String(port),
        TESSERA_PUBLIC_URL: base,
        TESSERA_TRUSTED_ORIGINS: 'https://app.example.test',
        // Every request of this file comes from 127.0.0.1: room for all of its callbacks.
        TESSERA_OIDC_CALLBACK_LIMIT: '1000',
        TESSERA_OIDC_PROVIDERS: 'test,second,badsecret',
        TESSERA_OIDC_TEST_ISSUER: op.issuer,
        TESSERA_OIDC_TEST_CLIENT_ID: op.clientId,
        TESSERA_OIDC_TEST_CLIENT_SECRET: op.clientSecret,
        TESSERA_OIDC_SECOND_ISSUER: second.issuer,
        TESSERA_OIDC_SECOND_CLIENT_ID: second.clientId,
        TESSERA_OIDC_SECOND_CLIENT_SECRET: second.clientSecret,
        // The same provider and client, with a wrong secret: every token exchange fails.
        TESSERA_OIDC_BADSECRET_ISSUER: op.issuer,
        TESSERA_OIDC_BADSECRET_CLIENT_ID: op.clientId,
        TESSERA_OIDC_BADSECRET_CLIENT_SECRET: 'not-the-secret',
      },
    )
  })

  afterAll(async () => {
    await server?.stop()
    await op?.close()
    await second?.close()
  })

  /** A login name at the provider nobody else in this file uses. */
  function newLogin(tag: string): string {
    counter += 1
    return `${tag}-${counter}-${Date.now().toString(36)}`
  }

  /** `GET /auth/oidc/<name>`: the provider URL (the state cookie stays in the client's jar). */
  async function begin(client: Client, name: string, query = ''): Promise<URL> {
    const response = await client.request('GET', `/auth/oidc/${name}${query}`, {
      redirect: 'manual',
    })
    expect(response.status).toBe(302)
    return new URL(response.headers.get('location') ?? '')
  }

  async function callback(client: Client, url: URL): Promise<Response> {
    return client.request('GET', `${url.pathname}${url.search}`, { redirect: 'manual' })
  }

  /** The whole round trip: begin, sign in at the provider as `login`, the callback's answer. */
  async function signInWith(
    client: Client,
    name: string,
    login: string,
    query = '',
  ): Promise<Response> {
    const authorization = await begin(client, name, query)
    const back = await new ProviderBrowser().signIn(authorization.href, login)
    return callback(client, back)
  }

  async function session(client: Client): Promise<Response> {
    return client.request('GET', '/auth/session')
  }

  async function auditEvents(
    type: string,
  ): Promise<Array<{ outcome: string; detail: Record<string, unknown>; user_id: string | null }>> {
    const db = await createDatabase({
      dialect: 'sqlite',
      filename: `${server.cwd}/data/tessera.db`,
    })
    try {
      const rows = await db
        .selectFrom('audit_events')
        .selectAll()
        .where('type', '=', type)
        .orderBy('id')
        .execute()
      return rows.map((row) => ({
        outcome: row.outcome,
        user_id: row.user_id,
        detail: JSON.parse(row.detail ?? '{}') as Record<string, unknown>,
      }))
    } finally {
      await db.destroy()
    }
  }

  async function lastRefusal(): Promise<Record<string, unknown> | undefined> {
    const events = await auditEvents('login')
    return events.filter((event) => event.outcome !== 'success').at(-1)?.detail
  }

  it('sends the browser to the provider with PKCE S256, state and nonce, the state in a sealed Lax cookie', async () => {
    const client = new Client(server)
    const response = await client.request('GET', '/auth/oidc/test?returnTo=/app', {
      redirect: 'manual',
    })
    expect(response.status).toBe(302)
    const location = new URL(response.headers.get('location') ?? '')
    expect(location.origin).toBe(op.issuer)
    expect(location.searchParams.get('code_challenge_method')).toBe('S256')
    expect(location.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(location.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{20,}$/)
    expect(location.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{20,}$/)
    expect(location.searchParams.get('redirect_uri')).toBe(`${base}/auth/oidc/test/callback`)
    const cookie = response.headers.getSetCookie().find((line) => line.startsWith('tessera_oidc='))
    expect(cookie).toMatch(/HttpOnly/)
    expect(cookie).toMatch(/SameSite=Lax/)
    expect(cookie).toMatch(/Max-Age=600/)
    // Sealed: neither the state, the nonce nor a verifier can be read from it.
    const value = client.cookies.get('tessera_oidc') ?? ''
    expect(value.startsWith('s1.')).toBe(true)
    expect(value).not.toContain(location.searchParams.get('state') ?? '-')
    expect(value).not.toContain(location.searchParams.get('nonce') ?? '-')
  })

  it('signs a new identity in, creating an account (amr fed), and signs the same identity in again', async () => {
    const login = newLogin('alice')
    const client = new Client(server)
    const response = await signInWith(client, 'test', login, '?returnTo=%2Fapp%3Fx%3D1')
    expect(response.status).toBe(302)
    expect(response.headers.get('location')).toBe('/app?x=1')
    expect(client.cookies.has('tessera_oidc')).toBe(false)
    const me = await session(client)
    expect(me.status).toBe(200)
    const body = (await me.json()) as {
      user: { id: string; email: string }
      session: { amr: string[]; aal: number }
    }
    expect(body.user.email).toBe(`${login}@example.test`)
    expect(body.session.amr).toEqual(['fed'])
    expect(body.session.aal).toBe(1)

    const identities = (await (await client.request('GET', '/auth/identities')).json()) as {
      identities: Array<{ provider: string; subject: string; email: string }>
    }
    expect(identities.identities).toEqual([
      expect.objectContaining({ provider: 'test', subject: login, email: `${login}@example.test` }),
    ])

    const again = new Client(server)
    expect((await signInWith(again, 'test', login)).status).toBe(302)
    const second = (await (await session(again)).json()) as { user: { id: string } }
    expect(second.user.id).toBe(body.user.id)
    const signIns = (await auditEvents('login')).filter(
      (event) => event.outcome === 'success' && event.user_id === body.user.id,
    )
    expect(signIns.map((event) => event.detail.provider)).toEqual(['test', 'test'])
  })

  it('ends the session the browser came back with and issues a new one (no fixation)', async () => {
    const client = new Client(server, Client.sameOrigin(server))
    const email = `${newLogin('fixation')}@example.test`
    expect(
      (await client.request('POST', '/auth/signup', { json: { email, password: PASSWORD } }))
        .status,
    ).toBe(201)
    const before = client.cookies.get('tessera_session') ?? ''
    expect((await signInWith(client, 'test', newLogin('fixation-idp'))).status).toBe(302)
    const after = client.cookies.get('tessera_session') ?? ''
    expect(after).not.toBe(before)
    const stale = new Client(server)
    stale.cookies.set('tessera_session', before)
    expect((await session(stale)).status).toBe(401)
    expect((await session(client)).status).toBe(200)
  })

  it('refuses a callback without the state cookie (nobody signed in, audited)', async () => {
    const client = new Client(server)
    const authorization = await begin(client, 'test')
    const back = await new ProviderBrowser().signIn(authorization.href, newLogin('nocookie'))
    client.cookies.delete('tessera_oidc')
    const response = await callback(client, back)
    expect(response.status).toBe(400)
    expect(response.headers.get('content-type')).toMatch(/text\/html/)
    expect(await response.text()).toContain('Sign-in failed')
    // The URL held a code: no cache, no Referer, no script, no framing.
    expect(response.headers.get('cache-control')).toBe('no-store')
    expect(response.headers.get('referrer-policy')).toBe('no-referrer')
    expect(response.headers.get('content-security-policy')).toMatch(/script-src 'none'/)
    expect(response.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/)
    expect(
      response.headers.getSetCookie().some((line) => /^tessera_oidc=;.*Max-Age=0/.test(line)),
    ).toBe(true)
    expect((await session(client)).status).toBe(401)
    expect(await lastRefusal()).toMatchObject({
      method: 'fed',
      provider: 'test',
      reason: 'state_missing',
    })
  })

  it('refuses a callback whose state is not the one in the cookie', async () => {
    const client = new Client(server)
    const authorization = await begin(client, 'test')
    const back = await new ProviderBrowser().signIn(authorization.href, newLogin('wrongstate'))
    back.searchParams.set('state', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')
    const response = await callback(client, back)
    expect(response.status).toBe(400)
    expect((await session(client)).status).toBe(401)
    expect(await lastRefusal()).toMatchObject({ reason: 'state_mismatch' })
  })

  it('refuses a callback without a state', async () => {
    const client = new Client(server)
    const authorization = await begin(client, 'test')
    const back = await new ProviderBrowser().signIn(authorization.href, newLogin('nostate'))
    back.searchParams.delete('state')
    expect((await callback(client, back)).status).toBe(400)
    expect((await session(client)).status).toBe(401)
    expect(await lastRefusal()).toMatchObject({ reason: 'state_mismatch' })
  })

  it('refuses a replayed callback, even with a copy of the state cookie', async () => {
    const client = new Client(server)
    const authorization = await begin(client, 'test')
    const stateCookie = client.cookies.get('tessera_oidc') ?? ''
    const back = await new ProviderBrowser().signIn(authorization.href, newLogin('replay'))
    expect((await callback(client, back)).status).toBe(302)

    // The same browser: the cookie is gone.
    expect((await callback(client, back)).status).toBe(400)
    expect(await lastRefusal()).toMatchObject({ reason: 'state_missing' })
    // An attacker with the URL and a copy of the cookie: the code was used.
    const attacker = new Client(server)
    attacker.cookies.set('tessera_oidc', stateCookie)
    expect((await callback(attacker, back)).status).toBe(400)
    expect((await session(attacker)).status).toBe(401)
    expect(await lastRefusal()).toMatchObject({ reason: 'token_exchange_failed' })
  })

  it('refuses an ID token with another nonce', async () => {
    const client = new Client(server)
    const authorization = await begin(client, 'test')
    // The provider is asked for another nonce than the one sealed in the cookie: its ID token
    // is valid, signed and fresh, but was made for another sign-in.
    authorization.searchParams.set('nonce', 'another-nonce-than-the-sealed-one')
    const back = await new ProviderBrowser().signIn(authorization.href, newLogin('nonce'))
    expect((await callback(client, back)).status).toBe(400)
    expect((await session(client)).status).toBe(401)
    expect(await lastRefusal()).toMatchObject({ reason: 'nonce_mismatch' })
  })

  it('refuses an answer naming another issuer (RFC 9207 mix-up)', async () => {
    const client = new Client(server)
    const authorization = await begin(client, 'test')
    const back = await new ProviderBrowser().signIn(authorization.href, newLogin('mixup'))
    expect(back.searchParams.get('iss')).toBe(op.issuer)
    back.searchParams.set('iss', second.issuer)
    expect((await callback(client, back)).status).toBe(400)
    expect((await session(client)).status).toBe(401)
    expect(await lastRefusal()).toMatchObject({ reason: 'issuer_mismatch' })
  })

  it('refuses an answer without the iss the provider promises', async () => {
    const client = new Client(server)
    const authorization = await begin(client, 'test')
    const back = await new ProviderBrowser().signIn(authorization.href, newLogin('noiss'))
    back.searchParams.delete('iss')
    expect((await callback(client, back)).status).toBe(400)
    expect(await lastRefusal()).toMatchObject({ reason: 'issuer_mismatch' })
  })

  it('refuses an ID token signed with a key the provider does not publish', async () => {
    const client = new Client(server)
    const authorization = await begin(client, 'test')
    const back = await new ProviderBrowser().signIn(authorization.href, newLogin('stranger'))
    op.faults.unpublishedKey = true
    try {
      expect((await callback(client, back)).status).toBe(400)
    } finally {
      op.faults.unpublishedKey = false
    }
    expect((await session(client)).status).toBe(401)
    expect(await lastRefusal()).toMatchObject({ reason: 'id_token_invalid' })
  })

  it('refuses an expired ID token', async () => {
    const client = new Client(server)
    const authorization = await begin(client, 'test')
    const back = await new ProviderBrowser().signIn(authorization.href, newLogin('expired'))
    op.faults.expiredIdToken = true
    try {
      expect((await callback(client, back)).status).toBe(400)
    } finally {
      op.faults.expiredIdToken = false
    }
    expect((await session(client)).status).toBe(401)
    expect(await lastRefusal()).toMatchObject({ reason: 'id_token_invalid' })
  })

  it('refuses when the token exchange fails (wrong client secret; an error answer)', async () => {
    const client = new Client(server)
    expect((await signInWith(client, 'badsecret', newLogin('badsecret'))).status).toBe(400)
    expect((await session(client)).status).toBe(401)
    expect(await lastRefusal()).toMatchObject({
      provider: 'badsecret',
      reason: 'token_exchange_failed',
    })

    const other = new Client(server)
    const authorization = await begin(other, 'test')
    const back = await new ProviderBrowser().signIn(authorization.href, newLogin('refused'))
    op.faults.refuseTokenExchange = true
    try {
      expect((await callback(other, back)).status).toBe(400)
    } finally {
      op.faults.refuseTokenExchange = false
    }
    expect(await lastRefusal()).toMatchObject({ reason: 'token_exchange_failed' })
  })

  it('never signs in to (or links) an existing account because the e-mail matches', async () => {
    const email = `${newLogin('owner')}@example.test`
    const owner = new Client(server, Client.sameOrigin(server))
    const signup = await owner.request('POST', '/auth/signup', {
      json: { email, password: PASSWORD },
    })
    expect(signup.status).toBe(201)
    const ownerId = ((await signup.json()) as { user: { id: string } }).user.id

    for (const emailVerified of [false, true]) {
      const login = newLogin(`squatter-${String(emailVerified)}`)
      op.accounts.set(login, { email, emailVerified })
      const attacker = new Client(server)
      const response = await signInWith(attacker, 'test', login)
      expect(response.status).toBe(400)
      expect(await response.text()).toContain('already exists')
      expect((await session(attacker)).status).toBe(401)
      expect(await lastRefusal()).toMatchObject({ reason: 'email_in_use' })
    }
    const identities = await owner.request('GET', '/auth/identities')
    expect(await identities.json()).toEqual({ identities: [] })
    expect(
      (await auditEvents('identity_linked')).filter((event) => event.user_id === ownerId),
    ).toEqual([])
  })

  it('ignores a returnTo on another site (no open redirect), keeps one on a trusted origin', async () => {
    for (const [returnTo, expected] of [
      ['https://evil.example', '/'],
      ['https://evil.example/path', '/'],
      ['//evil.example', '/'],
      ['/\\evil.example', '/'],
      ['/.//evil.example', '/'],
      ['javascript:alert(1)', '/'],
      ['https://app.example.test/after', 'https://app.example.test/after'],
    ] as const) {
      const client = new Client(server)
      const response = await signInWith(
        client,
        'test',
        newLogin('return'),
        `?returnTo=${encodeURIComponent(returnTo)}`,
      )
      expect(response.status, returnTo).toBe(302)
      expect(response.headers.get('location'), returnTo).toBe(expected)
      expect((await session(client)).status).toBe(200)
    }
  })

  it('answers 404 for an unknown provider', async () => {
    const client = new Client(server)
    const response = await client.request('GET', '/auth/oidc/nosuch', { redirect: 'manual' })
    expect(response.status).toBe(404)
    expect((await apiError(response)).code).toBe('not_found')
    const back = await client.request('GET', '/auth/oidc/nosuch/callback?code=x&state=y', {
      redirect: 'manual',
    })
    expect(back.status).toBe(404)
  })

  it('links a second provider only for the signed-in user who asks, then unlinks (not the last way in)', async () => {
    const login = newLogin('linker')
    const browser = new Client(server)
    expect((await signInWith(browser, 'test', login)).status).toBe(302)
    const userId = ((await (await session(browser)).json()) as { user: { id: string } }).user.id

    // Asked for with a same-origin POST (the cross-site rule applies), from a fresh session.
    const refusedCrossSite = await browser.request('POST', '/auth/oidc/second/link', {
      json: {},
      headers: { 'sec-fetch-site': 'cross-site' },
    })
    expect(refusedCrossSite.status).toBe(403)
    const asked = await browser.request('POST', '/auth/oidc/second/link', {
      json: { returnTo: '/settings' },
      headers: Client.sameOrigin(server),
    })
    expect(asked.status).toBe(200)
    const { location } = (await asked.json()) as { location: string }
    const back = await new ProviderBrowser().signIn(location, `${login}-elsewhere`)

    // The callback in another browser (or signed in as someone else) links nothing.
    const stranger = new Client(server)
    stranger.cookies.set('tessera_oidc', browser.cookies.get('tessera_oidc') ?? '')
    expect((await callback(stranger, back)).status).toBe(400)
    expect(await lastRefusal()).toMatchObject({ reason: 'link_session_mismatch' })

    // Start again, come back in the same browser: linked.
    const again = await browser.request('POST', '/auth/oidc/second/link', {
      json: { returnTo: '/settings' },
      headers: Client.sameOrigin(server),
    })
    const back2 = await new ProviderBrowser().signIn(
      ((await again.json()) as { location: string }).location,
      `${login}-elsewhere`,
    )
    const linked = await callback(browser, back2)
    expect(linked.status).toBe(302)
    expect(linked.headers.get('location')).toBe('/settings')
    const list = (await (await browser.request('GET', '/auth/identities')).json()) as {
      identities: Array<{ id: string; provider: string }>
    }
    expect(list.identities.map((identity) => identity.provider)).toEqual(['test', 'second'])
    expect(
      (await auditEvents('identity_linked')).filter((event) => event.user_id === userId),
    ).toHaveLength(1)

    // Signing in with the second provider now reaches the same account.
    const other = new Client(server)
    expect((await signInWith(other, 'second', `${login}-elsewhere`)).status).toBe(302)
    expect(((await (await session(other)).json()) as { user: { id: string } }).user.id).toBe(userId)

    const [first, secondIdentity] = list.identities
    const unlink = (id: string): Promise<Response> =>
      browser.request('DELETE', `/auth/identities/${id}`, { headers: Client.sameOrigin(server) })
    expect((await unlink(secondIdentity?.id ?? '')).status).toBe(204)
    // The account has no password: its last identity stays.
    const last = await unlink(first?.id ?? '')
    expect(last.status).toBe(409)
    expect((await apiError(last)).code).toBe('conflict')
    expect((await unlink('no-such-identity')).status).toBe(404)
    const unlinked = await auditEvents('identity_unlinked')
    expect(
      unlinked.filter((event) => event.user_id === userId).map((event) => event.outcome),
    ).toEqual(['success', 'denied'])
  })

  it('refuses to link an identity that belongs to another account', async () => {
    const taken = newLogin('taken')
    expect((await signInWith(new Client(server), 'second', taken)).status).toBe(302)
    const browser = new Client(server)
    expect((await signInWith(browser, 'test', newLogin('wants'))).status).toBe(302)
    const asked = await browser.request('POST', '/auth/oidc/second/link', {
      json: {},
      headers: Client.sameOrigin(server),
    })
    const back = await new ProviderBrowser().signIn(
      ((await asked.json()) as { location: string }).location,
      taken,
    )
    expect((await callback(browser, back)).status).toBe(400)
    expect(await lastRefusal()).toMatchObject({ reason: 'identity_in_use' })
    const list = (await (await browser.request('GET', '/auth/identities')).json()) as {
      identities: unknown[]
    }
    expect(list.identities).toHaveLength(1)
  })

  it('asks for a recent sign-in before a link or an unlink, and a session for the list', async () => {
    const anonymous = new Client(server, Client.sameOrigin(server))
    expect((await anonymous.request('GET', '/auth/identities')).status).toBe(401)
    expect((await anonymous.request('POST', '/auth/oidc/second/link', { json: {} })).status).toBe(
      401,
    )
  })
})

describe('an identity provider that cannot be reached at start', () => {
  it('starts with a warning, answers 503 on its routes, and recovers once the provider is up', async () => {
    const port = await freePort()
    const opPort = await freePort()
    const base = `http://127.0.0.1:${port}`
    const clock = testClock()
    const server = await startTestServer(
      { kind: 'sqlite' },
      {
        PORT: String(port),
        TESSERA_PUBLIC_URL: base,
        TESSERA_OIDC_PROVIDERS: 'later',
        TESSERA_OIDC_LATER_ISSUER: `http://127.0.0.1:${opPort}`,
        TESSERA_OIDC_LATER_CLIENT_ID: 'tessera',
        TESSERA_OIDC_LATER_CLIENT_SECRET: 'a-client-secret-for-tessera-tests',
      },
      { now: clock.now },
    )
    let op: TestProvider | undefined
    try {
      const warning = server.log
        .lines()
        .find((line) => String(line.msg).includes('identity provider later'))
      expect(warning?.level).toBe(40)
      const client = new Client(server)
      const down = await client.request('GET', '/auth/oidc/later', { redirect: 'manual' })
      expect(down.status).toBe(503)
      expect(down.headers.get('retry-after')).toBe('30')
      expect((await apiError(down)).code).toBe('unavailable')
      expect((await client.request('GET', '/healthz')).status).toBe(200)

      op = await startTestProvider({
        redirectUris: [`${base}/auth/oidc/later/callback`],
        port: opPort,
      })
      // Not tried again before the retry interval has passed on the server's clock.
      expect((await client.request('GET', '/auth/oidc/later', { redirect: 'manual' })).status).toBe(
        503,
      )
      clock.advance(31)
      const up = await client.request('GET', '/auth/oidc/later', { redirect: 'manual' })
      expect(up.status).toBe(302)
      expect(up.headers.get('location')?.startsWith(op.issuer)).toBe(true)
    } finally {
      await server.stop()
      await op?.close()
    }
  })
})

describe('linking and unlinking need a recent sign-in', () => {
  it('answers 403 reauthentication_required once the sign-in is older than 10 minutes', async () => {
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    const clock = testClock()
    const op = await startTestProvider({
      redirectUris: [`${base}/auth/oidc/test/callback`],
      cookiePrefix: 'fresh',
    })
    const server = await startTestServer(
      { kind: 'sqlite' },
      {
        PORT: String(port),
        TESSERA_PUBLIC_URL: base,
        TESSERA_OIDC_PROVIDERS: 'test',
        TESSERA_OIDC_TEST_ISSUER: op.issuer,
        TESSERA_OIDC_TEST_CLIENT_ID: op.clientId,
        TESSERA_OIDC_TEST_CLIENT_SECRET: op.clientSecret,
      },
      { now: clock.now },
    )
    try {
      const browser = new Client(server)
      const start = await browser.request('GET', '/auth/oidc/test', { redirect: 'manual' })
      const back = await new ProviderBrowser().signIn(
        start.headers.get('location') ?? '',
        'fresh-user',
      )
      expect(
        (await browser.request('GET', `${back.pathname}${back.search}`, { redirect: 'manual' }))
          .status,
      ).toBe(302)
      const [identity] = (
        (await (await browser.request('GET', '/auth/identities')).json()) as {
          identities: Array<{ id: string }>
        }
      ).identities

      clock.advance(601)
      const link = await browser.request('POST', '/auth/oidc/test/link', {
        json: {},
        headers: Client.sameOrigin(server),
      })
      expect(link.status).toBe(403)
      expect((await apiError(link)).code).toBe('reauthentication_required')
      const unlink = await browser.request('DELETE', `/auth/identities/${identity?.id ?? ''}`, {
        headers: Client.sameOrigin(server),
      })
      expect(unlink.status).toBe(403)
      expect((await apiError(unlink)).code).toBe('reauthentication_required')
      // The list is not a change: it needs only the session.
      expect((await browser.request('GET', '/auth/identities')).status).toBe(200)
    } finally {
      await server.stop()
      await op.close()
    }
  })
})

describeWithPostgresAndRedis('sign-in with an OpenID provider on PostgreSQL + Redis', (urls) => {
  it('signs in, links a second provider, refuses a replay and unlinks, with shared backends', async () => {
    const made = await postgresRedisBackend(urls, 'oidc')
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    const op = await startTestProvider({
      redirectUris: [`${base}/auth/oidc/test/callback`],
      cookiePrefix: 'pg1',
    })
    const other = await startTestProvider({
      redirectUris: [`${base}/auth/oidc/second/callback`],
      cookiePrefix: 'pg2',
    })
    const server = await startTestServer(made.backend, {
      PORT: String(port),
      TESSERA_PUBLIC_URL: base,
      TESSERA_OIDC_PROVIDERS: 'test,second',
      TESSERA_OIDC_TEST_ISSUER: op.issuer,
      TESSERA_OIDC_TEST_CLIENT_ID: op.clientId,
      TESSERA_OIDC_TEST_CLIENT_SECRET: op.clientSecret,
      TESSERA_OIDC_SECOND_ISSUER: other.issuer,
      TESSERA_OIDC_SECOND_CLIENT_ID: other.clientId,
      TESSERA_OIDC_SECOND_CLIENT_SECRET: other.clientSecret,
    })
    try {
      const browser = new Client(server)
      const start = await browser.request('GET', '/auth/oidc/test', { redirect: 'manual' })
      const copy = browser.cookies.get('tessera_oidc') ?? ''
      const back = await new ProviderBrowser().signIn(
        start.headers.get('location') ?? '',
        'pg-user',
      )
      expect(
        (await browser.request('GET', `${back.pathname}${back.search}`, { redirect: 'manual' }))
          .status,
      ).toBe(302)
      const me = (await (await browser.request('GET', '/auth/session')).json()) as {
        session: { amr: string[] }
      }
      expect(me.session.amr).toEqual(['fed'])

      const replay = new Client(server)
      replay.cookies.set('tessera_oidc', copy)
      expect(
        (await replay.request('GET', `${back.pathname}${back.search}`, { redirect: 'manual' }))
          .status,
      ).toBe(400)

      const asked = await browser.request('POST', '/auth/oidc/second/link', {
        json: {},
        headers: Client.sameOrigin(server),
      })
      const linkBack = await new ProviderBrowser().signIn(
        ((await asked.json()) as { location: string }).location,
        'pg-user-2',
      )
      expect(
        (
          await browser.request('GET', `${linkBack.pathname}${linkBack.search}`, {
            redirect: 'manual',
          })
        ).status,
      ).toBe(302)
      const list = (await (await browser.request('GET', '/auth/identities')).json()) as {
        identities: Array<{ id: string; provider: string }>
      }
      expect(list.identities.map((identity) => identity.provider)).toEqual(['test', 'second'])
      const remove = (id: string): Promise<Response> =>
        browser.request('DELETE', `/auth/identities/${id}`, { headers: Client.sameOrigin(server) })
      expect((await remove(list.identities[1]?.id ?? '')).status).toBe(204)
      expect((await remove(list.identities[0]?.id ?? '')).status).toBe(409)
    } finally {
      await server.stop()
      await op.close()
      await other.close()
      await made.done()
    }
  })
})

describe('callbacks per client IP', () => {
  it('answers 429 with Retry-After past TESSERA_OIDC_CALLBACK_LIMIT, signing nobody in', async () => {
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    const op = await startTestProvider({
      redirectUris: [`${base}/auth/oidc/test/callback`],
      cookiePrefix: 'lim',
    })
    const server = await startTestServer(
      { kind: 'sqlite' },
      {
        PORT: String(port),
        TESSERA_PUBLIC_URL: base,
        TESSERA_OIDC_CALLBACK_LIMIT: '2',
        TESSERA_OIDC_PROVIDERS: 'test',
        TESSERA_OIDC_TEST_ISSUER: op.issuer,
        TESSERA_OIDC_TEST_CLIENT_ID: op.clientId,
        TESSERA_OIDC_TEST_CLIENT_SECRET: op.clientSecret,
      },
    )
    try {
      const client = new Client(server)
      await client.request('GET', '/auth/oidc/test', { redirect: 'manual' })
      const copy = client.cookies.get('tessera_oidc') ?? ''
      const guess = '/auth/oidc/test/callback?code=guess&state=guess'
      for (let attempt = 0; attempt < 2; attempt++) {
        client.cookies.set('tessera_oidc', copy)
        expect((await client.request('GET', guess, { redirect: 'manual' })).status).toBe(400)
      }
      client.cookies.set('tessera_oidc', copy)
      const limited = await client.request('GET', guess, { redirect: 'manual' })
      expect(limited.status).toBe(429)
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
      expect((await client.request('GET', '/auth/session')).status).toBe(401)
    } finally {
      await server.stop()
      await op.close()
    }
  })
})
