// One benchmark target in its own process: prints {"port", "cookie", "login"} on stdout, then
// serves until killed. Targets: tessera-sqlite, tessera-redis (tessera-redis-nocache: with
// TESSERA_NEAR_CACHE=off), tessera-postgres (accounts and
// sessions in a schema of the test database), express-session (connect-redis and
// a bcrypt login), express-session-dropin (the same app and store with tessera-auth/express-session
// in place of express-session: the one-line switch), better-auth (Express + better-auth over SQLite), hono-bare (Hono on
// @hono/node-server, no auth), and node-http: a bare
// `node:http` server answering a fixed JSON body, the box's ceiling on this run (it checks nothing,
// has no 401 and no login).
//
// Every other target serves `GET /auth/session` (200 JSON for the printed cookie, 401 without one) and a
// password login for each of the printed accounts; all accounts share PASSWORD.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Server } from 'node:http'

const target = process.argv[2] ?? 'tessera-sqlite'
const redisUrl = process.env.TESSERA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const pgUrl = process.env.TESSERA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const prefix = process.argv[3] ?? 'tsrvbench:'
// One account per login connection: tessera counts an attempt against the account before the
// password is checked (a burst on one account is refused past its free failures), so the login
// bench never runs two logins of one account at once.
const ACCOUNTS = Number(process.argv[4] ?? 8)
// Databases go under this directory (the bench makes one per run and deletes it at the end).
const DATA = mkdtempSync(join(process.argv[5] ?? tmpdir(), `${target}-`))
const EMAILS = Array.from({ length: ACCOUNTS }, (_, index) => `bench${index}@example.com`)
const PASSWORD = 'correct horse battery staple'
// OWASP's minimum for bcrypt, as tessera's argon2id defaults are OWASP's minimum for argon2id.
const BCRYPT_COST = 10

/** The PostgreSQL schema of a run's prefix (tessera-postgres). */
function schemaOf(prefix: string): string {
  return prefix.replace(/[^a-z0-9_]/gi, '_').replace(/_+$/, '')
}

export interface TargetInfo {
  port: number
  /** `name=value` of a valid session cookie for EMAILS[0]. */
  cookie: string
  /** Where a JSON `{ email, password }` login is posted, with which extra headers. */
  login: {
    path: string
    headers: Record<string, string>
    emails: string[]
    password: string
  } | null
}

function firstCookie(response: Response, name?: string): string {
  const cookies = response.headers.getSetCookie().map((line) => line.split(';')[0] ?? '')
  const found = name === undefined ? cookies[0] : cookies.find((c) => c.startsWith(`${name}=`))
  if (found === undefined || found === '') {
    throw new Error(`${target}: no session cookie in ${response.status} response`)
  }
  return found
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1')
  await new Promise<void>((done) => server.once('listening', done))
  const address = server.address()
  return typeof address === 'object' && address !== null ? address.port : 0
}

async function postJSON(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
}

async function tessera(): Promise<TargetInfo> {
  const { loadConfig } = await import('../src/server/config.js')
  const { createLogger } = await import('../src/server/logger.js')
  const { startServer } = await import('../src/server/main.js')
  const cwd = DATA
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
  }
  if (target === 'tessera-redis' || target === 'tessera-redis-nocache') {
    env.REDIS_URL = redisUrl
    env.TESSERA_REDIS_PREFIX = prefix
    // The server's near-cache (docs/scaling.md) is on with Redis; this target turns it off.
    if (target === 'tessera-redis-nocache') env.TESSERA_NEAR_CACHE = 'off'
  }
  if (target === 'tessera-postgres') {
    // Accounts and sessions in PostgreSQL, in a schema of this run (bench/wrk.ts drops it).
    const { default: pg } = await import('pg')
    const schema = schemaOf(prefix)
    const admin = new pg.Client({ connectionString: pgUrl })
    await admin.connect()
    await admin.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`)
    await admin.end()
    const url = new URL(pgUrl)
    url.searchParams.set('options', `-c search_path=${schema}`)
    env.DATABASE_URL = url.toString()
  }
  const config = loadConfig(env, { cwd, envFiles: false })
  const running = await startServer(config, { logger: createLogger('silent') })
  const base = `http://127.0.0.1:${running.port}`
  let cookie = ''
  for (const email of EMAILS) {
    const response = await postJSON(`${base}/auth/signup`, { email, password: PASSWORD })
    if (response.status !== 201) throw new Error(`tessera signup: ${response.status}`)
    if (cookie === '') cookie = firstCookie(response)
  }
  return {
    port: running.port,
    cookie,
    login: { path: '/auth/login', headers: {}, emails: EMAILS, password: PASSWORD },
  }
}

async function expressSession(dropIn: boolean): Promise<TargetInfo> {
  const { default: express } = await import('express')
  // The one line an app changes to switch; everything else below is the same app.
  const session = dropIn
    ? ((await import('../src/adapters/express-session/index.js'))
        .default as unknown as typeof import('express-session'))
    : (await import('express-session')).default
  const { RedisStore } = await import('connect-redis')
  const { createClient } = await import('redis')
  const { default: Database } = await import('better-sqlite3')
  const bcrypt = await import('@node-rs/bcrypt')
  const { createServer } = await import('node:http')
  const client = createClient({ url: redisUrl })
  await client.connect()
  // The users of the typical express-session stack: a SQLite table with a bcrypt hash.
  const db = new Database(join(DATA, 'users.db'))
  db.pragma('journal_mode = WAL')
  db.exec(
    'CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT UNIQUE NOT NULL, hash TEXT NOT NULL)',
  )
  const insert = db.prepare('INSERT INTO users (id, email, hash) VALUES (?, ?, ?)')
  for (const [index, email] of EMAILS.entries()) {
    insert.run(`u${index}`, email, await bcrypt.hash(PASSWORD, BCRYPT_COST))
  }
  const byEmail = db.prepare<[string], { id: string; hash: string }>(
    'SELECT id, hash FROM users WHERE email = ?',
  )
  const app = express()
  app.use(
    session({
      store: new RedisStore({ client, prefix }),
      secret: 'bench-secret-bench-secret-bench-secret',
      resave: false,
      saveUninitialized: false,
    }),
  )
  app.post('/auth/login', express.json(), (req, res, next) => {
    const { email, password } = (req.body ?? {}) as { email?: unknown; password?: unknown }
    if (typeof email !== 'string' || typeof password !== 'string') {
      res.status(400).end()
      return
    }
    const user = byEmail.get(email)
    void (user === undefined ? Promise.resolve(false) : bcrypt.verify(password, user.hash)).then(
      (ok) => {
        if (!ok || user === undefined) {
          res.status(401).end()
          return
        }
        // A new session id on login (session fixation), as express-session's docs show.
        req.session.regenerate((error) => {
          if (error) return next(error)
          ;(req.session as unknown as { userId: string }).userId = user.id
          req.session.save((saveError) => {
            if (saveError) return next(saveError)
            res.json({ user: { id: user.id } })
          })
        })
      },
      next,
    )
  })
  app.get('/auth/session', (req, res) => {
    const userId = (req.session as unknown as { userId?: string }).userId
    if (userId === undefined) res.status(401).end()
    else res.json({ user: { id: userId } })
  })
  const port = await listen(createServer(app))
  const login = await postJSON(`http://127.0.0.1:${port}/auth/login`, {
    email: EMAILS[0],
    password: PASSWORD,
  })
  return {
    port,
    cookie: firstCookie(login),
    login: { path: '/auth/login', headers: {}, emails: EMAILS, password: PASSWORD },
  }
}

async function betterAuth(): Promise<TargetInfo> {
  const { default: express } = await import('express')
  const { createServer } = await import('node:http')
  const { betterAuth } = await import('better-auth')
  const { getMigrations } = await import('better-auth/db/migration')
  const { fromNodeHeaders, toNodeHandler } = await import('better-auth/node')
  const { default: Database } = await import('better-sqlite3')
  const db = new Database(join(DATA, 'auth.db'))
  db.pragma('journal_mode = WAL')
  const app = express()
  const server = createServer(app)
  // The port is part of better-auth's baseURL, so listen first and mount the routes after.
  const port = await listen(server)
  const auth = betterAuth({
    baseURL: `http://127.0.0.1:${port}`,
    secret: 'bench-secret-bench-secret-bench-secret',
    database: db,
    emailAndPassword: { enabled: true },
    // As in production (better-auth turns its limiter on when NODE_ENV=production), but the
    // default sign-in rule (3 per 10 s per IP) would refuse the login bench: raised for it only.
    rateLimit: {
      enabled: true,
      customRules: { '/sign-in/email': { window: 10, max: 1_000_000 } },
    },
    // Loopback clients send no X-Forwarded-For; the limiter then uses one shared bucket.
    logger: { level: 'error' },
    telemetry: { enabled: false },
    // session.cookieCache stays at its default: off.
  })
  const { runMigrations } = await getMigrations(auth.options)
  await runMigrations()
  // better-auth's handler reads the raw body: mount it before any body parser (its Express guide).
  app.all('/api/auth/*splat', toNodeHandler(auth))
  app.get('/auth/session', (req, res, next) => {
    auth.api.getSession({ headers: fromNodeHeaders(req.headers) }).then((found) => {
      if (found === null) res.status(401).end()
      else res.json(found)
    }, next)
  })
  const base = `http://127.0.0.1:${port}`
  // better-auth refuses a POST without an Origin (MISSING_OR_NULL_ORIGIN); a browser sends one.
  const headers = { origin: base }
  // Accounts through its server API (the handler's sign-up rule admits 3 per 10 s per IP)...
  for (const email of EMAILS) {
    await auth.api.signUpEmail({ body: { email, password: PASSWORD, name: 'Bench' } })
  }
  // ...and the session cookie from a sign-in through its HTTP handler, as a browser gets it.
  const response = await postJSON(
    `${base}/api/auth/sign-in/email`,
    { email: EMAILS[0], password: PASSWORD },
    headers,
  )
  if (response.status !== 200) {
    throw new Error(`better-auth sign-in: ${response.status} ${await response.text()}`)
  }
  const cookie = firstCookie(response, 'better-auth.session_token')
  return {
    port,
    cookie,
    login: { path: '/api/auth/sign-in/email', headers, emails: EMAILS, password: PASSWORD },
  }
}

async function nodeHttp(): Promise<TargetInfo> {
  const { createServer } = await import('node:http')
  const body = JSON.stringify({ user: { id: 'u0' } })
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(body)
  })
  return { port: await listen(server), cookie: '', login: null }
}

/** Bare Hono on @hono/node-server (what tessera's server is built on), no auth: its ceiling. */
async function honoBare(): Promise<TargetInfo> {
  const { Hono } = await import('hono')
  const { serve } = await import('@hono/node-server')
  const app = new Hono()
  app.get('/auth/session', (c) => c.json({ user: { id: 'u0' } }))
  const port = await new Promise<number>((resolve) => {
    serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (address) => resolve(address.port))
  })
  return { port, cookie: '', login: null }
}

const info =
  target === 'node-http'
    ? await nodeHttp()
    : target === 'hono-bare'
      ? await honoBare()
      : target === 'express-session' || target === 'express-session-dropin'
        ? await expressSession(target === 'express-session-dropin')
        : target === 'better-auth'
          ? await betterAuth()
          : await tessera()
process.stdout.write(`${JSON.stringify(info)}\n`)
// A clean exit on SIGTERM, so `node --cpu-prof` writes its profile (bench/profile.ts).
process.once('SIGTERM', () => process.exit(0))
