// tessera with Hono on Node: typed context variables, guards, sign in and out (memory store).
// Run: npx tsx --tsconfig examples/tsconfig.json examples/hono/server.ts
// Imports are relative to src/ so the example typechecks without a build; in an app they are
// 'tessera', 'tessera-auth/hono' and 'tessera-auth/stores/memory'.
import { randomBytes } from 'node:crypto'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { createKeyring, createSessionManager } from 'tessera-auth'
import { signIn, signOut, tessera, type TesseraEnv } from 'tessera-auth/hono'
import { createMemoryStore } from 'tessera-auth/stores/memory'

const port = Number(process.env.PORT ?? 3000)
const publicUrl = process.env.PUBLIC_URL ?? `http://localhost:${port}`
const keyring = createKeyring(process.env.TESSERA_SECRET ?? randomBytes(32).toString('base64url'))
const auth = tessera({
  sessions: createSessionManager(createMemoryStore(), keyring),
  keyring,
  trustedOrigins: [publicUrl],
})

const app = new Hono<TesseraEnv>()
app.use(auth.middleware)
// Demo only: trusts the posted name. Check a password (tessera-auth/password) in a real app.
app.post('/login', async (c) => {
  const { name } = await c.req.json<{ name: string }>()
  await signIn(c, `user:${name}`, { data: { permissions: ['notes.read'] } })
  return c.json({ ok: true })
})
app.post('/logout', async (c) => {
  await signOut(c)
  return c.body(null, 204)
})
app.get('/me', auth.requireAuth, (c) => c.json({ user: c.get('user') }))
app.get('/notes', auth.requirePermission('notes.read'), (c) => c.json({ notes: ['hello'] }))

serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, (info) => {
  console.log(`listening on http://127.0.0.1:${info.port}`)
})
