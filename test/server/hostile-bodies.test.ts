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
      await requestsLogged(server, route.label ?? route.path, 2)
    }
    const lines = server.log.lines().slice(before)
    expect(lines.filter((line) => Number(line.level) >= 50)).toEqual([])
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    expect(metrics).not.toMatch(/tessera_http_requests_total\{[^}]*status="5\d\d"/)
  })
})
