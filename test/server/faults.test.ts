import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiError, Client, startTestServer, type TestServer } from './api-harness.js'

const PASSWORD = 'correct horse battery staple'

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
}

/** A private redis-server (never the shared one: this test stops it). */
class PrivateRedis {
  process: ChildProcess | undefined

  constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    this.process = child
    await new Promise<void>((resolve, reject) => {
      let output = ''
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes('Ready to accept connections')) resolve()
      })
      child.once('exit', (code) => reject(new Error(`redis-server exited ${code}: ${output}`)))
    })
  }

  async stop(): Promise<void> {
    const child = this.process
    if (child === undefined || child.exitCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
    this.process = undefined
  }
}

describe('faults: Redis goes away while the server runs', () => {
  let redis: PrivateRedis
  let server: TestServer
  let dir: string

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-redis-'))
    redis = new PrivateRedis(await freePort(), dir)
    await redis.start()
    server = await startTestServer(
      { kind: 'sqlite' },
      { REDIS_URL: `redis://127.0.0.1:${redis.port}` },
    )
  })

  afterAll(async () => {
    await server?.stop()
    await redis?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it('answers 503 (not 500, not a hang) and recovers without a restart', async () => {
    const client = new Client(server, Client.sameOrigin(server))
    const signup = await client.request('POST', '/auth/signup', {
      json: { email: 'fault@example.com', password: PASSWORD },
    })
    expect(signup.status).toBe(201)
    expect((await client.request('GET', '/auth/session')).status).toBe(200)

    await redis.stop()
    const down = await client.request('GET', '/auth/session')
    expect(down.status).toBe(503)
    expect((await apiError(down)).code).toBe('unavailable')
    const login = await new Client(server).request('POST', '/auth/login', {
      json: { email: 'fault@example.com', password: PASSWORD },
    })
    expect(login.status).toBe(503)
    const ready = await fetch(`${server.url}/readyz`)
    expect(ready.status).toBe(503)
    const body = (await ready.json()) as { error: { message: string }; checks: object }
    expect(body.error.message).toContain('redis')
    expect(body.checks).toEqual({ sqlite: 'ok', redis: 'unavailable' })
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)

    await redis.start()
    let recovered: Response | undefined
    for (let attempt = 0; attempt < 100; attempt++) {
      const response = await client.request('GET', '/auth/session')
      if (response.status !== 503) {
        recovered = response
        break
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    // The session survived (append-only file): the same cookie works again.
    expect(recovered?.status).toBe(200)
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200)
    expect(server.log.text()).not.toContain('"msg":"unhandled error"')
  })
})
