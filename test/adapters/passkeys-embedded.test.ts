/*
 * Passkeys in an embedding app: tessera-auth/auth's createPasskeys with tessera-auth/hono's
 * middleware and signIn, on the app's own session store. A usernameless sign-in records the
 * passkey's aal and amr on the session, so the adapter's requireAAL(2) lets it through.
 */
import { Hono } from 'hono'
import { expect, it } from 'vitest'
import { signIn, tessera, type TesseraEnv } from '../../src/adapters/hono.js'
import { createAccounts } from '../../src/auth/accounts.js'
import { createAuditLog } from '../../src/auth/audit.js'
import { createPasskeys } from '../../src/auth/passkeys.js'
import { createKeyring } from '../../src/core/keyring.js'
import { createSessionManager } from '../../src/core/session-manager.js'
import { createMemoryStore } from '../../src/stores/memory.js'
import { openSqlite } from '../helpers/databases.js'
import { createCredential, getAssertion } from '../helpers/webauthn.js'

const ORIGIN = 'https://app.example.com'

it('an embedding app signs a user in with a passkey through its adapter, at aal 2', async () => {
  const db = await openSqlite()
  const store = createMemoryStore()
  const keyring = createKeyring('pQ9wq2LmX7vR4pZc8KsY1dHf6gJb3nQa5eUoIiWrVyE')
  const sessions = createSessionManager(store, keyring)
  const audit = createAuditLog(db)
  const accounts = createAccounts(db, { sessions, audit })
  const passkeys = createPasskeys({ db, store, publicUrl: ORIGIN, audit })
  const user = await accounts.createUser({ email: 'ada@example.com' })

  const auth = tessera({ sessions, keyring, trustedOrigins: [ORIGIN] })
  const app = new Hono<TesseraEnv>()
  app.use(auth.middleware)
  app.post('/passkey/options', async (c) => c.json(await passkeys.authenticationOptions()))
  app.post('/passkey/login', async (c) => {
    const body = await c.req.json<{ response: unknown }>()
    const proof = await passkeys.authenticate(body.response)
    if (!proof.ok) return c.json({ error: proof.code }, 401)
    await signIn(c, proof.userId, { auth: { amr: proof.amr, aal: proof.aal } })
    return c.json({ ok: true })
  })
  app.get('/sensitive', auth.requireAAL(2), (c) => c.json({ ok: true }))

  const creation = await passkeys.registrationOptions({ id: user.id, email: user.email })
  const { credential, response } = createCredential(creation, { origin: ORIGIN })
  expect((await passkeys.register(user.id, response)).ok).toBe(true)

  const post = async (path: string, json: unknown, cookie = ''): Promise<Response> =>
    app.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: ORIGIN, cookie },
      body: JSON.stringify(json),
    })
  const options = (await (await post('/passkey/options', {})).json()) as {
    challenge: string
    rpId: string
  }
  expect(options.rpId).toBe('app.example.com')
  const login = await post('/passkey/login', {
    response: getAssertion(options, credential, { origin: ORIGIN }),
  })
  expect(login.status).toBe(200)
  const cookie = (login.headers.getSetCookie()[0] ?? '').split(';')[0] ?? ''
  const sensitive = await app.request('/sensitive', { headers: { cookie } })
  expect(sensitive.status).toBe(200)

  const weak = await post('/passkey/login', {
    response: getAssertion(
      (await (await post('/passkey/options', {})).json()) as { challenge: string },
      credential,
      { origin: ORIGIN, userVerified: false },
    ),
  })
  const weakCookie = (weak.headers.getSetCookie()[0] ?? '').split(';')[0] ?? ''
  expect((await app.request('/sensitive', { headers: { cookie: weakCookie } })).status).toBe(403)
})
