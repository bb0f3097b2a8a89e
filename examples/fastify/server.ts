// tessera with Fastify: the plugin, a sign-in route, guards and sign out (memory store).
// Run: npx tsx --tsconfig examples/tsconfig.json examples/fastify/server.ts
// Imports are relative to src/ so the example typechecks without a build; in an app they are
// 'tessera', 'tessera-auth/fastify' and 'tessera-auth/stores/memory'.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { createKeyring, createSessionManager } from 'tessera-auth'
import { currentUser, signIn, signOut, tesseraPlugin } from 'tessera-auth/fastify'
import { createMemoryStore } from 'tessera-auth/stores/memory'

const port = Number(process.env.PORT ?? 3000)
const publicUrl = process.env.PUBLIC_URL ?? `http://localhost:${port}`
const keyring = createKeyring(process.env.TESSERA_SECRET ?? randomBytes(32).toString('base64url'))
const sessions = createSessionManager(createMemoryStore(), keyring)

const app = Fastify({ logger: true })
await app.register(tesseraPlugin, { sessions, keyring, trustedOrigins: [publicUrl] })

// Demo only: trusts the posted name. Check a password (tessera-auth/password) in a real app.
app.post<{ Body: { name: string } }>('/login', async (request) => {
  await signIn(request, `user:${request.body.name}`, { data: { permissions: ['notes.read'] } })
  return { ok: true }
})
app.post('/logout', async (request, reply) => {
  await signOut(request)
  return reply.code(204).send()
})
app.get('/me', { preHandler: app.tessera.requireAuth }, (request) => ({
  user: currentUser(request),
}))
app.get('/notes', { preHandler: app.tessera.requirePermission('notes.read') }, () => ({
  notes: ['hello'],
}))

await app.listen({ port, host: '127.0.0.1' })
