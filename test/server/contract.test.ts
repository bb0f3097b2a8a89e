/**
 * Black-box tests of the HTTP contract in shared/API.md, written from that document only:
 * every checkable sentence of it is an assertion here, against the real server (`startServer`)
 * on a real socket, once on SQLite and once on PostgreSQL + Redis.
 */
import { createHmac, createPublicKey, randomBytes, randomUUID } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { join } from 'node:path'
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose'
import { createClient } from 'redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { describeWithPostgresAndRedis } from '../helpers/services.js'
import {
  Client,
  createSchema,
  postgresRedisBackend,
  startTestServer,
  testClock,
  waitForMail,
  type Backend,
  type TestClock,
  type TestServer,
} from './api-harness.js'

const SECRET = randomBytes(32).toString('base64url')
const PUBLIC_URL = 'http://tessera.test'
const HTTPS_URL = 'https://auth.example.com'
const TRUSTED_ORIGIN = 'https://app.example.com'
const SESSION_COOKIE = 'tessera_session'
const ERROR_CODES = [
  'invalid_request',
  'invalid_credentials',
  'unauthenticated',
  'forbidden',
  'csrf_failed',
  'rate_limited',
  'invalid_token',
  'token_reused',
  'not_found',
  'conflict',
  'weak_password',
  'payload_too_large',
  'unsupported_media_type',
  'unavailable',
]
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/
const JSON_ENDPOINTS = [
  '/auth/signup',
  '/auth/login',
  '/auth/password',
  '/auth/password-reset/request',
  '/auth/password-reset/confirm',
  '/auth/token',
  '/auth/refresh',
  '/auth/revoke',
]
const DAY = 24 * 3600

interface Servers {
  /** http public URL, a trusted extra origin, a clock the tests move. */
  main: TestServer
  clock: TestClock
  /** https public URL, minimum password length 8, ES256 access tokens. */
  https: TestServer
  /** Signup closed, HS256 access tokens, the first-admin setup; its own clock. */
  closed: TestServer
  adminClock: TestClock
  /** Only for rate limits (they would disturb other cases), RS256 access tokens. */
  limits: TestServer
}

/** Every response the tests see goes through these checks (Conventions: every response). */
function checkEveryResponse(headers: Headers, status: number, path: string, https: boolean): void {
  const where = `${status} ${path}`
  expect(status, where).not.toBe(500)
  const csp = headers.get('content-security-policy')
  expect(csp, `CSP on ${where}`).not.toBeNull()
  const directives = new Map<string, string[]>()
  for (const part of (csp ?? '').split(';')) {
    const [name, ...values] = part.trim().split(/\s+/)
    if (name !== undefined && name !== '') directives.set(name.toLowerCase(), values)
  }
  const scriptSources = directives.get('script-src') ?? directives.get('default-src')
  expect(scriptSources, `script-src or default-src on ${where}`).toBeDefined()
  expect(scriptSources, `no unsafe-inline script on ${where}`).not.toContain("'unsafe-inline'")
  expect(headers.get('x-content-type-options'), where).toBe('nosniff')
  expect(headers.get('referrer-policy'), where).toMatch(
    /^(no-referrer|same-origin|strict-origin|strict-origin-when-cross-origin|origin|no-referrer-when-downgrade|origin-when-cross-origin)(,|$)/,
  )
  const frameAncestors = directives.get('frame-ancestors')
  const denied =
    headers.get('x-frame-options')?.toUpperCase() === 'DENY' ||
    (frameAncestors?.length === 1 && frameAncestors[0] === "'none'")
  expect(denied, `X-Frame-Options DENY or frame-ancestors 'none' on ${where}`).toBe(true)
  if (https) {
    expect(headers.get('strict-transport-security'), where).toMatch(/max-age=[1-9]\d*/)
  }
  // Responses about a user or session: everything under /auth, and the admin panel's pages.
  if (path.startsWith('/auth') || path.startsWith('/admin')) {
    expect(headers.get('cache-control') ?? '', `no-store on ${where}`).toMatch(/no-store/)
  }
}

/** A {@link Client} whose every response is checked against the conventions. */
class Browser extends Client {
  constructor(
    server: TestServer,
    defaults: Record<string, string> = {},
    readonly https = false,
  ) {
    super(server, defaults)
  }

  override async request(...args: Parameters<Client['request']>): Promise<Response> {
    const response = await super.request(...args)
    checkEveryResponse(response.headers, response.status, args[1], this.https)
    return response
  }

  /** The session cookie's value in the jar. */
  session(name = SESSION_COOKIE): string | undefined {
    return this.cookies.get(name)
  }
}

/** A browser on the site: same-origin fetch metadata and the public origin. */
function browser(server: TestServer, https = false): Browser {
  return new Browser(server, { 'sec-fetch-site': 'same-origin', origin: server.origin }, https)
}

/** A command-line client: no cookies of its own, no Origin, no fetch metadata. */
function cli(server: TestServer, https = false): Browser {
  return new Browser(server, {}, https)
}

/** A raw HTTP/1.1 request (for Host, chunked bodies and raw bytes), checked like every other. */
async function raw(
  server: TestServer,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; chunks?: Buffer[] } = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const url = new URL(server.url)
  return new Promise((resolve, reject) => {
    let answered = false
    const req = httpRequest(
      // A connection of its own: a body cut off at the limit must not spoil a pooled socket.
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: options.headers ?? {},
        agent: false,
      },
      (res) => {
        answered = true
        const parts: Buffer[] = []
        res.on('data', (chunk: Buffer) => parts.push(chunk))
        res.on('error', () => undefined)
        res.on('end', () => {
          const headers = new Headers()
          for (const [name, value] of Object.entries(res.headers)) {
            if (value === undefined) continue
            for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one)
          }
          const status = res.statusCode ?? 0
          checkEveryResponse(headers, status, path, false)
          resolve({ status, headers, text: Buffer.concat(parts).toString('utf8') })
        })
      },
    )
    req.on('error', (error) => {
      if (!answered) reject(error)
    })
    const chunks = options.chunks ?? []
    const writeNext = (index: number): void => {
      if (index >= chunks.length) {
        req.end()
        return
      }
      req.write(chunks[index], () => setImmediate(() => writeNext(index + 1)))
    }
    writeNext(0)
  })
}

/** Checks status and the exact error shape, and returns the body. */
async function expectError(
  response: Response,
  status: number,
  code: string,
): Promise<{ error: { code: string; message: string } }> {
  const text = await response.text()
  expect(response.status, text).toBe(status)
  expect(response.headers.get('content-type') ?? '').toMatch(/^application\/json/i)
  return checkErrorBody(text, code)
}

function checkErrorBody(text: string, code: string): { error: { code: string; message: string } } {
  const body = JSON.parse(text) as { error: { code: string; message: string } }
  expect(Object.keys(body), text).toEqual(['error'])
  expect(Object.keys(body.error).sort(), text).toEqual(['code', 'message'])
  expect(body.error.code).toBe(code)
  expect(ERROR_CODES).toContain(body.error.code)
  expect(typeof body.error.message).toBe('string')
  expect(body.error.message.length).toBeGreaterThan(0)
  return body
}

interface ApiUser {
  id: string
  email: string
  emailVerified: boolean
  isAdmin: boolean
  createdAt: string
  groups: string[]
  permissions: string[]
}

interface ApiSession {
  id: string
  createdAt: string
  lastSeenAt: string
  expiresAt: string
  absoluteExpiresAt: string
  authTime: string
  aal: 1 | 2
  amr: string[]
}

function checkTimestamp(value: unknown): void {
  expect(typeof value).toBe('string')
  expect(value).toMatch(ISO_UTC)
  expect(Number.isNaN(Date.parse(value as string))).toBe(false)
}

function checkUser(user: unknown, email: string): ApiUser {
  const u = user as ApiUser
  expect(Object.keys(u).sort()).toEqual(
    ['createdAt', 'email', 'emailVerified', 'groups', 'id', 'isAdmin', 'permissions'].sort(),
  )
  expect(typeof u.emailVerified).toBe('boolean')
  expect(typeof u.id).toBe('string')
  expect(u.id.length).toBeGreaterThan(0)
  expect(u.email).toBe(email)
  expect(typeof u.isAdmin).toBe('boolean')
  checkTimestamp(u.createdAt)
  for (const list of [u.groups, u.permissions]) {
    expect(Array.isArray(list)).toBe(true)
    for (const item of list) expect(typeof item).toBe('string')
  }
  return u
}

function checkSession(session: unknown): ApiSession {
  const s = session as ApiSession
  expect(Object.keys(s).sort()).toEqual(
    [
      'aal',
      'absoluteExpiresAt',
      'amr',
      'authTime',
      'createdAt',
      'expiresAt',
      'id',
      'lastSeenAt',
    ].sort(),
  )
  expect(typeof s.id).toBe('string')
  expect(s.id.length).toBeGreaterThan(0)
  for (const at of [s.createdAt, s.lastSeenAt, s.expiresAt, s.absoluteExpiresAt, s.authTime]) {
    checkTimestamp(at)
  }
  // API.md: aal 1 or 2; amr lists RFC 8176 methods.
  expect([1, 2]).toContain(s.aal)
  expect(Array.isArray(s.amr)).toBe(true)
  for (const method of s.amr) {
    expect(['pwd', 'otp', 'hwk', 'swk', 'user', 'mfa', 'mca', 'fed']).toContain(method)
  }
  return s
}

/** The Set-Cookie line for `name`, with its attributes (names lower-cased). */
function setCookie(
  response: Response,
  name: string,
): { value: string; attributes: Map<string, string> } | undefined {
  for (const line of response.headers.getSetCookie()) {
    const [pair = '', ...rest] = line.split(';')
    const eq = pair.indexOf('=')
    if (pair.slice(0, eq).trim() !== name) continue
    const attributes = new Map<string, string>()
    for (const attribute of rest) {
      const at = attribute.indexOf('=')
      const key = (at === -1 ? attribute : attribute.slice(0, at)).trim().toLowerCase()
      attributes.set(key, at === -1 ? '' : attribute.slice(at + 1).trim())
    }
    return { value: pair.slice(eq + 1), attributes }
  }
  return undefined
}

function uniqueEmail(): string {
  return `u-${randomUUID()}@example.com`
}

function strongPassword(): string {
  return `pw-${randomBytes(12).toString('base64url')}`
}

interface Account {
  client: Browser
  email: string
  password: string
  user: ApiUser
}

async function signUp(server: TestServer, https = false): Promise<Account> {
  const client = browser(server, https)
  const email = uniqueEmail()
  const password = strongPassword()
  const response = await client.request('POST', '/auth/signup', { json: { email, password } })
  const text = await response.text()
  expect(response.status, text).toBe(201)
  const body = JSON.parse(text) as { user: unknown }
  return { client, email, password, user: checkUser(body.user, email) }
}

async function logIn(
  server: TestServer,
  email: string,
  password: string,
  userAgent = 'contract-test',
): Promise<Browser> {
  const client = browser(server)
  const response = await client.request('POST', '/auth/login', {
    json: { email, password },
    headers: { 'user-agent': userAgent },
  })
  expect(response.status, await response.clone().text()).toBe(200)
  return client
}

async function currentSession(client: Browser): Promise<ApiSession> {
  const response = await client.request('GET', '/auth/session')
  const text = await response.text()
  expect(response.status, text).toBe(200)
  return checkSession((JSON.parse(text) as { session: unknown }).session)
}

interface TokenPair {
  access_token: string
  token_type: string
  expires_in: number
  refresh_token: string
}

async function grant(server: TestServer, email: string, password: string): Promise<TokenPair> {
  const response = await cli(server).request('POST', '/auth/token', { json: { email, password } })
  const text = await response.text()
  expect(response.status, text).toBe(200)
  return checkPair(JSON.parse(text))
}

function checkPair(body: unknown): TokenPair {
  const pair = body as TokenPair
  expect(Object.keys(pair).sort()).toEqual(
    ['access_token', 'expires_in', 'refresh_token', 'token_type'].sort(),
  )
  expect(pair.token_type).toBe('Bearer')
  expect(Number.isInteger(pair.expires_in)).toBe(true)
  expect(pair.expires_in).toBeGreaterThan(0)
  expect(pair.access_token.split('.')).toHaveLength(3)
  // Refresh tokens are opaque random strings, not JWTs.
  expect(pair.refresh_token.split('.').length).toBeLessThan(3)
  expect(pair.refresh_token.length).toBeGreaterThanOrEqual(22)
  return pair
}

function bearer(server: TestServer, token: string): Browser {
  return new Browser(server, { authorization: `Bearer ${token}` })
}

function decodePart(part: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

async function jwks(server: TestServer): Promise<JSONWebKeySet> {
  const response = await cli(server).request('GET', '/.well-known/jwks.json')
  expect(response.status).toBe(200)
  return (await response.json()) as JSONWebKeySet
}

/** Every value of a metric line whose labels include all of `labels`, summed. */
async function metric(
  server: TestServer,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const response = await cli(server).request('GET', '/metrics')
  expect(response.status).toBe(200)
  const text = await response.text()
  let total: number | undefined
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    if (!Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))) {
      continue
    }
    total = (total ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return total
}

async function hasSession(client: Browser): Promise<boolean> {
  const response = await client.request('GET', '/auth/session')
  if (response.status === 200) return true
  await expectError(response, 401, 'unauthenticated')
  return false
}

/** The whole contract against one backend; `storeDump` reads what the stores hold, as text. */
function contractSuite(
  makeBackend: (tag: string) => Promise<{ backend: Backend; done: () => Promise<void> }>,
  storeDump: (server: TestServer, backend: Backend) => Promise<string>,
): void {
  const servers = {} as Servers
  const backends = new Map<TestServer, Backend>()
  const cleanups: (() => Promise<void>)[] = []

  beforeAll(async () => {
    const start = async (
      tag: string,
      env: Record<string, string>,
      now?: () => number,
    ): Promise<TestServer> => {
      const { backend, done } = await makeBackend(tag)
      const server = await startTestServer(
        backend,
        { TESSERA_SECRET: SECRET, ...env },
        now === undefined ? {} : { now },
      )
      backends.set(server, backend)
      cleanups.push(async () => {
        await server.stop()
        await done()
      })
      return server
    }
    servers.clock = testClock()
    servers.adminClock = testClock()
    const [main, https, closed, limits] = await Promise.all([
      start(
        'contract_main',
        { TESSERA_PUBLIC_URL: PUBLIC_URL, TESSERA_TRUSTED_ORIGINS: TRUSTED_ORIGIN },
        servers.clock.now,
      ),
      start('contract_https', {
        TESSERA_PUBLIC_URL: HTTPS_URL,
        TESSERA_PASSWORD_MIN_LENGTH: '8',
        TESSERA_JWT_ALG: 'ES256',
        TESSERA_SESSION_IDLE: '15m',
        TESSERA_SESSION_ABSOLUTE: '12h',
        TESSERA_ACCESS_TTL: '600',
      }),
      start(
        'contract_closed',
        { TESSERA_PUBLIC_URL: PUBLIC_URL, TESSERA_SIGNUP: 'closed', TESSERA_JWT_ALG: 'HS256' },
        servers.adminClock.now,
      ),
      start('contract_limits', { TESSERA_PUBLIC_URL: PUBLIC_URL, TESSERA_JWT_ALG: 'RS256' }),
    ])
    Object.assign(servers, { main, https, closed, limits })
  })

  afterAll(async () => {
    await Promise.all(cleanups.map((cleanup) => cleanup()))
  })

  describe('conventions', () => {
    it('answers bodies that are not valid JSON with 400 invalid_request on every JSON endpoint', async () => {
      const client = cli(servers.main)
      // /auth/password needs a session first: it is sent with one (same-origin).
      const signedIn = (await signUp(servers.main)).client
      for (const path of JSON_ENDPOINTS) {
        const sender = path === '/auth/password' ? signedIn : client
        for (const body of ['{', '{"email": "a@b.c",}', 'nope', '', '\u0000']) {
          const response = await sender.request('POST', path, {
            body,
            headers: { 'content-type': 'application/json' },
          })
          await expectError(response, 400, 'invalid_request')
        }
      }
    })

    it('answers bytes that are not UTF-8 with 400 invalid_request', async () => {
      const response = await raw(servers.main, 'POST', '/auth/login', {
        headers: { 'content-type': 'application/json', 'content-length': '30' },
        chunks: [
          Buffer.concat([
            Buffer.from('{"email":"'),
            Buffer.from([0xff, 0xfe, 0xc3]),
            Buffer.from('","password":"x"}'),
          ]),
        ],
      })
      expect(response.status).toBe(400)
      checkErrorBody(response.text, 'invalid_request')
    })

    it('answers the wrong types with 400 invalid_request, never a 500', async () => {
      const client = cli(servers.main)
      const bodies: unknown[] = [
        [],
        null,
        'text',
        42,
        { email: 42, password: 'long enough password' },
        { email: 'a@example.com', password: ['x'] },
        { email: { $ne: null }, password: { $ne: null } },
        { email: 'a@example.com' },
        {},
      ]
      for (const path of ['/auth/signup', '/auth/login', '/auth/token']) {
        for (const json of bodies) {
          await expectError(await client.request('POST', path, { json }), 400, 'invalid_request')
        }
      }
      for (const [path, json] of [
        ['/auth/password-reset/request', { email: 7 }],
        ['/auth/password-reset/confirm', { token: 1, newPassword: true }],
        ['/auth/refresh', { refresh_token: 5 }],
        ['/auth/revoke', { token: null }],
        ['/auth/revoke', {}],
      ] as const) {
        await expectError(await client.request('POST', path, { json }), 400, 'invalid_request')
      }
      const account = await signUp(servers.main)
      await expectError(
        await account.client.request('POST', '/auth/password', {
          json: { currentPassword: account.password, newPassword: 123456789012345 },
        }),
        400,
        'invalid_request',
      )
    })

    it('answers an unknown or missing content type with 415 unsupported_media_type', async () => {
      const client = cli(servers.main)
      // /auth/password needs a session first: it is sent with one (same-origin).
      const signedIn = (await signUp(servers.main)).client
      const body = JSON.stringify({ email: uniqueEmail(), password: strongPassword() })
      for (const path of JSON_ENDPOINTS) {
        const sender = path === '/auth/password' ? signedIn : client
        for (const type of [
          'text/plain',
          'text/plain;charset=UTF-8',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
          'application/jsonx',
          'application/json-patch+json',
          'application/xml',
          'json',
        ]) {
          const response = await sender.request('POST', path, {
            body,
            headers: { 'content-type': type },
          })
          await expectError(response, 415, 'unsupported_media_type')
        }
      }
      // No Content-Type at all (fetch would add text/plain for a string body).
      const bare = await raw(servers.main, 'POST', '/auth/signup', { chunks: [Buffer.from(body)] })
      expect(bare.status).toBe(415)
      checkErrorBody(bare.text, 'unsupported_media_type')
      // Nothing reached the handler: the account does not exist.
      const email = (JSON.parse(body) as { email: string }).email
      const login = await client.request('POST', '/auth/login', {
        json: { email, password: (JSON.parse(body) as { password: string }).password },
      })
      await expectError(login, 401, 'invalid_credentials')
    })

    it('accepts application/json whatever its case or parameters', async () => {
      for (const type of [
        'application/json',
        'Application/JSON; charset=utf-8',
        'APPLICATION/JSON',
        'application/json;charset=UTF-8',
        'application/json ; charset="utf-8"',
      ]) {
        const email = uniqueEmail()
        const response = await cli(servers.main).request('POST', '/auth/signup', {
          body: JSON.stringify({ email, password: strongPassword() }),
          headers: { 'content-type': type },
        })
        expect(response.status, type).toBe(201)
        checkUser(((await response.json()) as { user: unknown }).user, email)
      }
    })

    it('answers a body over 64 KiB with 413 payload_too_large, and takes one of exactly 64 KiB', async () => {
      const client = cli(servers.main)
      const signedIn = (await signUp(servers.main)).client
      const sized = (bytes: number): string => {
        const head = '{"email":"x@example.com","password":"'
        const tail = '"}'
        return head + 'a'.repeat(bytes - head.length - tail.length) + tail
      }
      for (const path of JSON_ENDPOINTS) {
        const sender = path === '/auth/password' ? signedIn : client
        const response = await sender.request('POST', path, {
          body: sized(64 * 1024 + 1),
          headers: { 'content-type': 'application/json' },
        })
        await expectError(response, 413, 'payload_too_large')
      }
      const exact = await client.request('POST', '/auth/login', {
        body: sized(64 * 1024),
        headers: { 'content-type': 'application/json' },
      })
      expect(exact.status).not.toBe(413)
      expect(exact.status).toBeLessThan(500)
      await exact.body?.cancel()
      // Chunked, without Content-Length: cut off at the limit all the same.
      const chunked = await raw(servers.main, 'POST', '/auth/signup', {
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        chunks: [
          Buffer.from('{"email":"c@example.com","password":"'),
          ...Array.from({ length: 20 }, () => Buffer.alloc(8 * 1024, 'a')),
          Buffer.from('"}'),
        ],
      })
      expect(chunked.status).toBe(413)
      checkErrorBody(chunked.text, 'payload_too_large')
    })

    it('gives unknown paths the error shape', async () => {
      const client = cli(servers.main)
      await expectError(await client.request('GET', '/no/such/path'), 404, 'not_found')
      await expectError(
        await client.request('POST', '/auth/nothing', { json: {} }),
        404,
        'not_found',
      )
      const wrongMethod = await client.request('PUT', '/auth/login', { json: {} })
      expect(wrongMethod.status).toBeGreaterThanOrEqual(400)
      expect(wrongMethod.status).toBeLessThan(500)
      const body = JSON.parse(await wrongMethod.text()) as { error: { code: string } }
      checkErrorBody(JSON.stringify(body), body.error.code)
    })

    it('never builds a link from the Host header', async () => {
      const account = await signUp(servers.main)
      const before = servers.main.mails().length
      const response = await raw(servers.main, 'POST', '/auth/password-reset/request', {
        headers: {
          host: 'evil.example',
          'x-forwarded-host': 'evil.example',
          'x-forwarded-proto': 'https',
          'content-type': 'application/json',
        },
        chunks: [Buffer.from(JSON.stringify({ email: account.email }))],
      })
      expect(response.status).toBe(202)
      const mail = unfold(await waitForMail(servers.main, before + 1))
      expect(mail).not.toContain('evil.example')
      expect(mail).toContain(`${PUBLIC_URL}/reset?token=`)
    })

    it('gives 429 with Retry-After in seconds after repeated failed logins', async () => {
      const server = servers.limits
      const account = await signUp(server)
      const client = cli(server)
      let limited: Response | undefined
      for (let attempt = 0; attempt < 60 && limited === undefined; attempt++) {
        const response = await client.request('POST', '/auth/login', {
          json: { email: account.email, password: 'wrong password here' },
        })
        if (response.status === 429) limited = response
        else await expectError(response, 401, 'invalid_credentials')
      }
      expect(limited, 'a 429 within 60 failed logins').toBeDefined()
      const response = limited as Response
      expect(response.headers.get('retry-after')).toMatch(/^[1-9]\d*$/)
      await expectError(response, 429, 'rate_limited')
      // The token grant follows the same rules.
      const token = await client.request('POST', '/auth/token', {
        json: { email: account.email, password: 'wrong password here' },
      })
      expect(token.headers.get('retry-after')).toMatch(/^[1-9]\d*$/)
      await expectError(token, 429, 'rate_limited')
      expect(await metric(server, 'tessera_rate_limited_total')).toBeGreaterThanOrEqual(2)
    })

    it('gives timestamps as ISO 8601 UTC strings and ids as strings', async () => {
      const account = await signUp(servers.main)
      const session = await currentSession(account.client)
      expect(session.id).not.toBe(account.user.id)
      // The id is not the cookie's secret.
      expect(account.client.session()).not.toContain(session.id)
    })
  })

  describe('session cookie', () => {
    it('is tessera_session, HttpOnly, SameSite=Lax, Path=/, no Domain, not Secure over http', async () => {
      const client = browser(servers.main)
      const email = uniqueEmail()
      const password = strongPassword()
      for (const response of [
        await client.request('POST', '/auth/signup', { json: { email, password } }),
        await client.request('POST', '/auth/login', { json: { email, password } }),
      ]) {
        const cookie = setCookie(response, SESSION_COOKIE)
        expect(cookie, 'tessera_session is set').toBeDefined()
        const attributes = cookie?.attributes ?? new Map<string, string>()
        expect(attributes.has('httponly')).toBe(true)
        expect(attributes.get('samesite')?.toLowerCase()).toBe('lax')
        expect(attributes.get('path')).toBe('/')
        expect(attributes.has('domain')).toBe(false)
        expect(attributes.has('secure')).toBe(false)
        expect(setCookie(response, `__Host-${SESSION_COOKIE}`)).toBeUndefined()
      }
    })

    it('is __Host-tessera_session and Secure when the public URL is https, with HSTS', async () => {
      const client = browser(servers.https, true)
      const email = uniqueEmail()
      const password = strongPassword()
      const signup = await client.request('POST', '/auth/signup', { json: { email, password } })
      expect(signup.status).toBe(201)
      const login = await client.request('POST', '/auth/login', { json: { email, password } })
      expect(login.status).toBe(200)
      for (const response of [signup, login]) {
        expect(setCookie(response, SESSION_COOKIE)).toBeUndefined()
        const cookie = setCookie(response, `__Host-${SESSION_COOKIE}`)
        expect(cookie).toBeDefined()
        const attributes = cookie?.attributes ?? new Map<string, string>()
        expect(attributes.has('secure')).toBe(true)
        expect(attributes.has('httponly')).toBe(true)
        expect(attributes.get('samesite')?.toLowerCase()).toBe('lax')
        expect(attributes.get('path')).toBe('/')
        expect(attributes.has('domain')).toBe(false)
      }
      expect(await hasSession(client)).toBe(true)
      const logout = await client.request('POST', '/auth/logout')
      expect(logout.status).toBe(204)
      const cleared = setCookie(logout, `__Host-${SESSION_COOKIE}`)
      expect(cleared?.attributes.has('secure')).toBe(true)
      expect(cleared?.attributes.get('path')).toBe('/')
    })

    it('rejects a value whose signature does not verify with 401', async () => {
      const account = await signUp(servers.main)
      const value = account.client.session() ?? ''
      expect(value).not.toBe('')
      const flip = (text: string, at: number): string =>
        text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1)
      for (const forged of [
        flip(value, value.length - 1),
        flip(value, 0),
        flip(value, Math.floor(value.length / 2)),
        value.slice(0, -4),
        `${value}x`,
        value.split('.')[0] ?? 'x',
        'garbage',
        '',
      ]) {
        if (forged === value) continue
        const client = new Browser(servers.main, { cookie: `${SESSION_COOKIE}=${forged}` })
        await expectError(await client.request('GET', '/auth/session'), 401, 'unauthenticated')
      }
      expect(await hasSession(account.client)).toBe(true)
    })

    it('ends after the idle time (sliding) and after the absolute time, from the server record', async () => {
      const { clock } = servers
      const account = await signUp(servers.main)
      const session = await currentSession(account.client)
      // Defaults: 7 days idle, 30 days absolute.
      expect(Date.parse(session.absoluteExpiresAt) - Date.parse(session.createdAt)).toBe(
        30 * DAY * 1000,
      )
      expect(Date.parse(session.expiresAt) - Date.parse(session.lastSeenAt)).toBe(7 * DAY * 1000)
      // Sliding: active every 6 days, it lives past 7 days ...
      for (let day = 6; day <= 24; day += 6) {
        clock.advance(6 * DAY)
        expect(await hasSession(account.client), `day ${day}`).toBe(true)
      }
      // ... but not past 30 days after login.
      clock.advance(6 * DAY + 1)
      expect(await hasSession(account.client)).toBe(false)
      // Idle: 7 days without a request ends it.
      const idle = await logIn(servers.main, account.email, account.password)
      clock.advance(7 * DAY + 1)
      expect(await hasSession(idle)).toBe(false)
      // GET /auth/sessions lists live sessions only: the two that ended are not there.
      const fresh = await logIn(servers.main, account.email, account.password)
      const listed = (await (await fresh.request('GET', '/auth/sessions')).json()) as {
        sessions: { id: string }[]
      }
      expect(listed.sessions.map((s) => s.id)).toEqual([(await currentSession(fresh)).id])
    })
  })

  describe('cross-site request protection', () => {
    it('refuses Sec-Fetch-Site cross-site or same-site with 403 csrf_failed, login and signup included, changing nothing', async () => {
      const account = await signUp(servers.main)
      for (const site of ['cross-site', 'same-site']) {
        const client = new Browser(servers.main, { 'sec-fetch-site': site })
        const email = uniqueEmail()
        const password = strongPassword()
        const signup = await client.request('POST', '/auth/signup', { json: { email, password } })
        expect(setCookie(signup, SESSION_COOKIE)).toBeUndefined()
        await expectError(signup, 403, 'csrf_failed')
        const login = await client.request('POST', '/auth/login', {
          json: { email: account.email, password: account.password },
        })
        expect(setCookie(login, SESSION_COOKIE)).toBeUndefined()
        await expectError(login, 403, 'csrf_failed')
        await expectError(
          await client.request('POST', '/auth/token', {
            json: { email: account.email, password: account.password },
          }),
          403,
          'csrf_failed',
        )
        // The signup did not happen: the e-mail is still free.
        const later = await cli(servers.main).request('POST', '/auth/signup', {
          json: { email, password },
        })
        expect(later.status).toBe(201)
        // A cookie-authenticated request from another site changes nothing either.
        const other = await logIn(servers.main, account.email, account.password)
        const attack = new Browser(servers.main, {
          'sec-fetch-site': site,
          cookie: `${SESSION_COOKIE}=${account.client.session() ?? ''}`,
        })
        await expectError(await attack.request('DELETE', '/auth/sessions'), 403, 'csrf_failed')
        await expectError(await attack.request('POST', '/auth/logout'), 403, 'csrf_failed')
        expect(await hasSession(other)).toBe(true)
        expect(await hasSession(account.client)).toBe(true)
        // Every unsafe method, whatever the path.
        for (const method of ['PUT', 'PATCH', 'DELETE', 'POST']) {
          await expectError(
            await attack.request(method, '/auth/session', { json: {} }),
            403,
            'csrf_failed',
          )
        }
      }
    })

    it('refuses an untrusted Origin with 403 csrf_failed, and serves the public and trusted origins', async () => {
      const account = await signUp(servers.main)
      for (const origin of [
        'https://evil.example',
        'null',
        'http://tessera.test.evil.example',
        'https://tessera.test',
        'http://tessera.test:8080',
        'https://app.example.com.evil.example',
      ]) {
        const email = uniqueEmail()
        for (const headers of [
          { origin },
          { origin, 'sec-fetch-site': 'same-origin' },
          { origin, 'sec-fetch-site': 'none' },
        ]) {
          const client = new Browser(servers.main, headers)
          const signup = await client.request('POST', '/auth/signup', {
            json: { email, password: strongPassword() },
          })
          await expectError(signup, 403, 'csrf_failed')
          await expectError(
            await client.request('POST', '/auth/login', {
              json: { email: account.email, password: account.password },
            }),
            403,
            'csrf_failed',
          )
        }
        const free = await cli(servers.main).request('POST', '/auth/signup', {
          json: { email, password: strongPassword() },
        })
        expect(free.status, origin).toBe(201)
      }
      for (const origin of [PUBLIC_URL, TRUSTED_ORIGIN]) {
        const client = new Browser(servers.main, { origin })
        const login = await client.request('POST', '/auth/login', {
          json: { email: account.email, password: account.password },
        })
        expect(login.status, origin).toBe(200)
      }
    })

    it('needs same-origin, a trusted Origin or a valid X-CSRF-Token on a cookie-authenticated unsafe request', async () => {
      const account = await signUp(servers.main)
      const cookie = `${SESSION_COOKIE}=${account.client.session() ?? ''}`
      const target = await logIn(servers.main, account.email, account.password)
      const targetId = (await currentSession(target)).id
      const bare = new Browser(servers.main, { cookie })
      const none = new Browser(servers.main, { cookie, 'sec-fetch-site': 'none' })
      const other = await signUp(servers.main)
      const otherToken = (
        (await (await other.client.request('GET', '/auth/csrf')).json()) as { token: string }
      ).token
      for (const [client, headers] of [
        [bare, {}],
        [none, {}],
        [bare, { 'x-csrf-token': 'garbage' }],
        [bare, { 'x-csrf-token': '' }],
        [bare, { 'x-csrf-token': otherToken }],
      ] as const) {
        await expectError(
          await client.request('DELETE', `/auth/sessions/${targetId}`, { headers }),
          403,
          'csrf_failed',
        )
        await expectError(
          await client.request('POST', '/auth/password', {
            json: { currentPassword: account.password, newPassword: strongPassword() },
            headers,
          }),
          403,
          'csrf_failed',
        )
        await expectError(
          await client.request('POST', '/auth/logout', { headers }),
          403,
          'csrf_failed',
        )
      }
      // Nothing changed.
      expect(await hasSession(target)).toBe(true)
      expect(await hasSession(account.client)).toBe(true)
      await logIn(servers.main, account.email, account.password)
      // A valid token bound to this session is enough.
      const csrf = await bare.request('GET', '/auth/csrf')
      expect(csrf.status).toBe(200)
      const body = (await csrf.json()) as { token: string }
      expect(Object.keys(body)).toEqual(['token'])
      expect(typeof body.token).toBe('string')
      const revoke = await bare.request('DELETE', `/auth/sessions/${targetId}`, {
        headers: { 'x-csrf-token': body.token },
      })
      expect(revoke.status).toBe(204)
      expect(await hasSession(target)).toBe(false)
      // So are same-origin fetch metadata and a trusted Origin.
      const third = await logIn(servers.main, account.email, account.password)
      const thirdId = (await currentSession(third)).id
      const sameOrigin = new Browser(servers.main, { cookie, 'sec-fetch-site': 'same-origin' })
      expect((await sameOrigin.request('DELETE', `/auth/sessions/${thirdId}`)).status).toBe(204)
      const fourth = await logIn(servers.main, account.email, account.password)
      const fourthId = (await currentSession(fourth)).id
      const trusted = new Browser(servers.main, { cookie, origin: TRUSTED_ORIGIN })
      expect((await trusted.request('DELETE', `/auth/sessions/${fourthId}`)).status).toBe(204)
    })

    it('GET /auth/csrf without a session is no 500', async () => {
      const response = await cli(servers.main).request('GET', '/auth/csrf')
      expect(response.status).toBeLessThan(500)
      await response.text()
    })

    it('serves a request without cookies and without these headers', async () => {
      const account = await signUp(servers.main)
      const client = cli(servers.main)
      const login = await client.request('POST', '/auth/login', {
        json: { email: account.email, password: account.password },
      })
      expect(login.status).toBe(200)
      const pair = await grant(servers.main, account.email, account.password)
      const api = bearer(servers.main, pair.access_token)
      expect((await api.request('DELETE', '/auth/sessions')).status).toBe(204)
      const reset = await cli(servers.main).request('POST', '/auth/password-reset/request', {
        json: { email: account.email },
      })
      expect(reset.status).toBe(202)
    })
  })

  describe('POST /auth/signup', () => {
    it('gives 201 {user} and a session cookie', async () => {
      const client = browser(servers.main)
      const email = uniqueEmail()
      const response = await client.request('POST', '/auth/signup', {
        json: { email, password: strongPassword() },
      })
      expect(response.status).toBe(201)
      expect(setCookie(response, SESSION_COOKIE)?.value).toBeTruthy()
      const body = (await response.json()) as { user: unknown }
      expect(Object.keys(body)).toEqual(['user'])
      const user = checkUser(body.user, email)
      expect(user.isAdmin).toBe(false)
      const session = (await (await client.request('GET', '/auth/session')).json()) as {
        user: ApiUser
      }
      expect(session.user).toEqual(user)
    })

    it('takes nothing but e-mail and password from the body (no admin by mass assignment)', async () => {
      for (const extra of [
        { isAdmin: true, permissions: ['admin.access'], groups: ['admins'] },
        JSON.parse('{"__proto__": {"isAdmin": true}}') as Record<string, unknown>,
      ]) {
        const email = uniqueEmail()
        const client = browser(servers.main)
        const response = await client.request('POST', '/auth/signup', {
          body: JSON.stringify({ email, password: strongPassword(), ...extra }).replace(
            '"email"',
            extra.isAdmin === true ? '"email"' : '"__proto__":{"isAdmin":true},"email"',
          ),
          headers: { 'content-type': 'application/json' },
        })
        expect([201, 400]).toContain(response.status)
        if (response.status === 400) {
          await expectError(response, 400, 'invalid_request')
          continue
        }
        const user = checkUser(((await response.json()) as { user: unknown }).user, email)
        expect(user.isAdmin).toBe(false)
        expect(user.permissions).toEqual([])
        expect(user.groups).toEqual([])
      }
    })

    it('answers odd values and ids without a 500', async () => {
      const account = await signUp(servers.main)
      for (const json of [
        { email: `${'a'.repeat(5000)}@example.com`, password: strongPassword() },
        { email: 'a\u0000b@example.com', password: strongPassword() },
        { email: '\ud800@example.com', password: strongPassword() },
        { email: uniqueEmail(), password: `${strongPassword()}\ud800` },
        { email: uniqueEmail(), password: `${strongPassword()}\u0000` },
        { email: 'not an e-mail', password: strongPassword() },
      ]) {
        for (const path of ['/auth/signup', '/auth/login', '/auth/token']) {
          const response = await cli(servers.main).request('POST', path, { json })
          const text = await response.text()
          expect(response.status, `${path} ${text}`).toBeLessThan(500)
          if (response.status >= 400) {
            const body = JSON.parse(text) as { error: { code: string } }
            checkErrorBody(text, body.error.code)
          }
        }
      }
      // An address that cannot be stored as given (a lone surrogate has no UTF-8) is refused.
      await expectError(
        await cli(servers.main).request('POST', '/auth/signup', {
          json: { email: '\ud800@example.com', password: strongPassword() },
        }),
        400,
        'invalid_request',
      )
      for (const id of ['%00', 'x'.repeat(5000), '..%2F..', '%ZZ', "'; DROP TABLE users; --"]) {
        const response = await account.client.request('DELETE', `/auth/sessions/${id}`)
        expect(response.status, id).toBeGreaterThanOrEqual(400)
        expect(response.status).toBeLessThan(500)
        await response.text()
      }
      expect(await hasSession(account.client)).toBe(true)
    })

    it('gives 409 conflict when the e-mail is taken', async () => {
      const account = await signUp(servers.main)
      const client = browser(servers.main)
      const response = await client.request('POST', '/auth/signup', {
        json: { email: account.email, password: strongPassword() },
      })
      expect(setCookie(response, SESSION_COOKIE)).toBeUndefined()
      await expectError(response, 409, 'conflict')
      // The first owner's password still works.
      await logIn(servers.main, account.email, account.password)
    })

    it('gives 400 weak_password under 12 characters, over 128, or on the common list', async () => {
      const client = browser(servers.main)
      for (const password of [
        'a1b2c3d4e5f',
        '🔑'.repeat(11),
        'x'.repeat(129),
        '🔑'.repeat(129),
        'unbelievable',
        'UnBelievable',
        'masturbation',
      ]) {
        const email = uniqueEmail()
        const response = await client.request('POST', '/auth/signup', {
          json: { email, password },
        })
        expect(setCookie(response, SESSION_COOKIE)).toBeUndefined()
        await expectError(response, 400, 'weak_password')
        // Not created.
        expect(
          (
            await cli(servers.main).request('POST', '/auth/signup', {
              json: { email, password: strongPassword() },
            })
          ).status,
        ).toBe(201)
      }
      // Refused though of legal length: breached, or easy to guess (issue 12, item 7).
      for (const password of ['password1234', 'a1b2c3d4e5f6', 'x'.repeat(128), '🔑'.repeat(12)]) {
        await expectError(
          await client.request('POST', '/auth/signup', {
            json: { email: uniqueEmail(), password },
          }),
          400,
          'weak_password',
        )
      }
      const emoji = '🦊🐙🌵🎻🚲🧭🪁🍋🦉🌋🎲🪐'
      for (const password of [
        'k7#Vq2!mZp9x',
        randomBytes(96).toString('base64url'),
        emoji,
        [...emoji.repeat(11)].slice(0, 128).join(''),
      ]) {
        const response = await client.request('POST', '/auth/signup', {
          json: { email: uniqueEmail(), password },
        })
        expect(response.status, password).toBe(201)
      }
    })

    it('takes configured limits (TESSERA_PASSWORD_MIN_LENGTH=8)', async () => {
      const client = browser(servers.https, true)
      expect(
        (
          await client.request('POST', '/auth/signup', {
            json: { email: uniqueEmail(), password: 'k7#Qz!2mW' },
          })
        ).status,
      ).toBe(201)
      for (const password of ['k7#Qz!2', 'password', 'PassWord', 'k7#Qz!2m']) {
        await expectError(
          await client.request('POST', '/auth/signup', {
            json: { email: uniqueEmail(), password },
          }),
          400,
          'weak_password',
        )
      }
    })

    it('takes configured durations (TESSERA_SESSION_IDLE=15m, TESSERA_SESSION_ABSOLUTE=12h, TESSERA_ACCESS_TTL=600)', async () => {
      const account = await signUp(servers.https, true)
      const session = await currentSession(account.client)
      expect(Date.parse(session.absoluteExpiresAt) - Date.parse(session.createdAt)).toBe(
        12 * 3600 * 1000,
      )
      expect(Date.parse(session.expiresAt) - Date.parse(session.lastSeenAt)).toBe(15 * 60 * 1000)
      const pair = await grant(servers.https, account.email, account.password)
      expect(pair.expires_in).toBe(600)
      const claims = decodePart(pair.access_token.split('.')[1] ?? '')
      expect((claims.exp as number) - (claims.iat as number)).toBe(600)
    })

    it('gives 403 forbidden when TESSERA_SIGNUP=closed', async () => {
      const response = await browser(servers.closed).request('POST', '/auth/signup', {
        json: { email: uniqueEmail(), password: strongPassword() },
      })
      expect(setCookie(response, SESSION_COOKIE)).toBeUndefined()
      await expectError(response, 403, 'forbidden')
    })
  })

  describe('POST /auth/login', () => {
    it('gives 200 {user, session} and a new session cookie, never reusing the one sent', async () => {
      const account = await signUp(servers.main)
      const before = account.client.session()
      const oldSession = await currentSession(account.client)
      const response = await account.client.request('POST', '/auth/login', {
        json: { email: account.email, password: account.password },
      })
      expect(response.status).toBe(200)
      const cookie = setCookie(response, SESSION_COOKIE)
      expect(cookie?.value).toBeTruthy()
      expect(cookie?.value).not.toBe(before)
      const body = (await response.json()) as { user: unknown; session: unknown }
      expect(Object.keys(body).sort()).toEqual(['session', 'user'])
      expect(checkUser(body.user, account.email)).toEqual(account.user)
      const session = checkSession(body.session)
      expect(session.id).not.toBe(oldSession.id)
      expect((await currentSession(account.client)).id).toBe(session.id)
    })

    it('gives 401 invalid_credentials with the same body for an unknown e-mail and a wrong password', async () => {
      const account = await signUp(servers.main)
      const client = browser(servers.main)
      const unknown = await client.request('POST', '/auth/login', {
        json: { email: uniqueEmail(), password: account.password },
      })
      const wrong = await client.request('POST', '/auth/login', {
        json: { email: account.email, password: `${account.password}x` },
      })
      expect(setCookie(unknown, SESSION_COOKIE)).toBeUndefined()
      expect(setCookie(wrong, SESSION_COOKIE)).toBeUndefined()
      const a = await expectError(unknown, 401, 'invalid_credentials')
      const b = await expectError(wrong, 401, 'invalid_credentials')
      expect(a).toEqual(b)
      // The token grant answers the same.
      const token = await cli(servers.main).request('POST', '/auth/token', {
        json: { email: uniqueEmail(), password: account.password },
      })
      expect(await expectError(token, 401, 'invalid_credentials')).toEqual(a)
    })
  })

  describe('POST /auth/logout', () => {
    it('gives 204, clears the cookie, and a copy of the old cookie is rejected afterwards', async () => {
      const account = await signUp(servers.main)
      const copy = new Browser(servers.main, {
        cookie: `${SESSION_COOKIE}=${account.client.session() ?? ''}`,
      })
      expect(await hasSession(copy)).toBe(true)
      const response = await account.client.request('POST', '/auth/logout')
      expect(response.status).toBe(204)
      expect(await response.text()).toBe('')
      const cleared = setCookie(response, SESSION_COOKIE)
      expect(cleared).toBeDefined()
      const attributes = cleared?.attributes ?? new Map<string, string>()
      const expired =
        cleared?.value === '' ||
        attributes.get('max-age') === '0' ||
        Date.parse(attributes.get('expires') ?? '') <= Date.now()
      expect(expired).toBe(true)
      expect(attributes.get('path')).toBe('/')
      expect(account.client.session()).toBeUndefined()
      expect(await hasSession(copy)).toBe(false)
    })
  })

  describe('GET /auth/session', () => {
    it('gives 200 {user, session} with a cookie or a Bearer access token, else 401 unauthenticated', async () => {
      const account = await signUp(servers.main)
      const response = await account.client.request('GET', '/auth/session')
      expect(response.status).toBe(200)
      const body = (await response.json()) as { user: unknown; session: unknown }
      expect(Object.keys(body).sort()).toEqual(['session', 'user'])
      checkUser(body.user, account.email)
      checkSession(body.session)
      await expectError(
        await cli(servers.main).request('GET', '/auth/session'),
        401,
        'unauthenticated',
      )
      const pair = await grant(servers.main, account.email, account.password)
      const viaToken = await bearer(servers.main, pair.access_token).request('GET', '/auth/session')
      expect(viaToken.status).toBe(200)
      const tokenBody = (await viaToken.json()) as { user: unknown; session: ApiSession }
      expect(checkUser(tokenBody.user, account.email)).toEqual(account.user)
      checkSession(tokenBody.session)
      const claims = decodePart(pair.access_token.split('.')[1] ?? '')
      expect(tokenBody.session.id).toBe(claims.sid)
      await expectError(
        await bearer(servers.main, 'not.a.token').request('GET', '/auth/session'),
        401,
        'unauthenticated',
      )
    })
  })

  describe('GET /auth/sessions and revoking sessions', () => {
    it('lists the caller’s own live sessions with ip, userAgent and current', async () => {
      const account = await signUp(servers.main)
      const phone = await logIn(servers.main, account.email, account.password, 'Phone/1.0')
      const stranger = await signUp(servers.main)
      const response = await phone.request('GET', '/auth/sessions')
      expect(response.status).toBe(200)
      const body = (await response.json()) as {
        sessions: {
          id: string
          ip: string
          userAgent: string
          current: boolean
          createdAt: string
          lastSeenAt: string
          expiresAt: string
        }[]
      }
      expect(Object.keys(body)).toEqual(['sessions'])
      expect(body.sessions).toHaveLength(2)
      for (const session of body.sessions) {
        expect(Object.keys(session).sort()).toEqual(
          ['createdAt', 'current', 'expiresAt', 'id', 'ip', 'lastSeenAt', 'userAgent'].sort(),
        )
        expect(typeof session.id).toBe('string')
        for (const at of [session.createdAt, session.lastSeenAt, session.expiresAt]) {
          checkTimestamp(at)
        }
        expect(session.ip).toMatch(/^(::ffff:)?127\.0\.0\.1$/)
        expect(typeof session.current).toBe('boolean')
      }
      const current = body.sessions.filter((session) => session.current)
      expect(current).toHaveLength(1)
      expect(current[0]?.id).toBe((await currentSession(phone)).id)
      expect(current[0]?.userAgent).toBe('Phone/1.0')
      const strangerId = (await currentSession(stranger.client)).id
      expect(body.sessions.map((session) => session.id)).not.toContain(strangerId)
      await expectError(
        await cli(servers.main).request('GET', '/auth/sessions'),
        401,
        'unauthenticated',
      )
    })

    it('DELETE /auth/sessions/:id revokes one of the caller’s sessions; another user’s id gives 404', async () => {
      const account = await signUp(servers.main)
      const laptop = await logIn(servers.main, account.email, account.password)
      const laptopId = (await currentSession(laptop)).id
      const stranger = await signUp(servers.main)
      const strangerId = (await currentSession(stranger.client)).id
      await expectError(
        await account.client.request('DELETE', `/auth/sessions/${strangerId}`),
        404,
        'not_found',
      )
      expect(await hasSession(stranger.client)).toBe(true)
      await expectError(
        await account.client.request('DELETE', `/auth/sessions/${randomUUID()}`),
        404,
        'not_found',
      )
      const response = await account.client.request('DELETE', `/auth/sessions/${laptopId}`)
      expect(response.status).toBe(204)
      expect(await hasSession(laptop)).toBe(false)
      expect(await hasSession(account.client)).toBe(true)
      const listed = (await (await account.client.request('GET', '/auth/sessions')).json()) as {
        sessions: { id: string }[]
      }
      expect(listed.sessions.map((session) => session.id)).not.toContain(laptopId)
      // The id never reaches the metrics as a label.
      const metrics = await (await cli(servers.main).request('GET', '/metrics')).text()
      expect(metrics).not.toContain(laptopId)
      expect(metrics).not.toContain(strangerId)
    })

    it('DELETE /auth/sessions revokes every other session of the caller and keeps the current one', async () => {
      const account = await signUp(servers.main)
      const other = await logIn(servers.main, account.email, account.password)
      const pair = await grant(servers.main, account.email, account.password)
      const stranger = await signUp(servers.main)
      const response = await account.client.request('DELETE', '/auth/sessions')
      expect(response.status).toBe(204)
      expect(await hasSession(account.client)).toBe(true)
      expect(await hasSession(other)).toBe(false)
      expect(await hasSession(bearer(servers.main, pair.access_token))).toBe(false)
      expect(await hasSession(stranger.client)).toBe(true)
      const listed = (await (await account.client.request('GET', '/auth/sessions')).json()) as {
        sessions: unknown[]
      }
      expect(listed.sessions).toHaveLength(1)
    })
  })

  describe('POST /auth/password', () => {
    it('gives 204 and revokes every other session of the user', async () => {
      const account = await signUp(servers.main)
      const other = await logIn(servers.main, account.email, account.password)
      const pair = await grant(servers.main, account.email, account.password)
      const newPassword = strongPassword()
      const response = await account.client.request('POST', '/auth/password', {
        json: { currentPassword: account.password, newPassword },
      })
      expect(response.status).toBe(204)
      expect(await hasSession(account.client)).toBe(true)
      expect(await hasSession(other)).toBe(false)
      const refresh = await cli(servers.main).request('POST', '/auth/refresh', {
        json: { refresh_token: pair.refresh_token },
      })
      expect(refresh.status).toBe(401)
      await logIn(servers.main, account.email, newPassword)
      await expectError(
        await browser(servers.main).request('POST', '/auth/login', {
          json: { email: account.email, password: account.password },
        }),
        401,
        'invalid_credentials',
      )
    })

    it('refuses a wrong current password, a weak new one, and no session, changing nothing', async () => {
      const account = await signUp(servers.main)
      const wrong = await account.client.request('POST', '/auth/password', {
        json: { currentPassword: `${account.password}x`, newPassword: strongPassword() },
      })
      expect(wrong.status).toBeGreaterThanOrEqual(400)
      expect(wrong.status).toBeLessThan(500)
      await wrong.text()
      await expectError(
        await account.client.request('POST', '/auth/password', {
          json: { currentPassword: account.password, newPassword: 'short' },
        }),
        400,
        'weak_password',
      )
      await expectError(
        await browser(servers.main).request('POST', '/auth/password', {
          json: { currentPassword: account.password, newPassword: strongPassword() },
        }),
        401,
        'unauthenticated',
      )
      await logIn(servers.main, account.email, account.password)
    })
  })

  describe('password reset', () => {
    async function requestReset(email: string): Promise<Response> {
      return cli(servers.main).request('POST', '/auth/password-reset/request', { json: { email } })
    }

    async function resetToken(account: Account): Promise<string> {
      const before = servers.main.mails().length
      const response = await requestReset(account.email)
      expect(response.status).toBe(202)
      const mail = unfold(await waitForMail(servers.main, before + 1))
      expect(mail).toContain(account.email)
      const match = new RegExp(`${escape(PUBLIC_URL)}/reset\\?token=([A-Za-z0-9_.~%-]+)`).exec(mail)
      expect(match, 'a link to $TESSERA_PUBLIC_URL/reset?token=...').not.toBeNull()
      return decodeURIComponent(match?.[1] ?? '')
    }

    it('request gives 202 always, the same for unknown e-mails, and mails a link to the public URL', async () => {
      const account = await signUp(servers.main)
      const before = servers.main.mails().length
      const unknown = await requestReset(uniqueEmail())
      const known = await requestReset(account.email)
      expect(unknown.status).toBe(202)
      expect(known.status).toBe(202)
      expect(await unknown.text()).toBe(await known.text())
      const mail = unfold(await waitForMail(servers.main, before + 1))
      expect(mail).toContain(account.email)
      expect(mail).toContain(`${PUBLIC_URL}/reset?token=`)
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(servers.main.mails()).toHaveLength(before + 1)
    })

    it('confirm gives 204, works once, and revokes every session of the user', async () => {
      const account = await signUp(servers.main)
      const other = await logIn(servers.main, account.email, account.password)
      const pair = await grant(servers.main, account.email, account.password)
      const token = await resetToken(account)
      // The page the link opens (security headers checked like every response; it carries a
      // credential in its URL, so it is not cached and not sent on as a referrer).
      const page = await browser(servers.main).request('GET', `/reset?token=${token}`)
      expect(page.status).toBe(200)
      expect(page.headers.get('cache-control') ?? '').toMatch(/no-store/)
      expect(page.headers.get('referrer-policy')).toMatch(
        /^(no-referrer|same-origin|strict-origin|origin)$/,
      )
      await page.text()
      const newPassword = strongPassword()
      const response = await cli(servers.main).request('POST', '/auth/password-reset/confirm', {
        json: { token, newPassword },
      })
      expect(response.status).toBe(204)
      expect(await hasSession(account.client)).toBe(false)
      expect(await hasSession(other)).toBe(false)
      expect(await hasSession(bearer(servers.main, pair.access_token))).toBe(false)
      await logIn(servers.main, account.email, newPassword)
      await expectError(
        await cli(servers.main).request('POST', '/auth/password-reset/confirm', {
          json: { token, newPassword: strongPassword() },
        }),
        400,
        'invalid_token',
      )
      await logIn(servers.main, account.email, newPassword)
    })

    it('confirm gives 400 invalid_token for a bad token, one invalidated by a password change, and one over 30 minutes old', async () => {
      const client = cli(servers.main)
      for (const token of ['', 'garbage', 'A'.repeat(43), `${'x'.repeat(200)}`]) {
        await expectError(
          await client.request('POST', '/auth/password-reset/confirm', {
            json: { token, newPassword: strongPassword() },
          }),
          400,
          'invalid_token',
        )
      }
      // Any password change invalidates it.
      const account = await signUp(servers.main)
      const stale = await resetToken(account)
      const changed = strongPassword()
      expect(
        (
          await account.client.request('POST', '/auth/password', {
            json: { currentPassword: account.password, newPassword: changed },
          })
        ).status,
      ).toBe(204)
      await expectError(
        await client.request('POST', '/auth/password-reset/confirm', {
          json: { token: stale, newPassword: strongPassword() },
        }),
        400,
        'invalid_token',
      )
      // So does using another reset token.
      const first = await resetToken({ ...account, password: changed })
      const second = await resetToken({ ...account, password: changed })
      expect(
        (
          await client.request('POST', '/auth/password-reset/confirm', {
            json: { token: second, newPassword: strongPassword() },
          })
        ).status,
      ).toBe(204)
      await expectError(
        await client.request('POST', '/auth/password-reset/confirm', {
          json: { token: first, newPassword: strongPassword() },
        }),
        400,
        'invalid_token',
      )
      // 30 minutes.
      const late = await signUp(servers.main)
      const fresh = await resetToken(late)
      const expiring = await resetToken(late)
      servers.clock.advance(29 * 60)
      const stillGood = strongPassword()
      expect(
        (
          await client.request('POST', '/auth/password-reset/confirm', {
            json: { token: fresh, newPassword: stillGood },
          })
        ).status,
      ).toBe(204)
      void expiring
      const old = await resetToken({ ...late, password: stillGood })
      servers.clock.advance(30 * 60 + 1)
      await expectError(
        await client.request('POST', '/auth/password-reset/confirm', {
          json: { token: old, newPassword: strongPassword() },
        }),
        400,
        'invalid_token',
      )
      await logIn(servers.main, late.email, stillGood)
    })
  })

  describe('tokens', () => {
    it('POST /auth/token gives {access_token, token_type: "Bearer", expires_in, refresh_token}', async () => {
      const account = await signUp(servers.main)
      const pair = await grant(servers.main, account.email, account.password)
      expect(pair.expires_in).toBe(15 * 60)
      const claims = decodePart(pair.access_token.split('.')[1] ?? '')
      expect((claims.exp as number) - (claims.iat as number)).toBe(pair.expires_in)
    })

    it('POST /auth/refresh gives a new pair; the old refresh token stops working; reuse revokes the family and its session', async () => {
      const account = await signUp(servers.main)
      const first = await grant(servers.main, account.email, account.password)
      const client = cli(servers.main)
      const response = await client.request('POST', '/auth/refresh', {
        json: { refresh_token: first.refresh_token },
      })
      expect(response.status).toBe(200)
      const second = checkPair(await response.json())
      expect(second.refresh_token).not.toBe(first.refresh_token)
      expect(second.access_token).not.toBe(first.access_token)
      expect(await hasSession(bearer(servers.main, second.access_token))).toBe(true)
      // Reuse of the rotated token.
      await expectError(
        await client.request('POST', '/auth/refresh', {
          json: { refresh_token: first.refresh_token },
        }),
        401,
        'token_reused',
      )
      // The whole family is revoked, and its session.
      const after = await client.request('POST', '/auth/refresh', {
        json: { refresh_token: second.refresh_token },
      })
      expect(after.status).toBe(401)
      await after.text()
      expect(await hasSession(bearer(servers.main, second.access_token))).toBe(false)
      // An unknown refresh token is refused too.
      const unknown = await client.request('POST', '/auth/refresh', {
        json: { refresh_token: randomBytes(32).toString('base64url') },
      })
      expect(unknown.status).toBe(401)
      await unknown.text()
    })

    // API.md "Refresh tokens are ... 7 days idle / 30 days absolute by default": the family is
    // bound to the session the grant created, so each refresh must slide that session too, or
    // every refresh would end 7 days after the grant however often the client refreshed.
    it('refresh tokens end 30 days after the grant, however often refreshed', async () => {
      const account = await signUp(servers.main)
      let pair = await grant(servers.main, account.email, account.password)
      for (let day = 6; day <= 24; day += 6) {
        servers.clock.advance(6 * DAY)
        const response = await cli(servers.main).request('POST', '/auth/refresh', {
          json: { refresh_token: pair.refresh_token },
        })
        expect(response.status, `day ${day}`).toBe(200)
        pair = checkPair(await response.json())
      }
      servers.clock.advance(6 * DAY + 1)
      const response = await cli(servers.main).request('POST', '/auth/refresh', {
        json: { refresh_token: pair.refresh_token },
      })
      expect(response.status).toBe(401)
      await response.text()
    })

    it('refresh tokens end after 7 days idle', async () => {
      const account = await signUp(servers.main)
      const pair = await grant(servers.main, account.email, account.password)
      servers.clock.advance(7 * DAY + 1)
      const response = await cli(servers.main).request('POST', '/auth/refresh', {
        json: { refresh_token: pair.refresh_token },
      })
      expect(response.status).toBe(401)
      await response.text()
    })

    it('POST /auth/revoke gives 200, revokes the family, and gives 200 for unknown tokens', async () => {
      const account = await signUp(servers.main)
      const first = await grant(servers.main, account.email, account.password)
      const client = cli(servers.main)
      const rotated = checkPair(
        await (
          await client.request('POST', '/auth/refresh', {
            json: { refresh_token: first.refresh_token },
          })
        ).json(),
      )
      const revoke = await client.request('POST', '/auth/revoke', {
        json: { token: rotated.refresh_token },
      })
      expect(revoke.status).toBe(200)
      await revoke.text()
      const refresh = await client.request('POST', '/auth/refresh', {
        json: { refresh_token: rotated.refresh_token },
      })
      expect(refresh.status).toBe(401)
      await refresh.text()
      for (const token of [randomBytes(32).toString('base64url'), 'x', first.access_token]) {
        const response = await client.request('POST', '/auth/revoke', { json: { token } })
        expect(response.status).toBe(200)
        await response.text()
      }
    })

    it('stores refresh tokens only as hashes', async () => {
      const account = await signUp(servers.main)
      const pair = await grant(servers.main, account.email, account.password)
      const dump = await storeDump(servers.main, backends.get(servers.main) as Backend)
      expect(dump.length).toBeGreaterThan(0)
      expect(dump).not.toContain(pair.refresh_token)
    })

    for (const [name, alg, kty] of [
      ['main', 'EdDSA', 'OKP'],
      ['https', 'ES256', 'EC'],
      ['limits', 'RS256', 'RSA'],
    ] as const) {
      it(`publishes ${alg} public keys only, each with kid, alg and use "sig", that verify the access tokens`, async () => {
        const server = servers[name]
        const account = await signUp(server, name === 'https')
        const set = await jwks(server)
        expect(Object.keys(set)).toEqual(['keys'])
        expect(set.keys.length).toBeGreaterThan(0)
        for (const key of set.keys) {
          expect(typeof key.kid).toBe('string')
          expect(key.alg).toBe(alg)
          expect(key.use).toBe('sig')
          expect(key.kty).toBe(kty)
          for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']) {
            expect(key, `no private part ${secret}`).not.toHaveProperty(secret)
          }
        }
        const pair = await grant(server, account.email, account.password)
        const [headerPart = '', payloadPart = ''] = pair.access_token.split('.')
        const header = decodePart(headerPart)
        expect(header.alg).toBe(alg)
        expect(set.keys.map((key) => key.kid)).toContain(header.kid)
        const { payload } = await jwtVerify(pair.access_token, createLocalJWKSet(set))
        for (const claim of ['iss', 'aud', 'sub', 'sid', 'iat', 'exp', 'jti']) {
          expect(payload, claim).toHaveProperty(claim)
        }
        expect(payload.sub).toBe(account.user.id)
        expect(typeof payload.sid).toBe('string')
        expect(typeof payload.jti).toBe('string')
        expect(decodePart(payloadPart)).toEqual(payload)
        const again = await grant(server, account.email, account.password)
        expect(decodePart(again.access_token.split('.')[1] ?? '').jti).not.toBe(payload.jti)
      })
    }

    it('HS256: the JWKS shows no shared secret, and the tokens work', async () => {
      // Signup is closed on this server; the JWKS is still public.
      const set = await jwks(servers.closed)
      for (const key of set.keys) {
        expect(key).not.toHaveProperty('k')
        expect(key.kty).not.toBe('oct')
      }
    })

    it('rejects a token whose alg does not match its key (none included), a tampered one and an expired one', async () => {
      const server = servers.main
      const account = await signUp(server)
      const pair = await grant(server, account.email, account.password)
      const [headerPart = '', payloadPart = '', signature = ''] = pair.access_token.split('.')
      const header = decodePart(headerPart)
      const payload = decodePart(payloadPart)
      expect(await hasSession(bearer(server, pair.access_token))).toBe(true)
      const set = await jwks(server)
      const jwk = set.keys.find((key) => key.kid === header.kid)
      expect(jwk).toBeDefined()
      const publicPem = createPublicKey({ key: jwk as never, format: 'jwk' })
        .export({ type: 'spki', format: 'pem' })
        .toString()
      const hmac = (key: string | Buffer, input: string): string =>
        createHmac('sha256', key).update(input).digest('base64url')
      const forged: string[] = []
      for (const alg of ['none', 'None', 'NONE']) {
        forged.push(`${b64({ ...header, alg })}.${payloadPart}.`)
        forged.push(`${b64({ ...header, alg })}.${payloadPart}.${signature}`)
      }
      for (const key of [publicPem, Buffer.from(jwk?.x ?? '', 'base64url'), JSON.stringify(jwk)]) {
        const input = `${b64({ ...header, alg: 'HS256' })}.${payloadPart}`
        forged.push(`${input}.${hmac(key, input)}`)
      }
      forged.push(`${b64({ ...header, alg: 'ES256' })}.${payloadPart}.${signature}`)
      forged.push(`${b64({ ...header, alg: 'RS256' })}.${payloadPart}.${signature}`)
      forged.push(`${b64({ ...header, kid: 'unknown' })}.${payloadPart}.${signature}`)
      forged.push(`${headerPart}.${b64({ ...payload, sub: 'someone-else' })}.${signature}`)
      forged.push(
        `${headerPart}.${b64({ ...payload, exp: (payload.exp as number) + 3600 })}.${signature}`,
      )
      for (const token of forged) {
        await expectError(
          await bearer(server, token).request('GET', '/auth/session'),
          401,
          'unauthenticated',
        )
      }
      // 15 minutes, plus the usual clock-skew leeway of at most a minute.
      servers.clock.advance(15 * 60 + 61)
      expect(await hasSession(bearer(server, pair.access_token))).toBe(false)
    })
  })

  describe('operations', () => {
    it('GET /healthz and GET /readyz give 200', async () => {
      const client = cli(servers.main)
      expect((await client.request('GET', '/healthz')).status).toBe(200)
      expect((await client.request('GET', '/readyz')).status).toBe(200)
    })

    it('GET /metrics gives request counts and latencies, logins, failures, rate limits and active sessions', async () => {
      const server = servers.main
      const response = await cli(server).request('GET', '/metrics')
      expect(response.status).toBe(200)
      expect(response.headers.get('content-type')).toMatch(/^text\/plain/)
      const successes = (await metric(server, 'tessera_logins_total', { result: 'success' })) ?? 0
      const failures = (await metric(server, 'tessera_logins_total', { result: 'failure' })) ?? 0
      const sessions = await metric(server, 'tessera_active_sessions')
      expect(sessions).toBeGreaterThanOrEqual(0)
      const account = await signUp(server)
      await logIn(server, account.email, account.password)
      const wrong = await cli(server).request('POST', '/auth/login', {
        json: { email: account.email, password: 'not the password at all' },
      })
      await expectError(wrong, 401, 'invalid_credentials')
      expect(await metric(server, 'tessera_logins_total', { result: 'success' })).toBe(
        successes + 1,
      )
      expect(await metric(server, 'tessera_logins_total', { result: 'failure' })).toBe(failures + 1)
      expect(
        await metric(server, 'tessera_http_requests_total', {
          route: '/auth/login',
          status: '200',
        }),
      ).toBeGreaterThanOrEqual(1)
      expect(
        await metric(server, 'tessera_http_request_duration_seconds_count', {
          route: '/auth/login',
        }),
      ).toBeGreaterThanOrEqual(2)
      const text = await (await cli(server).request('GET', '/metrics')).text()
      expect(text).toMatch(/^tessera_http_request_duration_seconds_bucket\{/m)
      expect(text).toMatch(/^# TYPE tessera_rate_limited_total counter$/m)
      expect(text).toMatch(/^# TYPE tessera_active_sessions gauge$/m)
    })
  })

  describe('admin panel', () => {
    it('redirects an anonymous visitor to a sign-in page with a CSRF token and no inline script', async () => {
      const client = browser(servers.main)
      const redirect = await client.request('GET', '/admin', { redirect: 'manual' })
      expect(redirect.status).toBeGreaterThanOrEqual(300)
      expect(redirect.status).toBeLessThan(400)
      const location = redirect.headers.get('location') ?? ''
      expect(location).not.toBe('')
      const path = new URL(location, PUBLIC_URL).pathname
      const page = await client.request('GET', path)
      expect(page.status).toBe(200)
      expect(page.headers.get('content-type')).toMatch(/^text\/html/)
      const html = await page.text()
      expect(html).toMatch(/<form[^>]*method="post"/i)
      expect(html).toMatch(/type="password"/i)
      expect(html).toMatch(/<input[^>]*type="hidden"[^>]*name="[^"]*csrf[^"]*"[^>]*value="[^"]+"/i)
      // No inline script (and the CSP would not run one: checked on every response).
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>\s*\S/i)
      expect(html).not.toMatch(/\son[a-z]+\s*=/i)
    })

    it('prints a one-time setup link on first start that creates the first admin, once', async () => {
      // The server without a clock of the tests': the link expires after 30 minutes.
      const server = servers.closed
      const match = new RegExp(`${escape(PUBLIC_URL)}(/admin/[^"\\s]*token=[^"\\s]+)`).exec(
        server.log.text(),
      )
      expect(match, 'a setup link in the log').not.toBeNull()
      const link = match?.[1] ?? ''
      const email = uniqueEmail()
      const password = strongPassword()
      const person = browser(server)
      const page = await person.request('GET', link)
      expect(page.status).toBe(200)
      const form = formOf(await page.text())
      const body = new URLSearchParams()
      for (const [name, field] of form.fields) {
        if (field.type === 'password') body.set(name, password)
        else if (field.type === 'email' || name.includes('email')) body.set(name, email)
        else body.set(name, field.value)
      }
      const action = new URL(form.action || link, `${PUBLIC_URL}${link}`)
      const created = await person.request('POST', `${action.pathname}${action.search}`, {
        body: body.toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        redirect: 'manual',
      })
      expect(created.status, await created.clone().text()).toBeGreaterThanOrEqual(300)
      expect(created.status).toBeLessThan(400)
      const dashboard = await person.request('GET', '/admin', { redirect: 'manual' })
      expect(dashboard.status).toBe(200)
      expect(dashboard.headers.get('content-type')).toMatch(/^text\/html/)
      const login = await browser(server).request('POST', '/auth/login', {
        json: { email, password },
      })
      expect(login.status).toBe(200)
      expect(checkUser(((await login.json()) as { user: unknown }).user, email).isAdmin).toBe(true)
      // Works once: the same form again creates nobody.
      const again = browser(server)
      const intruder = uniqueEmail()
      const second = await again.request('POST', `${action.pathname}${action.search}`, {
        body: body.toString().replace(encodeURIComponent(email), encodeURIComponent(intruder)),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        redirect: 'manual',
      })
      await second.text()
      const reopened = await again.request('GET', link, { redirect: 'manual' })
      await reopened.text()
      expect(reopened.status).not.toBe(200)
      // Admin panel sessions are separate from application sessions ...
      const adminCookie = [...person.cookies].find(([name]) => name !== SESSION_COOKIE)
      expect(adminCookie, 'an admin panel cookie').toBeDefined()
      const appOnly = new Browser(server, {
        cookie: `${SESSION_COOKIE}=${setCookie(login, SESSION_COOKIE)?.value ?? ''}`,
      })
      const appAtAdmin = await appOnly.request('GET', '/admin', { redirect: 'manual' })
      expect(appAtAdmin.status).toBeGreaterThanOrEqual(300)
      expect(appAtAdmin.status).toBeLessThan(400)
      const adminOnly = new Browser(server, { cookie: `${adminCookie?.[0]}=${adminCookie?.[1]}` })
      await expectError(await adminOnly.request('GET', '/auth/session'), 401, 'unauthenticated')
      // ... and shorter: 30 minutes idle ...
      const { adminClock } = servers
      adminClock.advance(29 * 60)
      expect((await adminOnly.request('GET', '/admin', { redirect: 'manual' })).status).toBe(200)
      adminClock.advance(29 * 60)
      expect((await adminOnly.request('GET', '/admin', { redirect: 'manual' })).status).toBe(200)
      adminClock.advance(30 * 60 + 1)
      const idle = await adminOnly.request('GET', '/admin', { redirect: 'manual' })
      expect(idle.status).toBeGreaterThanOrEqual(300)
      expect(idle.status).toBeLessThan(400)
      // ... and 12 hours absolute, however active.
      const signIn = browser(server)
      const redirect = await signIn.request('GET', '/admin', { redirect: 'manual' })
      const signInPath = new URL(redirect.headers.get('location') ?? '', PUBLIC_URL).pathname
      const signInForm = formOf(await (await signIn.request('GET', signInPath)).text())
      const fields = new URLSearchParams()
      for (const [name, field] of signInForm.fields) {
        if (field.type === 'password') fields.set(name, password)
        else if (field.type === 'email' || name.includes('email')) fields.set(name, email)
        else fields.set(name, field.value)
      }
      const signInAction = new URL(signInForm.action || signInPath, `${PUBLIC_URL}${signInPath}`)
      const signedIn = await signIn.request('POST', signInAction.pathname, {
        body: fields.toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        redirect: 'manual',
      })
      expect(signedIn.status, await signedIn.clone().text()).toBeGreaterThanOrEqual(300)
      expect(signedIn.status).toBeLessThan(400)
      // Its forms carry CSRF tokens: the same sign-in without the token, or from another site,
      // signs nobody in.
      const tokenless = new URLSearchParams(
        [...fields].filter(([name]) => signInForm.fields.get(name)?.type !== 'hidden'),
      )
      for (const [headers, body] of [
        [{}, tokenless],
        [{ 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }, fields],
      ] as const) {
        const stranger = browser(server)
        await (await stranger.request('GET', signInPath)).text()
        const refused = await stranger.request('POST', signInAction.pathname, {
          body: body.toString(),
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
          redirect: 'manual',
        })
        await refused.text()
        const after = await stranger.request('GET', '/admin', { redirect: 'manual' })
        await after.text()
        expect(after.status, JSON.stringify(headers)).not.toBe(200)
      }
      for (let minutes = 25; minutes < 12 * 60; minutes += 25) {
        adminClock.advance(25 * 60)
        const active = await signIn.request('GET', '/admin', { redirect: 'manual' })
        expect(active.status, `after ${minutes} minutes`).toBe(200)
        await active.text()
      }
      adminClock.advance(25 * 60)
      const absolute = await signIn.request('GET', '/admin', { redirect: 'manual' })
      expect(absolute.status).toBeGreaterThanOrEqual(300)
      expect(absolute.status).toBeLessThan(400)
      await expectError(
        await browser(server).request('POST', '/auth/login', {
          json: { email: intruder, password },
        }),
        401,
        'invalid_credentials',
      )
    })
  })
}

/** The first form of a page: its action and its inputs (name, type, value). */
function formOf(html: string): {
  action: string
  fields: Map<string, { type: string; value: string }>
} {
  const attributes = (tag: string): Map<string, string> => {
    const found = new Map<string, string>()
    for (const m of tag.matchAll(/([a-zA-Z-]+)="([^"]*)"/g)) {
      found.set(
        (m[1] ?? '').toLowerCase(),
        (m[2] ?? '')
          .replace(/&quot;/g, '"')
          .replace(/&#39;/g, "'")
          .replace(/&lt;/g, '<')
          .replace(/&gt;/g, '>')
          .replace(/&amp;/g, '&'),
      )
    }
    return found
  }
  const start = html.search(/<form[\s>]/i)
  expect(start, 'a form').toBeGreaterThanOrEqual(0)
  const formHtml = html.slice(start, html.indexOf('</form>', start))
  const formTag = /<form[^>]*>/i.exec(formHtml)?.[0] ?? ''
  const fields = new Map<string, { type: string; value: string }>()
  for (const m of formHtml.matchAll(/<input[^>]*>/gi)) {
    const input = attributes(m[0])
    const name = input.get('name')
    if (name === undefined) continue
    fields.set(name, {
      type: (input.get('type') ?? 'text').toLowerCase(),
      value: input.get('value') ?? '',
    })
  }
  return { action: attributes(formTag).get('action') ?? '', fields }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** A mail's text with quoted-printable soft breaks and `=3D` undone. */
function unfold(mail: string): string {
  return mail.replace(/=\r?\n/g, '').replace(/=3D/g, '=')
}

function sqliteDump(server: TestServer): Promise<string> {
  const dir = join(server.cwd, 'data')
  return Promise.resolve(
    readdirSync(dir)
      .filter((name) => name.startsWith('tessera.db'))
      .map((name) => readFileSync(join(dir, name)).toString('latin1'))
      .join('\n'),
  )
}

async function redisDump(backend: Backend): Promise<string> {
  if (backend.kind !== 'postgres+redis') return ''
  const client = createClient({ url: backend.redisUrl })
  client.on('error', () => undefined)
  await client.connect()
  const parts: string[] = []
  for await (const keys of client.scanIterator({ MATCH: `${backend.prefix}*`, COUNT: 1000 })) {
    for (const key of keys) {
      parts.push(key)
      const type = await client.type(key)
      if (type === 'string') parts.push((await client.get(key)) ?? '')
      else if (type === 'hash') parts.push(JSON.stringify(await client.hGetAll(key)))
      else if (type === 'set') parts.push(JSON.stringify(await client.sMembers(key)))
      else if (type === 'zset') parts.push(JSON.stringify(await client.zRange(key, 0, -1)))
      else if (type === 'list') parts.push(JSON.stringify(await client.lRange(key, 0, -1)))
    }
  }
  client.destroy()
  return parts.join('\n')
}

describe('API.md contract, SQLite', () => {
  contractSuite(
    () => Promise.resolve({ backend: { kind: 'sqlite' }, done: () => Promise.resolve() }),
    (server) => sqliteDump(server),
  )
})

describeWithPostgresAndRedis('API.md contract, PostgreSQL + Redis', (urls) => {
  contractSuite(
    (tag) => postgresRedisBackend(urls, tag),
    (_server, backend) => redisDump(backend),
  )

  describe('a store that cannot be reached', () => {
    let live: TestServer
    let dead: TestServer
    const cleanups: (() => Promise<void>)[] = []

    beforeAll(async () => {
      const { backend, done } = await postgresRedisBackend(urls, 'contract_live')
      live = await startTestServer(backend, {
        TESSERA_SECRET: SECRET,
        TESSERA_PUBLIC_URL: PUBLIC_URL,
      })
      cleanups.push(async () => {
        await live.stop()
        await done()
      })
      // Same database schema kind, a Redis that is not there (port 1).
      const schema = `contract_dead_${randomBytes(6).toString('hex')}`
      const drop = await createSchema(urls.pgUrl, schema)
      dead = await startTestServer(
        {
          kind: 'postgres+redis',
          pgUrl: urls.pgUrl,
          redisUrl: 'redis://127.0.0.1:1',
          schema,
          prefix: 'contract:',
        },
        { TESSERA_SECRET: SECRET, TESSERA_PUBLIC_URL: PUBLIC_URL },
      )
      cleanups.push(async () => {
        await dead.stop()
        await drop()
      })
    })

    afterAll(async () => {
      await Promise.all(cleanups.map((cleanup) => cleanup()))
    })

    it('gives 503 unavailable, keeps running, and /readyz names the store', async () => {
      const account = await signUp(live)
      const cookie = `${SESSION_COOKIE}=${account.client.session() ?? ''}`
      const signed = new Browser(dead, { cookie })
      await expectError(await signed.request('GET', '/auth/session'), 503, 'unavailable')
      await expectError(
        await cli(dead).request('POST', '/auth/login', {
          json: { email: account.email, password: account.password },
        }),
        503,
        'unavailable',
      )
      // A value whose signature does not verify is rejected without a store lookup: 401, not 503.
      const value = account.client.session() ?? ''
      const forged = value.slice(0, -1) + (value.endsWith('A') ? 'B' : 'A')
      await expectError(
        await new Browser(dead, { cookie: `${SESSION_COOKIE}=${forged}` }).request(
          'GET',
          '/auth/session',
        ),
        401,
        'unauthenticated',
      )
      expect((await cli(dead).request('GET', '/healthz')).status).toBe(200)
      const ready = await cli(dead).request('GET', '/readyz')
      expect(ready.status).toBe(503)
      const text = await ready.text()
      expect(text.toLowerCase()).toContain('redis')
      expect((JSON.parse(text) as { error: { code: string } }).error.code).toBe('unavailable')
    })
  })

  describe('a store that goes away after start', () => {
    it('fails closed with 503, keeps running, and serves again once the store is back', async () => {
      // The real Redis behind a TCP relay that the test can cut and restore.
      const target = new URL(urls.redisUrl)
      const sockets = new Set<Socket>()
      const relay = createServer((client) => {
        const upstream = connect(Number(target.port || 6379), target.hostname)
        sockets.add(client).add(upstream)
        client.pipe(upstream).pipe(client)
        const close = (): void => {
          client.destroy()
          upstream.destroy()
        }
        client.on('error', close).on('close', close)
        upstream.on('error', close).on('close', close)
      })
      await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve))
      const port = (relay.address() as AddressInfo).port
      // Cleaned up through the real Redis; the server talks to it through the relay.
      const { backend, done } = await postgresRedisBackend(urls, 'contract_relay')
      if (backend.kind !== 'postgres+redis') throw new Error('a PostgreSQL + Redis backend')
      const server = await startTestServer(
        { ...backend, redisUrl: `redis://127.0.0.1:${port}` },
        {
          TESSERA_SECRET: SECRET,
          TESSERA_PUBLIC_URL: PUBLIC_URL,
        },
      )
      try {
        const account = await signUp(server)
        expect(await hasSession(account.client)).toBe(true)
        await new Promise<void>((resolve) => {
          relay.close(() => resolve())
          for (const socket of sockets) socket.destroy()
        })
        // The server's default (no near-cache, docs/scaling.md): the next read is a 503.
        await expectError(await account.client.request('GET', '/auth/session'), 503, 'unavailable')
        expect((await cli(server).request('GET', '/healthz')).status).toBe(200)
        const ready = await cli(server).request('GET', '/readyz')
        expect(ready.status).toBe(503)
        expect((await ready.text()).toLowerCase()).toContain('redis')
        await new Promise<void>((resolve) => relay.listen(port, '127.0.0.1', resolve))
        let back = false
        for (let attempt = 0; attempt < 100 && !back; attempt++) {
          const response = await account.client.request('GET', '/auth/session')
          back = response.status === 200
          await response.text()
          if (!back) await new Promise((resolve) => setTimeout(resolve, 100))
        }
        expect(back, 'the session is served again once Redis is back').toBe(true)
      } finally {
        await server.stop()
        relay.close()
        for (const socket of sockets) socket.destroy()
        await done()
      }
    })
  })
})
