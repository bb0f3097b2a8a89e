// One benchmark target in its own process: prints {"port", "cookie"} on stdout, then serves
// until killed. Targets: tessera-sqlite, tessera-redis, express-session (connect-redis).
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const target = process.argv[2] ?? 'tessera-sqlite'
const redisUrl = process.env.TESSERA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const prefix = process.argv[3] ?? 'tsrvbench:'
const EMAIL = 'bench@example.com'
const PASSWORD = 'correct horse battery staple'

async function main(): Promise<{ port: number; cookie: string }> {
  if (target.startsWith('tessera')) {
    const { loadConfig } = await import('../src/server/config.js')
    const { createLogger } = await import('../src/server/logger.js')
    const { startServer } = await import('../src/server/main.js')
    const cwd = mkdtempSync(join(tmpdir(), 'tessera-bench-'))
    const env: Record<string, string> = {
      NODE_ENV: 'test',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
    }
    if (target === 'tessera-redis') {
      env.REDIS_URL = redisUrl
      env.TESSERA_REDIS_PREFIX = prefix
    }
    const config = loadConfig(env, { cwd, envFiles: false })
    const running = await startServer(config, { logger: createLogger('silent') })
    const base = `http://127.0.0.1:${running.port}`
    const response = await fetch(`${base}/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: EMAIL, password: PASSWORD }),
    })
    const cookie = (response.headers.getSetCookie()[0] ?? '').split(';')[0] ?? ''
    return { port: running.port, cookie }
  }
  const { default: express } = await import('express')
  const { default: session } = await import('express-session')
  const { RedisStore } = await import('connect-redis')
  const { createClient } = await import('redis')
  const client = createClient({ url: redisUrl })
  await client.connect()
  const app = express()
  app.use(
    session({
      store: new RedisStore({ client, prefix }),
      secret: 'bench-secret-bench-secret-bench-secret',
      resave: false,
      saveUninitialized: false,
    }),
  )
  app.post('/login', (req, res) => {
    ;(req.session as unknown as { userId: string }).userId = 'u1'
    res.json({ ok: true })
  })
  app.get('/auth/session', (req, res) => {
    const userId = (req.session as unknown as { userId?: string }).userId
    if (userId === undefined) res.status(401).end()
    else res.json({ user: { id: userId } })
  })
  const server = app.listen(0, '127.0.0.1')
  await new Promise<void>((done) => server.once('listening', done))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const login = await fetch(`http://127.0.0.1:${port}/login`, { method: 'POST' })
  const cookie = (login.headers.getSetCookie()[0] ?? '').split(';')[0] ?? ''
  return { port, cookie }
}

process.stdout.write(`${JSON.stringify(await main())}\n`)
