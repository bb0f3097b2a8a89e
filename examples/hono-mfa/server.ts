// A Hono app with a password and a second factor (TOTP, recovery codes), embedded: no tessera
// server, the library's sign-in pipeline and second step, and the adapter's step-up guards.
// Run: npx tsx --tsconfig examples/tsconfig.json examples/hono-mfa/server.ts
import { randomBytes } from 'node:crypto'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { createKeyring, createSessionManager } from 'tessera-auth'
import {
  createAuditLog,
  createAuthService,
  createConsoleMailer,
  createDatabase,
  createLoginLimiter,
  createMemoryRateLimitStore,
  createSecondFactorRegistry,
  createSecondFactors,
  createSecondStep,
  migrateToLatest,
} from 'tessera-auth/auth'
import { tessera, type TesseraEnv } from 'tessera-auth/hono'
import { createMemoryStore } from 'tessera-auth/stores/memory'

const port = Number(process.env.PORT ?? 3000)
const publicUrl = process.env.PUBLIC_URL ?? `http://localhost:${port}`
const keyring = createKeyring(process.env.TESSERA_SECRET ?? randomBytes(32).toString('base64url'))
const db = await createDatabase('sqlite::memory:')
await migrateToLatest(db)
const sessions = createSessionManager(createMemoryStore(), keyring)
const audit = createAuditLog(db)
const limiter = createLoginLimiter({ store: createMemoryRateLimitStore() })
// The factors (TOTP secrets sealed with the keyring) and the registry of methods.
const factors = createSecondFactors(db, { keyring, audit, issuer: 'hono-mfa example' })
const registry = createSecondFactorRegistry(factors.verifiers)
const accounts = createAuthService(db, {
  sessions,
  audit,
  limiter,
  publicUrl,
  mailer: createConsoleMailer({ from: 'no-reply@localhost' }),
  // A right password of an account with a factor stops at `second_factor_required`.
  secondFactors: (user) => registry.methodsOf(user.id),
})
const secondStep = createSecondStep({
  db,
  signIn: accounts.signIn,
  registry,
  accounts: accounts.accounts,
  audit,
  limiter,
})
const auth = tessera({ sessions, keyring, trustedOrigins: [publicUrl] })

const app = new Hono<TesseraEnv>()
app.use(auth.middleware)

app.post('/signup', async (c) => {
  const result = await accounts.signup(await c.req.json(), {})
  if (!result.ok) return c.json({ error: result.code }, 400)
  c.header('Set-Cookie', result.setCookie)
  return c.json({ id: result.user.id }, 201)
})

// Step 1: the password. With a factor, a challenge instead of a session.
app.post('/login', async (c) => {
  const result = await accounts.login(await c.req.json(), {
    session: c.get('session') ?? undefined,
  })
  if (result.ok) {
    c.header('Set-Cookie', result.setCookie)
    return c.json({ signedIn: true })
  }
  if (result.code === 'second_factor_required') {
    return c.json({ mfaRequired: true, ...(await secondStep.begin(result, 'login')) })
  }
  return c.json({ error: result.code }, result.code === 'rate_limited' ? 429 : 401)
})

// Step 2: a code from the app (method "totp") or a recovery code (method "recovery_code").
app.post('/login/verify', async (c) => {
  const body = await c.req.json<{ challenge: string; method: string; code: string }>()
  const verified = await secondStep.verify(body, { session: c.get('session') ?? undefined })
  if (!verified.ok)
    return c.json({ error: verified.code }, verified.code === 'invalid_token' ? 400 : 401)
  c.header('Set-Cookie', verified.result.setCookie)
  return c.json({ signedIn: true, aal: verified.result.session.aal })
})

// Enrolment: a signed-in user who proved a credential within the last 10 minutes.
app.post('/mfa/totp', auth.requireFresh(600), async (c) => {
  const user = await accounts.accounts.findUserById(c.get('session')?.userId ?? '')
  if (user === null) return c.json({ error: 'unauthenticated' }, 401)
  const started = await factors.startTOTP(user)
  if (!started.ok) return c.json({ error: started.code }, 409)
  return c.json({ secret: started.secret, uri: started.uri })
})
app.post('/mfa/totp/confirm', auth.requireFresh(600), async (c) => {
  const { code } = await c.req.json<{ code: string }>()
  const confirmed = await factors.confirmTOTP(c.get('session')?.userId ?? '', code)
  if (!confirmed.ok) return c.json({ error: confirmed.code }, 400)
  return c.json({ recoveryCodes: confirmed.recoveryCodes })
})

// A page only for a sign-in with two factors.
app.get('/vault', auth.requireAAL(2), (c) => c.json({ secret: 'only with a second factor' }))

serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, (info) => {
  console.log(`listening on http://127.0.0.1:${info.port}`)
})
