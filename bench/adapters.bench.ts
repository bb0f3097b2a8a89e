/**
 * Authenticated `GET /me` through each adapter, against the same framework with nothing (the
 * floor) and with the session library a user would pick instead:
 *   - Express + tessera (Redis) | bare Express | Express + express-session + connect-redis
 *   - Fastify + tessera (Redis) | bare Fastify | Fastify + @fastify/session (+ connect-redis)
 *   - Hono + tessera (Redis)    | bare Hono (@hono/node-server)
 *
 * Each server runs in its own child process (so the load generator never shares its event loop);
 * all start first and stay up, then autocannon (in this process) hits them in turn over loopback,
 * round after round, and the median req/s of each is reported with its ratio to the bare
 * framework. Every request carries a valid session cookie and gets a 200 (checked before and
 * counted during the run).
 *
 * Run alone: `npx tsx bench/adapters.bench.ts`. Env: BENCH_DURATION (s per run, default 3),
 * BENCH_ROUNDS (default 2), BENCH_CONNECTIONS (default 50), BENCH_ONLY (a target prefix: express,
 * fastify, hono), TESSERA_BENCH_REDIS_URL or
 * TESSERA_TEST_REDIS_URL (default redis://127.0.0.1:6379). Keys use a unique prefix and are
 * deleted afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import autocannon from 'autocannon'
import { createClient, type RedisClientType } from 'redis'

const SELF = fileURLToPath(import.meta.url)
const ROOT = resolve(import.meta.dirname, '..')
const TSX = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href
const REDIS_URL =
  process.env.TESSERA_BENCH_REDIS_URL ??
  process.env.TESSERA_TEST_REDIS_URL ??
  'redis://127.0.0.1:6379'
const DURATION = Number(process.env.BENCH_DURATION ?? 3)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)
const SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEF'
const ORIGIN = 'http://127.0.0.1'

const TARGETS = [
  { name: 'express-bare', label: 'Express (bare)', floor: 'express-bare' },
  { name: 'express-tessera', label: 'Express + tessera (Redis)', floor: 'express-bare' },
  {
    name: 'express-session',
    label: 'Express + express-session + connect-redis',
    floor: 'express-bare',
  },
  { name: 'fastify-bare', label: 'Fastify (bare)', floor: 'fastify-bare' },
  { name: 'fastify-tessera', label: 'Fastify + tessera (Redis)', floor: 'fastify-bare' },
  {
    name: 'fastify-session',
    label: 'Fastify + @fastify/session + connect-redis',
    floor: 'fastify-bare',
  },
  { name: 'hono-bare', label: 'Hono (bare, node-server)', floor: 'hono-bare' },
  { name: 'hono-tessera', label: 'Hono + tessera (Redis)', floor: 'hono-bare' },
] as const

type TargetName = (typeof TARGETS)[number]['name']

interface Ready {
  port: number
  cookie: string
}

// ---------------------------------------------------------------- servers (child process side)

async function redisClient(): Promise<RedisClientType> {
  const client = createClient({
    url: REDIS_URL,
    socket: { connectTimeout: 2000 },
    disableOfflineQueue: true,
  })
  client.on('error', () => undefined)
  await client.connect()
  return client
}

async function tesseraSetup(prefix: string): Promise<{
  options: import('../src/core/request-auth.js').RequestAuthOptions
  cookie: string
}> {
  const { createKeyring } = await import('../src/core/keyring.js')
  const { createSessionManager } = await import('../src/core/session-manager.js')
  const { createRedisStore } = await import('../src/stores/redis.js')
  const keyring = createKeyring(SECRET)
  const sessions = createSessionManager(createRedisStore(await redisClient(), { prefix }), keyring)
  const issued = await sessions.create('user-1', { data: { permissions: ['notes.read'] } })
  return {
    options: { sessions, keyring, trustedOrigins: [ORIGIN] },
    cookie: issued.setCookie.split(';')[0] ?? '',
  }
}

/** Logs in through the server's own /login and returns the session cookie it set. */
async function loginCookie(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/login`, { method: 'POST' })
  const line = response.headers.getSetCookie()[0] ?? ''
  return line.split(';')[0] ?? ''
}

const USER = { id: 'user-1' }

declare module 'fastify' {
  interface Session {
    userId?: string
  }
}

async function serve(target: TargetName, prefix: string): Promise<Ready> {
  switch (target) {
    case 'express-bare':
    case 'express-tessera':
    case 'express-session': {
      const { default: express } = await import('express')
      const app = express()
      app.disable('x-powered-by')
      let cookie = 'none=1'
      if (target === 'express-bare') {
        app.get('/me', (_req, res) => {
          res.json({ user: USER })
        })
      } else if (target === 'express-tessera') {
        const { tessera, currentUser } = await import('../src/adapters/express.js')
        const setup = await tesseraSetup(prefix)
        const auth = tessera(setup.options)
        cookie = setup.cookie
        app.use(auth.middleware)
        app.get('/me', auth.requireAuth, (req, res) => {
          res.json({ user: { id: currentUser(req)?.id } })
        })
      } else {
        const { default: session } = await import('express-session')
        const { RedisStore } = await import('connect-redis')
        const store = new RedisStore({ client: await redisClient(), prefix })
        app.use(session({ store, secret: SECRET, resave: false, saveUninitialized: false }))
        app.post('/login', (req, res) => {
          ;(req.session as unknown as { userId: string }).userId = USER.id
          res.json({ ok: true })
        })
        app.get('/me', (req, res) => {
          const userId = (req.session as unknown as { userId?: string }).userId
          if (userId === undefined) res.status(401).end()
          else res.json({ user: { id: userId } })
        })
      }
      const server = app.listen(0, '127.0.0.1')
      await new Promise<void>((done) => server.once('listening', done))
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      if (target === 'express-session') cookie = await loginCookie(port)
      return { port, cookie }
    }
    case 'fastify-bare':
    case 'fastify-tessera':
    case 'fastify-session': {
      const { default: Fastify } = await import('fastify')
      const app = Fastify()
      let cookie = 'none=1'
      if (target === 'fastify-bare') {
        app.get('/me', () => ({ user: USER }))
      } else if (target === 'fastify-tessera') {
        const { tesseraPlugin } = await import('../src/adapters/fastify.js')
        const setup = await tesseraSetup(prefix)
        cookie = setup.cookie
        await app.register(tesseraPlugin, setup.options)
        app.get('/me', { preHandler: app.tessera.requireAuth }, (request) => ({
          user: { id: request.tessera?.user?.id },
        }))
      } else {
        const { default: fastifyCookie } = await import('@fastify/cookie')
        const { default: fastifySession } = await import('@fastify/session')
        const { RedisStore } = await import('connect-redis')
        const store = new RedisStore({ client: await redisClient(), prefix })
        await app.register(fastifyCookie)
        await app.register(fastifySession, {
          secret: SECRET,
          cookie: { secure: false },
          saveUninitialized: false,
          store: store as unknown as NonNullable<
            import('@fastify/session').FastifySessionOptions['store']
          >,
        })
        app.post('/login', (request) => {
          request.session.set('userId', USER.id)
          return { ok: true }
        })
        app.get('/me', (request, reply) => {
          const userId = request.session.get('userId')
          if (userId === undefined) return reply.code(401).send()
          return { user: { id: userId } }
        })
      }
      await app.listen({ port: 0, host: '127.0.0.1' })
      const address = app.server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      if (target === 'fastify-session') cookie = await loginCookie(port)
      return { port, cookie }
    }
    case 'hono-bare':
    case 'hono-tessera': {
      const { Hono } = await import('hono')
      const { serve: serveNode } = await import('@hono/node-server')
      let cookie = 'none=1'
      let fetchHandler: (request: Request) => Response | Promise<Response>
      if (target === 'hono-bare') {
        const app = new Hono()
        app.get('/me', (c) => c.json({ user: USER }))
        fetchHandler = app.fetch
      } else {
        const { tessera } = await import('../src/adapters/hono.js')
        const setup = await tesseraSetup(prefix)
        cookie = setup.cookie
        const auth = tessera(setup.options)
        const app = new Hono<import('../src/adapters/hono.js').TesseraEnv>()
        app.use(auth.middleware)
        app.get('/me', auth.requireAuth, (c) => c.json({ user: { id: c.get('user')?.id } }))
        fetchHandler = app.fetch
      }
      const port = await new Promise<number>((done) => {
        serveNode({ fetch: fetchHandler, port: 0, hostname: '127.0.0.1' }, (info) => {
          done(info.port)
        })
      })
      return { port, cookie }
    }
  }
}

// ---------------------------------------------------------------- load generator (parent side)

interface Child {
  name: TargetName
  process: ChildProcess
  ready: Ready
}

function startChild(name: TargetName, prefix: string): Promise<Child> {
  const child = spawn(process.execPath, ['--import', TSX, SELF, '--serve', name, prefix], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((done, fail) => {
    let buffered = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk
      const newline = buffered.indexOf('\n')
      if (newline === -1) return
      try {
        done({ name, process: child, ready: JSON.parse(buffered.slice(0, newline)) as Ready })
      } catch (error) {
        fail(error instanceof Error ? error : new Error(String(error)))
      }
    })
    child.once('exit', (code) => {
      fail(new Error(`bench server ${name} exited with ${String(code)}`))
    })
  })
}

async function load(child: Child, seconds: number): Promise<{ rps: number; non2xx: number }> {
  const result = await autocannon({
    url: `http://127.0.0.1:${child.ready.port}/me`,
    connections: CONNECTIONS,
    duration: seconds,
    headers: { cookie: child.ready.cookie },
  })
  return { rps: result.requests.average, non2xx: result.non2xx + result.errors + result.timeouts }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

/** Runs the adapter benchmark and prints req/s and the ratio to the bare framework. */
export async function run(): Promise<void> {
  const prefix = `bench_${randomBytes(6).toString('hex')}:`
  // BENCH_ONLY=fastify (a name prefix) runs one framework's targets.
  const only = process.env.BENCH_ONLY ?? ''
  const selected = TARGETS.filter((target) => target.name.startsWith(only))
  const children: Child[] = []
  try {
    // One at a time: tsx start-up on a busy box is slow enough without eight in parallel.
    for (const target of selected) children.push(await startChild(target.name, prefix))
    for (const child of children) {
      const check = await fetch(`http://127.0.0.1:${child.ready.port}/me`, {
        headers: { cookie: child.ready.cookie },
      })
      const body = (await check.json()) as { user?: { id?: string } }
      if (check.status !== 200 || body.user?.id !== USER.id) {
        throw new Error(`${child.name}: GET /me is not authenticated (${check.status})`)
      }
      await load(child, 1) // warm-up (JIT, connection pools)
    }
    const samples = new Map<TargetName, number[]>()
    let failures = 0
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate the order so no target always runs right after the same neighbour.
      const order = round % 2 === 0 ? children : [...children].reverse()
      for (const child of order) {
        const { rps, non2xx } = await load(child, DURATION)
        failures += non2xx
        samples.set(child.name, [...(samples.get(child.name) ?? []), rps])
      }
    }
    const rps = new Map([...samples].map(([name, values]) => [name, median(values)]))
    console.table(
      selected.map((target) => {
        const value = rps.get(target.name) ?? 0
        const floor = rps.get(target.floor) ?? 1
        return {
          target: target.label,
          'req/s (median)': Math.round(value),
          'x bare': Number((value / floor).toFixed(2)),
        }
      }),
    )
    console.log(
      `autocannon: ${CONNECTIONS} connections, ${DURATION} s x ${ROUNDS} rounds per target, servers in child processes; non-2xx/errors: ${failures}`,
    )
  } finally {
    for (const child of children) child.process.kill('SIGTERM')
    const client = await redisClient()
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await client.del(keys)
    }
    client.destroy()
  }
}

const serveIndex = process.argv.indexOf('--serve')
if (serveIndex !== -1 && process.argv[1] !== undefined && SELF === resolve(process.argv[1])) {
  const target = process.argv[serveIndex + 1] as TargetName
  const prefix = process.argv[serveIndex + 2] ?? 'bench:'
  serve(target, prefix).then(
    (ready) => {
      process.stdout.write(`${JSON.stringify(ready)}\n`)
    },
    (error: unknown) => {
      console.error(error)
      process.exit(1)
    },
  )
} else if (
  process.argv[1] !== undefined &&
  import.meta.url === pathToFileURL(process.argv[1]).href
) {
  await run()
}
