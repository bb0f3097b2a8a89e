import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { spawnEntry, type ServerProcess } from './process.js'

const running: ServerProcess[] = []

afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.cleanup()))
})

async function start(
  entry: string,
  options: Parameters<typeof spawnEntry>[1] = {},
): Promise<ServerProcess> {
  const server = await spawnEntry(entry, options)
  running.push(server)
  return server
}

/** Raw bytes over a fresh TCP connection; resolves with everything the server sent back. */
function rawExchange(
  port: number,
  send: (socket: import('node:net').Socket) => void,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let received = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      received += chunk
    })
    socket.on('error', reject)
    socket.on('close', () => resolve(received))
    socket.on('connect', () => send(socket))
  })
}

/** Tries a new TCP connection: 'connected' or the error code. */
function probe(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'))
    socket.on('connect', () => {
      socket.destroy()
      resolve('connected')
    })
  })
}

// Each case starts a process (tsx compiles the server in it): slow when the machine is loaded.
describe('the server on a real socket', { timeout: 90_000 }, () => {
  it('finishes a request in flight on SIGTERM, refuses new connections, exits 0', async () => {
    const server = await start('test/server/fixtures/serve.ts')
    const body = JSON.stringify({ hello: 'world' })
    let refusedNew = ''
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: server.port,
          method: 'POST',
          path: '/slow',
          headers: { 'Content-Type': 'application/json', 'Content-Length': body.length },
        },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => (text += chunk))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
        },
      )
      req.on('error', reject)
      // Half the body now; the rest only after the server has begun shutting down and a new
      // connection has been refused.
      req.write(body.slice(0, 5))
      void server
        .waitForLine(
          (line) => line.msg === 'shutting down: no new connections, finishing requests in flight',
        )
        .then(() => probe(server.port))
        .then((result) => {
          refusedNew = result
          req.end(body.slice(5))
        })
    })
    await server.waitForLine((line) => line.msg === 'slow request started')
    server.child.kill('SIGTERM')
    const answered = await response
    expect(answered.status).toBe(200)
    expect(JSON.parse(answered.body)).toEqual({ received: { hello: 'world' } })
    expect(refusedNew).toBe('ECONNREFUSED')
    expect(await server.exited).toBe(0)
    const messages = server.lines.map((line) => line.msg)
    expect(messages).toContain('stopped')
    expect(messages.indexOf('request')).toBeLessThan(messages.indexOf('stopped'))
  })

  // Issue 12, item 14: connections accepted in the last moments before SIGTERM were reset,
  // because the listener closed at once. Now readiness turns 503 and the server keeps serving
  // for TESSERA_SHUTDOWN_DRAIN seconds (short here), then closes the listener.
  it('stops in two phases: readiness 503 while still serving, no connection opened before SIGTERM reset', async () => {
    const server = await start('test/server/fixtures/serve.ts', {
      env: { TESSERA_SHUTDOWN_DRAIN: '3' },
    })
    const sockets = await Promise.all(
      Array.from(
        { length: 40 },
        () =>
          new Promise<import('node:net').Socket>((resolve, reject) => {
            const socket = connect(server.port, '127.0.0.1', () => resolve(socket))
            socket.once('error', reject)
          }),
      ),
    )
    server.child.kill('SIGTERM')
    await server.waitForLine((line) => line.msg === 'draining: readiness is 503, still serving')

    const ready = await rawExchange(server.port, (socket) => {
      socket.write('GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n')
    })
    expect(ready).toMatch(/^HTTP\/1.1 503 /)
    expect(ready).toMatch(/retry-after: \d+/i)
    expect(ready).toContain('shutting down')

    const answers = await Promise.all(
      sockets.map(
        (socket) =>
          new Promise<string>((resolve) => {
            let text = ''
            socket.setEncoding('utf8')
            socket.on('data', (chunk: string) => (text += chunk))
            socket.on('error', (error: NodeJS.ErrnoException) => resolve(`error ${error.code}`))
            socket.on('close', () => resolve(text))
            socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
          }),
      ),
    )
    for (const answer of answers) {
      expect(answer).toMatch(/^HTTP\/1.1 200 /)
      // Each connection is told to close, so its client reconnects elsewhere.
      expect(answer).toMatch(/connection: close/i)
    }
    expect(await server.exited).toBe(0)
    const messages = server.lines.map((line) => line.msg)
    const drain = messages.indexOf('draining: readiness is 503, still serving')
    const closing = messages.indexOf(
      'shutting down: no new connections, finishing requests in flight',
    )
    expect(drain).toBeGreaterThanOrEqual(0)
    expect(closing).toBeGreaterThan(drain)
    expect(messages.indexOf('stopped')).toBeGreaterThan(closing)
  })

  it('refuses a chunked body over 64 KiB with 413, and a slow client is cut off', async () => {
    const server = await start('test/server/fixtures/serve.ts', {
      env: { FIXTURE_HEADERS_TIMEOUT: '500' },
    })
    const reply = await rawExchange(server.port, (socket) => {
      socket.write(
        'POST /slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
      )
      const chunk = 'x'.repeat(8192)
      for (let index = 0; index < 10; index++) {
        socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`)
      }
      socket.write('0\r\n\r\n')
    })
    expect(reply).toMatch(/^HTTP\/1.1 413/)
    expect(reply).toContain('"payload_too_large"')

    // Headers never finished: the server answers 408 and closes instead of waiting forever.
    const slow = await rawExchange(server.port, (socket) => {
      socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n')
    })
    expect(slow).toMatch(/^HTTP\/1.1 408/)
  })
})

describe('tessera serve', { timeout: 90_000 }, () => {
  it('serves /healthz, logs each request as JSON, and stops on SIGINT with exit 0', async () => {
    const server = await start('test/server/fixtures/cli.ts', { args: ['serve'] })
    const response = await fetch(`http://127.0.0.1:${server.port}/healthz`)
    expect(response.status).toBe(200)
    expect(response.headers.get('x-frame-options')).toBe('DENY')
    await server.waitForLine((line) => line.msg === 'request' && line.route === '/healthz')
    server.child.kill('SIGINT')
    expect(await server.exited).toBe(0)
  })

  it('says it generated a development secret, once', async () => {
    const first = await start('test/server/fixtures/cli.ts', {
      args: ['serve'],
      env: { NODE_ENV: 'development' },
    })
    const notice = await first.waitForLine(
      (line) => typeof line.msg === 'string' && line.msg.includes('generated a development secret'),
    )
    expect(notice.level).toBe(40)
    first.child.kill('SIGTERM')
    expect(await first.exited).toBe(0)

    const second = await start('test/server/fixtures/cli.ts', {
      args: ['serve'],
      cwd: first.cwd,
      env: { NODE_ENV: 'development' },
    })
    second.child.kill('SIGTERM')
    expect(await second.exited).toBe(0)
    expect(second.lines.some((line) => String(line.msg).includes('generated'))).toBe(false)
  })

  it('refuses to start in production without a secret, in one line that says what to do', async () => {
    const server = await start('test/server/fixtures/cli.ts', {
      args: ['serve'],
      env: { NODE_ENV: 'production' },
      waitForListening: false,
    })
    expect(await server.exited).toBe(1)
    const stderr = server.stderr().trim()
    expect(stderr.split('\n')).toHaveLength(1)
    expect(stderr).toContain('npx tessera-auth secret')
    expect(stderr).toContain('TESSERA_SECRET')
  })

  it('refuses a bad variable naming it', async () => {
    const server = await start('test/server/fixtures/cli.ts', {
      args: ['serve'],
      env: { PORT: 'http' },
      waitForListening: false,
    })
    expect(await server.exited).toBe(1)
    expect(server.stderr()).toContain('PORT')
  })
})
