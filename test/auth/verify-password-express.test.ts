/*
 * docs/accounts.md "Verifying credentials without a session": a real Express app that checks the
 * password with auth.verifyPassword and signs in with the adapter's signIn({ auth }), over a real
 * SQLite accounts file. One session per login (no orphan), with the proof recorded on it.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import express, { type NextFunction, type Request, type Response } from 'express'
import request from 'supertest'
import { expect, it, onTestFinished } from 'vitest'
import { signIn, tessera, tesseraErrors } from '../../src/adapters/express.js'
import { createFileOutboxMailer } from '../../src/auth/mailer.js'
import { createAuthService } from '../../src/auth/service.js'
import { createKeyring } from '../../src/core/keyring.js'
import { createSessionManager } from '../../src/core/session-manager.js'
import { createMemoryStore } from '../../src/stores/memory.js'
import { createTestHasher, createTestLimiter } from '../helpers/auth-fixtures.js'
import { openSqlite } from '../helpers/databases.js'

const PASSWORD = 'correct horse battery'

it('an embedding Express app: verifyPassword, then the adapter signIn with auth; one session', async () => {
  const db = await openSqlite()
  const outbox = mkdtempSync(join(tmpdir(), 'tessera-outbox-'))
  onTestFinished(() => rmSync(outbox, { recursive: true, force: true }))
  const keyring = createKeyring('eT9wq2LmX7vR4pZc8KsY1dHf6gJb3nQa5eUoIiWrVyE')
  const sessions = createSessionManager(createMemoryStore(), keyring)
  const passwords = createTestHasher()
  const auth = createAuthService(db, {
    sessions,
    passwords,
    limiter: createTestLimiter(Date.now),
    mailer: createFileOutboxMailer({ from: 'no-reply@example.com', directory: outbox }),
    publicUrl: 'https://app.example.com',
  })
  const created = await auth.createUser({ email: 'ada@example.com', password: PASSWORD })
  if (!created.ok) throw new Error(created.code)

  const web = tessera({ sessions, keyring, trustedOrigins: ['https://app.example.com'] })
  const app = express()
  app.use(web.middleware, express.json())
  app.post('/login', (req: Request, res: Response, next: NextFunction) => {
    void (async (): Promise<void> => {
      const result = await auth.verifyPassword(req.body, {
        ip: req.ip,
        userAgent: req.get('user-agent'),
      })
      if (!result.ok) {
        const status = result.code === 'rate_limited' ? 429 : 401
        res.status(status).json({ error: { code: result.code, message: result.message } })
        return
      }
      await signIn(req, res, result.user.id, {
        auth: result.auth,
        data: { permissions: result.user.permissions },
      })
      res.json({ id: result.user.id })
    })().catch(next)
  })
  app.get('/me', web.requireAuth, (req: Request, res: Response) => {
    const session = req.tessera?.session
    res.json({ aal: session?.aal, amr: session?.amr, authTime: session?.authTime })
  })
  app.use(tesseraErrors)

  const wrong = await request(app).post('/login').send({ email: 'ada@example.com', password: 'x' })
  expect(wrong.status).toBe(401)
  expect(wrong.body).toEqual({
    error: { code: 'invalid_credentials', message: 'email or password is incorrect' },
  })
  const unknown = await request(app)
    .post('/login')
    .send({ email: 'bob@example.com', password: 'x' })
  expect(unknown.body).toEqual(wrong.body)
  expect(passwords.calls.dummy).toBe(1)

  const agent = request.agent(app)
  const ok = await agent.post('/login').send({ email: 'ada@example.com', password: PASSWORD })
  expect(ok.status).toBe(200)
  // Exactly one session: the adapter's. verifyPassword made none.
  expect(await sessions.list(created.user.id)).toHaveLength(1)
  const me = await agent.get('/me')
  expect(me.status).toBe(200)
  expect(me.body).toMatchObject({ aal: 1, amr: ['pwd'] })
  expect(typeof (me.body as { authTime?: unknown }).authTime).toBe('number')
})
