import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './api-harness.js'

// Issue 12, item 2: a client that aborts its body or sends a malformed chunk gets 400 (or
// nothing, if it is gone), logged as the client's error and counted as a 4xx, on every route
// that reads a body: the API's JSON routes, the admin panel's forms and the /reset page.

/** Opens a socket to the server. */
function open(server: TestServer): Promise<Socket> {
  const { port } = new URL(server.url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => resolve(socket))
    socket.once('error', reject)
  })
}

/** Everything the server writes on `socket` until it closes it. */
function readAll(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => (text += chunk))
    socket.on('error', () => undefined)
    socket.on('close', () => resolve(text))
  })
}

/** Polls until the server has logged a finished request for `route` `count` times. */
async function requestsLogged(server: TestServer, route: string, count: number): Promise<void> {
  for (let attempt = 0; attempt < 400; attempt++) {
    const done = server.log.lines().filter((line) => line.msg === 'request' && line.route === route)
    if (done.length >= count) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error(`no request line for ${route}`)
}

function headersFor(path: string, type: string, server: TestServer, extra: string): string {
  return (
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${type}\r\n` +
    `Origin: ${server.origin}\r\nSec-Fetch-Site: same-origin\r\n${extra}\r\n`
  )
}

// `label` is the route the request log and the metrics name (the panel is one mounted app).
const ROUTES: Array<{ path: string; type: string; body: string; label?: string }> = [
  {
    path: '/auth/login',
    type: 'application/json',
    body: '{"email":"a@example.com","password":"x"}',
  },
  {
    path: '/auth/signup',
    type: 'application/json',
    body: '{"email":"a@example.com","password":"x"}',
  },
  {
    path: '/auth/password-reset/request',
    type: 'application/json',
    body: '{"email":"a@example.com"}',
  },
  {
    path: '/admin/login',
    type: 'application/x-www-form-urlencoded',
    body: 'email=a%40example.com&password=x&_csrf=x',
    label: '/admin/*',
  },
  {
    path: '/reset',
    type: 'application/x-www-form-urlencoded',
    body: 'token=x&newPassword=y&confirmPassword=y',
  },
]

/** The head of a raw HTTP answer, parsed: status and lower-cased headers. */
function parseHead(text: string): { status: number; headers: Map<string, string>; body: string } {
  const end = text.indexOf('\r\n\r\n')
  const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n')
  const headers = new Map<string, string>()
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: text.slice(end + 4) }
}

/** The security headers of API.md "Conventions", as every response of the server has them. */
function expectSecurityHeaders(text: string): void {
  const { headers } = parseHead(text)
  expect(headers.get('content-security-policy')).toContain("default-src 'none'")
  expect(headers.get('content-security-policy')).toContain("frame-ancestors 'none'")
  expect(headers.get('x-content-type-options')).toBe('nosniff')
  expect(headers.get('x-frame-options')).toBe('DENY')
  expect(headers.get('referrer-policy')).toBe('no-referrer')
  expect(headers.get('cache-control')).toBe('no-store')
}

/** Sends raw bytes on a fresh socket and returns everything the server answers. */
async function exchange(server: TestServer, bytes: string): Promise<string> {
  const socket = await open(server)
  const answer = readAll(socket)
  socket.write(bytes)
  return answer
}

// Issue 12, item 6: what Node's HTTP parser refuses is answered by the server's own
// `clientError` handling, with the security headers and the API's error body.
describe('answers of the HTTP parser on a real socket', () => {
  let server: TestServer

  beforeAll(async () => {
    server = await startTestServer({ kind: 'sqlite' })
  })

  afterAll(async () => {
    await server?.stop()
  })

  const CASES: Array<{ name: string; bytes: () => string; status: number }> = [
    { name: 'a malformed request line', bytes: () => 'GARBAGE\r\n\r\n', status: 400 },
    {
      name: 'a malformed header line',
      bytes: () => 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nNo colon here\r\n\r\n',
      status: 400,
    },
    {
      name: 'an invalid character in a header value',
      bytes: () => 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\x01b\r\n\r\n',
      status: 400,
    },
    {
      name: 'a header block over the limit (431)',
      bytes: () =>
        `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      status: 431,
    },
  ]

  for (const { name, bytes, status } of CASES) {
    it(`${name}: ${status} with the security headers and the error shape`, async () => {
      const text = await exchange(server, bytes())
      const head = parseHead(text)
      expect(head.status).toBe(status)
      expectSecurityHeaders(text)
      expect(head.headers.get('connection')).toBe('close')
      expect(head.headers.get('content-type')).toBe('application/json')
      expect(JSON.parse(head.body)).toMatchObject({ error: { code: 'invalid_request' } })
      expect(server.log.lines().filter((line) => Number(line.level) >= 50)).toEqual([])
    })
  }
})

describe('hostile bodies on a real socket', () => {
  let server: TestServer

  beforeAll(async () => {
    server = await startTestServer({ kind: 'sqlite' })
  })

  afterAll(async () => {
    await server?.stop()
  })

  it('a body cut off mid-way (the client goes away) is no 500, no error-level log line', async () => {
    for (const route of ROUTES) {
      const socket = await open(server)
      const closed = readAll(socket)
      socket.write(
        headersFor(
          route.path,
          route.type,
          server,
          `Content-Length: ${route.body.length + 100}\r\n`,
        ),
      )
      socket.write(route.body.slice(0, 10))
      // Let the server start reading the body before the client disappears.
      await new Promise((resolve) => setImmediate(resolve))
      socket.destroy()
      await closed
      await requestsLogged(server, route.label ?? route.path, 1)
    }
    const lines = server.log.lines()
    const errors = lines.filter((line) => Number(line.level) >= 50)
    expect(errors).toEqual([])
    const statuses = lines
      .filter((line) => line.msg === 'request')
      .map((line) => [line.route, line.status])
    for (const route of ROUTES) expect(statuses).toContainEqual([route.label ?? route.path, 400])
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    expect(metrics).not.toMatch(/tessera_http_requests_total\{[^}]*status="5\d\d"/)
  })

  it('a malformed chunk gets a 400 (or a closed socket), never a 500', async () => {
    const before = server.log.lines().length
    for (const route of ROUTES) {
      const socket = await open(server)
      const answer = readAll(socket)
      socket.write(headersFor(route.path, route.type, server, 'Transfer-Encoding: chunked\r\n'))
      socket.write(`5\r\n${route.body.slice(0, 5)}\r\n`)
      await new Promise((resolve) => setImmediate(resolve))
      socket.write('zz\r\nnot a chunk\r\n\r\n')
      const text = await answer
      expect(text === '' || text.startsWith('HTTP/1.1 400 '), `${route.path}: ${text}`).toBe(true)
      expect(text).not.toContain(' 500 ')
      if (text !== '') expectSecurityHeaders(text)
      await requestsLogged(server, route.label ?? route.path, 2)
    }
    const lines = server.log.lines().slice(before)
    expect(lines.filter((line) => Number(line.level) >= 50)).toEqual([])
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    expect(metrics).not.toMatch(/tessera_http_requests_total\{[^}]*status="5\d\d"/)
  })
})
