import { describe, expect, it } from 'vitest'
import { ERROR_CODES, HTTP_ERRORS, TesseraError } from '../../src/core/errors.js'
import { securityHeaders, type TesseraApp } from '../../src/server/app.js'
import { listen } from '../../src/server/main.js'
import { expectFields, isJSONContentType, readJSONBody } from '../../src/server/body.js'
import { HTTPError } from '../../src/server/http-error.js'
import { buildTestApp } from './helpers.js'

/** Routes that exercise the app's own layer: body reading, errors, caching. */
function testRoutes(app: TesseraApp): void {
  app.post('/echo', async (c) => {
    const body = expectFields(await readJSONBody(c.req.raw), {
      email: 'string',
      password: 'string',
    })
    return c.json({ email: body.email, length: body.password.length })
  })
  app.get('/boom', () => {
    throw new Error('database password is hunter2: stack follows')
  })
  app.get('/store-down', () => {
    throw new TesseraError('store_unavailable', 'redis at 10.0.0.5:6379 timed out')
  })
  app.get('/limited', () => {
    throw new HTTPError(429, 'rate_limited', 'too many attempts', {
      headers: { 'Retry-After': '30' },
    })
  })
  app.get('/cached', (c) => c.json({ keys: [] }, 200, { 'Cache-Control': 'public, max-age=60' }))
  app.get('/users/:id', (c) => c.json({ id: c.req.param('id') }))
}

function build(): ReturnType<typeof buildTestApp> {
  return buildTestApp({ routes: [testRoutes] })
}

const JSON_HEADERS = { 'Content-Type': 'application/json' }

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  const body = (await response.json()) as { error: { code: string; message: string } }
  expect(Object.keys(body)).toEqual(['error'])
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message'])
  return body.error
}

describe('JSON bodies', () => {
  it('reads a JSON object with the right types', async () => {
    const { app } = build()
    const response = await app.request('/echo', {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ email: 'a@example.com', password: 'correct horse', extra: 1 }),
    })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ email: 'a@example.com', length: 13 })
  })

  it.each([
    'application/json',
    'Application/JSON',
    'application/json; charset=utf-8',
    'APPLICATION/JSON ;charset=UTF-8',
    ' application/json',
  ])('accepts Content-Type %j', async (type) => {
    const { app } = build()
    const response = await app.request('/echo', {
      method: 'POST',
      headers: { 'Content-Type': type },
      body: JSON.stringify({ email: 'a@example.com', password: 'x' }),
    })
    expect(response.status).toBe(200)
  })

  it.each([
    ['text/plain', '{"email":"a","password":"b"}'],
    ['application/x-www-form-urlencoded', 'email=a&password=b'],
    ['multipart/form-data; boundary=x', '--x--'],
    ['application/jsonp', '{}'],
    ['application/json-patch+json', '{}'],
    [null, '{"email":"a","password":"b"}'],
  ])('refuses Content-Type %j with 415', async (type, body) => {
    const { app } = build()
    const headers: Record<string, string> = type === null ? {} : { 'Content-Type': type }
    const request = new Request('http://localhost/echo', { method: 'POST', headers, body })
    if (type === null) request.headers.delete('content-type')
    const response = await app.request(request)
    expect(response.status).toBe(415)
    expect((await errorOf(response)).code).toBe('unsupported_media_type')
  })

  it.each([
    ['not JSON', '{"email": '],
    ['an array', '[1, 2]'],
    ['a string', '"hello"'],
    ['null', 'null'],
    ['empty', ''],
    ['a number for a string', '{"email": 1, "password": "x"}'],
    ['a missing field', '{"email": "a@example.com"}'],
    ['an object for a string', '{"email": {"$ne": ""}, "password": "x"}'],
    ['a proto field', '{"__proto__": {"email": "x"}, "password": "x"}'],
  ])('answers %s with 400 invalid_request', async (_name, body) => {
    const { app } = build()
    const response = await app.request('/echo', { method: 'POST', headers: JSON_HEADERS, body })
    expect(response.status).toBe(400)
    expect((await errorOf(response)).code).toBe('invalid_request')
  })

  it('answers invalid UTF-8 with 400', async () => {
    const { app } = build()
    const body = new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])
    const response = await app.request('/echo', { method: 'POST', headers: JSON_HEADERS, body })
    expect(response.status).toBe(400)
  })

  it('answers a body over 64 KiB with 413, declared by Content-Length', async () => {
    const { app } = build()
    const body = JSON.stringify({ email: 'a', password: 'x'.repeat(64 * 1024) })
    const response = await app.request('/echo', { method: 'POST', headers: JSON_HEADERS, body })
    expect(response.status).toBe(413)
    expect((await errorOf(response)).code).toBe('payload_too_large')
  })

  it('answers a streamed body over 64 KiB with 413 when no length is declared', async () => {
    const { app } = build()
    let pulls = 0
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulls++
        // An endless body: the reader must stop at the limit, not read it all.
        controller.enqueue(new Uint8Array(16 * 1024).fill(0x20))
      },
    })
    const request = new Request('http://localhost/echo', {
      method: 'POST',
      headers: JSON_HEADERS,
      body: stream,
      duplex: 'half',
    })
    expect(request.headers.get('content-length')).toBeNull()
    const response = await app.request(request)
    expect(response.status).toBe(413)
    expect(pulls).toBeLessThan(10)
  })

  it('accepts a body of exactly 64 KiB', async () => {
    const { app } = build()
    const prefix = '{"email":"a","password":"'
    const body = prefix + 'x'.repeat(64 * 1024 - prefix.length - 2) + '"}'
    expect(body.length).toBe(64 * 1024)
    const response = await app.request('/echo', {
      method: 'POST',
      headers: JSON_HEADERS,
      body,
    })
    // 4096-character field limit: a 400, not a 413 and not a 500.
    expect(response.status).toBe(400)
  })

  it('isJSONContentType is exact about the essence', () => {
    expect(isJSONContentType('application/json')).toBe(true)
    expect(isJSONContentType('application/json;')).toBe(true)
    expect(isJSONContentType('application/jsonx')).toBe(false)
    expect(isJSONContentType('text/json')).toBe(false)
    expect(isJSONContentType(undefined)).toBe(false)
  })
})

describe('errors', () => {
  it('answers an unknown route with 404 not_found in the error shape', async () => {
    const { app } = build()
    const response = await app.request('/nope')
    expect(response.status).toBe(404)
    expect((await errorOf(response)).code).toBe('not_found')
  })

  it('answers a bug with a generic 500 and logs it with its stack', async () => {
    const { app, log } = build()
    const response = await app.request('/boom')
    expect(response.status).toBe(500)
    const error = await errorOf(response)
    expect(error).toEqual({ code: 'internal_error', message: 'internal server error' })
    const logged = log.lines().find((line) => line.msg === 'unhandled error')
    expect(logged).toBeDefined()
    expect(JSON.stringify(logged)).toContain('at ')
  })

  it('answers store_unavailable with 503 unavailable without the internal message', async () => {
    const { app } = build()
    const response = await app.request('/store-down')
    expect(response.status).toBe(503)
    const error = await errorOf(response)
    expect(error.code).toBe('unavailable')
    expect(error.message).not.toContain('10.0.0.5')
  })

  it('keeps Retry-After on a 429', async () => {
    const { app } = build()
    const response = await app.request('/limited')
    expect(response.status).toBe(429)
    expect(response.headers.get('Retry-After')).toBe('30')
    expect((await errorOf(response)).code).toBe('rate_limited')
  })
})

describe('headers', () => {
  const paths = ['/healthz', '/nope', '/boom', '/metrics', '/readyz']

  it.each(paths)('every response carries the security headers (%s)', async (path) => {
    const { app } = build()
    const response = await app.request(path)
    const csp = response.headers.get('Content-Security-Policy') ?? ''
    expect(csp).toContain("default-src 'none'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).not.toContain('unsafe-inline')
    expect(response.headers.get('X-Content-Type-Options')).toBe('nosniff')
    expect(response.headers.get('X-Frame-Options')).toBe('DENY')
    expect(response.headers.get('Referrer-Policy')).toBe('no-referrer')
    expect(response.headers.get('Strict-Transport-Security')).toBeNull()
    expect(response.headers.get('Cache-Control')).toBe('no-store')
  })

  it('a 415 and a 413 carry them too', async () => {
    const { app } = build()
    for (const init of [
      { method: 'POST', body: 'x' },
      { method: 'POST', headers: JSON_HEADERS, body: 'x'.repeat(70_000) },
    ]) {
      const response = await app.request('/echo', init)
      expect(response.headers.get('X-Frame-Options')).toBe('DENY')
      expect(response.headers.get('Cache-Control')).toBe('no-store')
    }
  })

  it('adds HSTS when the public URL is https', async () => {
    const { app } = buildTestApp({ config: { https: true } })
    const response = await app.request('/healthz')
    expect(response.headers.get('Strict-Transport-Security')).toMatch(/^max-age=\d{7,}/)
  })

  it('served by listen(), the socket adds them once, and a route’s own values win', async () => {
    // startServer's way: the app leaves the headers to the HTTP layer (faster), which must then
    // put every one of them on every response, errors and 404s included.
    const { app, log } = buildTestApp({ routes: [testRoutes], securityHeadersBySocket: true })
    const expected = securityHeaders({ https: false })
    expect(Object.keys(expected).length).toBeGreaterThan(10)
    const bare = await app.request('/healthz')
    expect(bare.headers.get('Content-Security-Policy')).toBeNull() // not added twice
    const server = await listen(app, {
      port: 0,
      host: '127.0.0.1',
      logger: log.logger,
      headers: expected,
    })
    try {
      const base = `http://127.0.0.1:${server.port}`
      for (const [path, init] of [
        ['/healthz', {}],
        ['/nope', {}],
        ['/boom', {}],
        ['/echo', { method: 'POST', body: 'x' }],
        ['/cached', {}],
      ] as const) {
        const response = await fetch(`${base}${path}`, init)
        await response.arrayBuffer()
        for (const [name, value] of Object.entries(expected)) {
          const want = path === '/cached' && name === 'Cache-Control' ? 'public, max-age=60' : value
          expect(response.headers.get(name), `${path} ${name}`).toBe(want)
        }
      }
    } finally {
      await server.close()
    }
  })

  it('lets a route choose its own Cache-Control', async () => {
    const { app } = build()
    const response = await app.request('/cached')
    expect(response.headers.get('Cache-Control')).toBe('public, max-age=60')
  })
})

describe('operations', () => {
  it('/healthz answers 200', async () => {
    const { app } = build()
    const response = await app.request('/healthz')
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ status: 'ok' })
  })

  it('/readyz answers 200 when every check passes and 503 naming the one down', async () => {
    let redisUp = true
    const { app } = buildTestApp({
      readiness: [
        { name: 'sqlite', ping: () => Promise.resolve() },
        {
          name: 'redis',
          ping: () => (redisUp ? Promise.resolve() : Promise.reject(new Error('ECONNREFUSED'))),
        },
      ],
    })
    const ok = await app.request('/readyz')
    expect(ok.status).toBe(200)
    expect(await ok.json()).toEqual({ status: 'ok', checks: { sqlite: 'ok', redis: 'ok' } })

    redisUp = false
    const down = await app.request('/readyz')
    expect(down.status).toBe(503)
    const body = (await down.json()) as { error: { code: string; message: string }; checks: object }
    expect(body.error.code).toBe('unavailable')
    expect(body.error.message).toContain('redis')
    expect(body.error.message).not.toContain('sqlite')
    expect(body.checks).toEqual({ sqlite: 'ok', redis: 'unavailable' })

    redisUp = true
    expect((await app.request('/readyz')).status).toBe(200)
  })

  it('/readyz answers 503 when a check hangs', async () => {
    const { app } = buildTestApp({
      readinessTimeoutMs: 50,
      readiness: [{ name: 'postgres', ping: () => new Promise<void>(() => {}) }],
    })
    const response = await app.request('/readyz')
    expect(response.status).toBe(503)
    expect(((await response.json()) as { checks: object }).checks).toEqual({
      postgres: 'unavailable',
    })
  })

  it('/metrics counts requests by route pattern and status, logins, rate limits, sessions', async () => {
    const { app, metrics } = build()
    metrics.setActiveSessions(() => 42)
    await app.request('/users/alice')
    await app.request('/users/bob')
    await app.request('/nope')
    metrics.recordLogin('failure')
    metrics.recordRateLimited('login')
    const response = await app.request('/metrics')
    expect(response.status).toBe(200)
    expect(response.headers.get('Content-Type')).toMatch(/^text\/plain/)
    const text = await response.text()
    expect(text).toMatch(
      /tessera_http_requests_total\{method="GET",route="\/users\/:id",status="200"\} 2/,
    )
    expect(text).toMatch(
      /tessera_http_requests_total\{method="GET",route="unmatched",status="404"\} 1/,
    )
    expect(text).not.toContain('alice')
    expect(text).toMatch(/tessera_http_request_duration_seconds_bucket\{le="0.001",method="GET"/)
    expect(text).toMatch(/tessera_logins_total\{result="failure"\} 1/)
    expect(text).toMatch(/tessera_logins_total\{result="success"\} 0/)
    expect(text).toMatch(/tessera_rate_limited_total\{scope="login"\} 1/)
    expect(text).toMatch(/tessera_active_sessions 42/)
  })

  it('/metrics reports -1 sessions when the store cannot be read, and still answers', async () => {
    const { app, metrics } = build()
    metrics.setActiveSessions(() => Promise.reject(new Error('down')))
    const response = await app.request('/metrics')
    expect(response.status).toBe(200)
    expect(await response.text()).toMatch(/tessera_active_sessions -1/)
  })
})

describe('request log', () => {
  it('writes one line per request with method, route, status and duration', async () => {
    const { app, log } = build()
    await app.request('/users/alice')
    const lines = log.lines().filter((line) => line.msg === 'request')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ method: 'GET', route: '/users/:id', status: 200 })
    expect(typeof lines[0]?.ms).toBe('number')
  })

  it('never contains tokens, cookies, Authorization headers, passwords or query strings', async () => {
    const { app, log } = build()
    const secrets = {
      cookie: 'cookie-value-7f3a9c',
      bearer: 'eyJhbGciOiJFZERTQSJ9.bearer-token-51c2',
      password: 'password-value-d41d8',
      query: 'reset-token-0cc175b9',
      basic: 'dXNlcjpiYXNpYy1wdw',
    }
    await app.request(`/users/me?token=${secrets.query}`, {
      headers: {
        Cookie: `tessera_session=${secrets.cookie}`,
        Authorization: `Bearer ${secrets.bearer}`,
      },
    })
    await app.request(`/echo?token=${secrets.query}`, {
      method: 'POST',
      headers: {
        ...JSON_HEADERS,
        Cookie: `tessera_session=${secrets.cookie}`,
        Authorization: `Basic ${secrets.basic}`,
      },
      body: JSON.stringify({ email: 'a@example.com', password: secrets.password }),
    })
    await app.request(`/boom?token=${secrets.query}`, {
      headers: { Cookie: `tessera_session=${secrets.cookie}` },
    })
    const text = log.text()
    expect(log.lines().filter((line) => line.msg === 'request')).toHaveLength(3)
    for (const value of Object.values(secrets)) expect(text).not.toContain(value)
  })

  it('redacts credentials if an object carrying them is ever logged', () => {
    const { log } = build()
    log.logger.info({
      req: { headers: { authorization: 'Bearer abc123', cookie: 'sid=def456' } },
      body: { password: 'ghi789', token: 'jkl012' },
    })
    const text = log.text()
    for (const value of ['abc123', 'def456', 'ghi789', 'jkl012']) {
      expect(text).not.toContain(value)
    }
  })
})

describe('HTTPError', () => {
  it('is thrown by readJSONBody and expectFields, never a bare Error', async () => {
    const request = new Request('http://localhost/', { method: 'POST', body: '{}' })
    await expect(readJSONBody(request)).rejects.toBeInstanceOf(HTTPError)
    expect(() => expectFields([], { a: 'string' })).toThrow(HTTPError)
  })
})

describe('the error table', () => {
  // Codes no request should cause: misconfiguration or a bug, answered with a generic 500.
  const internal = ERROR_CODES.filter((code) => HTTP_ERRORS[code].status === 500)

  it('answers every code through HTTP_ERRORS; 500 only for config_invalid, cookie_too_large and internal_error', () => {
    expect([...internal].sort()).toEqual(['config_invalid', 'cookie_too_large', 'internal_error'])
  })

  it.each(ERROR_CODES.filter((code) => !internal.includes(code)))(
    'answers %s with its status and the API error shape',
    async (code) => {
      const { app } = buildTestApp({
        routes: [
          (a) =>
            a.get('/throw', () => {
              throw new TesseraError(code, 'internal detail 10.1.2.3')
            }),
        ],
      })
      const response = await app.request('/throw')
      const mapping = HTTP_ERRORS[code]
      expect(response.status).toBe(mapping.status)
      const error = await errorOf(response)
      expect(error.code).toBe(mapping.code)
      if (mapping.message !== undefined) expect(error.message).not.toContain('10.1.2.3')
      // Every 503 and 429 says when to come back (issue 12 item 10).
      if (mapping.status === 503 || mapping.status === 429) {
        expect(response.headers.get('Retry-After')).toBe(String(mapping.retryAfter))
      } else {
        expect(response.headers.get('Retry-After')).toBeNull()
      }
    },
  )

  it.each(internal)('answers %s with a generic 500', async (code) => {
    const { app } = buildTestApp({
      routes: [
        (a) =>
          a.get('/throw', () => {
            throw new TesseraError(code, 'secret detail')
          }),
      ],
    })
    const response = await app.request('/throw')
    expect(response.status).toBe(500)
    expect(await errorOf(response)).toEqual({
      code: 'internal_error',
      message: 'internal server error',
    })
  })

  it('refuses an HTTPError whose status is not the table one (no second status table)', () => {
    expect(() => new HTTPError(401, 'invalid_request', 'm')).toThrow(/HTTP_ERRORS/)
    expect(new HTTPError(413, 'payload_too_large', 'm').status).toBe(413)
  })
})
