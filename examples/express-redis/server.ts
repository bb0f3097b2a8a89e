// tessera with Express and Redis: sign in with a password, read /me, sign out.
// Run: REDIS_URL=redis://127.0.0.1:6379 TESSERA_SECRET=$(npx tessera-auth secret) npx tsx --tsconfig examples/tsconfig.json examples/express-redis/server.ts
// Imports are relative to src/ so the example typechecks without a build; in an app they are
// 'tessera', 'tessera-auth/express', 'tessera-auth/stores/redis' and 'tessera-auth/password'.
import { randomBytes } from 'node:crypto'
import express, { type NextFunction, type Request, type Response } from 'express'
import { createClient } from 'redis'
import {
  csrfToken,
  currentUser,
  signIn,
  signOut,
  tessera,
  tesseraErrors,
} from 'tessera-auth/express'
import { hashPassword, verifyPassword } from 'tessera-auth/password'
import { createKeyring, createSessionManager } from 'tessera-auth'
import { createRedisStore } from 'tessera-auth/stores/redis'

const port = Number(process.env.PORT ?? 3000)
const publicUrl = process.env.PUBLIC_URL ?? `http://localhost:${port}`
// A random secret logs everyone out on restart; set TESSERA_SECRET in real use.
const keyring = createKeyring(process.env.TESSERA_SECRET ?? randomBytes(32).toString('base64url'))

const redis = createClient({
  url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  socket: { connectTimeout: 1000 },
  disableOfflineQueue: true,
})
redis.on('error', (error: Error) => console.error('redis:', error.message))
await redis.connect()

const sessions = createSessionManager(
  createRedisStore(redis, { prefix: process.env.REDIS_PREFIX ?? 'example:sess:' }),
  keyring,
  { secure: publicUrl.startsWith('https:') },
)
const auth = tessera({ sessions, keyring, trustedOrigins: [publicUrl] })

// One demo account; a real app keeps users in a database (see tessera's accounts service).
const users = new Map([
  ['demo', { id: 'user-1', hash: await hashPassword('correct horse battery staple') }],
])

/** Express 4 style: pass a rejected handler to next() (Express 5 does it on its own). */
const wrap =
  (handler: (req: Request, res: Response) => Promise<void>) =>
  (req: Request, res: Response, next: NextFunction): void => {
    handler(req, res).catch(next)
  }

const app = express()
app.use(auth.middleware)
app.use(express.json())
app.post(
  '/login',
  wrap(async (req, res) => {
    const { username, password } = req.body as { username?: string; password?: string }
    const user = users.get(String(username))
    if (user === undefined || !(await verifyPassword(String(password), user.hash))) {
      res
        .status(401)
        .json({ error: { code: 'invalid_credentials', message: 'wrong username or password' } })
      return
    }
    await signIn(req, res, user.id, { data: { permissions: ['notes.read'] } })
    res.json({ user: { id: user.id } })
  }),
)
app.post(
  '/logout',
  wrap(async (req, res) => {
    await signOut(req, res)
    res.status(204).end()
  }),
)
app.get('/me', auth.requireAuth, (req, res) => {
  res.json({ user: currentUser(req) })
})
app.get('/notes', auth.requirePermission('notes.read'), (_req, res) => {
  res.json({ notes: ['hello'] })
})
app.get('/csrf', auth.requireAuth, (req, res) => {
  res.json({ token: csrfToken(req) })
})
app.use(tesseraErrors)

const server = app.listen(port, '127.0.0.1', () => {
  const address = server.address()
  const actual = typeof address === 'object' && address !== null ? address.port : port
  console.log(`listening on http://127.0.0.1:${actual}`)
})

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.close(() => {
      redis.destroy()
    })
  })
}
