import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createConsumerApp,
  packTarball,
  run,
  STRICT_TSCONFIG,
  type ConsumerApp,
} from './consumer.js'

// The package as a user gets it: `npm pack` (the prepack build included), a new Express app in
// a temp dir that installs the tarball and only express (no pg, no better-sqlite3, no redis,
// none of their @types, no @types/nodemailer), then the app's own commands: a strict
// typecheck with skipLibCheck off and NodeNext modules, and node. Offline: npm's cache, filled
// by the repository's own `npm ci`, has every package (see consumer.ts).

const EXPRESS_APP = `import express from 'express'
import { createKeyring, createSessionManager, type Session } from 'tessera-auth'
import { tessera, signIn, signOut, currentUser } from 'tessera-auth/express'
import { createMemoryStore } from 'tessera-auth/stores/memory'
import { hashPassword, verifyPassword } from 'tessera-auth/password'
import { createVerifier } from 'tessera-auth/jwt'
import {
  createAuthService,
  createConsoleMailer,
  createDatabase,
  createSMTPMailer,
  migrateToLatest,
  type DatabaseConfig,
  type DatabaseLocation,
} from 'tessera-auth/auth'
import type { ServerConfig } from 'tessera-auth/server'

const keyring = createKeyring(process.env.TESSERA_SECRET ?? 'x'.repeat(40), { policy: 'weak' })
const sessions = createSessionManager(createMemoryStore(), keyring)
const auth = tessera({ sessions, keyring, trustedOrigins: ['http://localhost:3000'] })
const app = express()
app.use(auth.middleware, express.json())
app.post('/login', async (req, res) => {
  const hash = await hashPassword('correct horse battery staple')
  if (!(await verifyPassword(String(req.body.password), hash))) return res.status(401).end()
  await signIn(req, res, 'user-1')
  return res.json({ ok: true })
})
app.post('/logout', async (req, res) => {
  await signOut(req, res)
  res.status(204).end()
})
app.get('/me', auth.requireAuth, (req, res) => {
  const session: Session | null = currentUser(req) === null ? null : null
  res.json({ user: currentUser(req), session })
})

const location: DatabaseLocation = { dialect: 'sqlite', filename: ':memory:' }
const config: DatabaseConfig = location
const server: ServerConfig['database'] = location
export const unused = [createAuthService, createConsoleMailer, createDatabase, migrateToLatest, createVerifier, config, server]
export const smtp = () => createSMTPMailer({ from: 'a@example.com', transport: { host: 'localhost', port: 25, secure: false } })
export default app
`

const NO_DRIVER_CHECK = `import { createDatabase } from 'tessera-auth/auth'
for (const url of ['sqlite::memory:', 'postgres://nobody@127.0.0.1:1/none']) {
  try {
    await createDatabase(url)
    console.log(JSON.stringify({ url, opened: true }))
  } catch (error) {
    console.log(JSON.stringify({ url, code: error.code, message: error.message }))
  }
}
`

// CommonJS: a .cts file typechecks (TypeScript 5.8+ allows require of ESM under nodenext) and
// Node 20.19+ require()s the package (require(esm); tessera has no top-level await).
const CJS_APP = `import { createKeyring } from 'tessera-auth'
import { tessera } from 'tessera-auth/express'
export const kinds = [typeof createKeyring, typeof tessera]
`
const CJS_REQUIRE = `const { createKeyring } = require('tessera-auth')
const { tessera } = require('tessera-auth/express')
console.log(typeof createKeyring, typeof tessera)
`

// The walk of issue 19 on the library alone: a new Express app on the installed package
// (password hash, sessions in memory), listening on a free port: sign in, /me, cross-site post
// refused, sign out. The mounted API and the quick starts of docs/quickstart.md are walked the
// same way on the packed package by test/package/quickstart.test.ts.
const WALK = `import express from 'express'
import { createKeyring, createSessionManager } from 'tessera-auth'
import { tessera, signIn, signOut, currentUser } from 'tessera-auth/express'
import { createMemoryStore } from 'tessera-auth/stores/memory'
import { hashPassword, verifyPassword } from 'tessera-auth/password'

const keyring = createKeyring(process.env.TESSERA_SECRET)
const sessions = createSessionManager(createMemoryStore(), keyring)
const auth = tessera({ sessions, keyring, trustedOrigins: ['http://app.example.test'] })
const hash = await hashPassword('correct horse battery staple')
const app = express()
app.use(auth.middleware, express.json())
app.post('/login', async (req, res) => {
  if (!(await verifyPassword(String(req.body.password), hash))) return res.status(401).json({})
  await signIn(req, res, 'user-1')
  res.json({ ok: true })
})
app.post('/logout', async (req, res) => {
  await signOut(req, res)
  res.status(204).end()
})
app.get('/me', auth.requireAuth, (req, res) => res.json({ user: currentUser(req) }))
const server = app.listen(0, '127.0.0.1')
await new Promise((resolve) => server.once('listening', resolve))
const base = 'http://127.0.0.1:' + server.address().port
const json = { 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' }
const steps = {}
steps.wrong = (await fetch(base + '/login', { method: 'POST', headers: json, body: '{"password":"nope"}' })).status
const login = await fetch(base + '/login', { method: 'POST', headers: json, body: '{"password":"correct horse battery staple"}' })
steps.login = login.status
const cookie = (login.headers.getSetCookie()[0] ?? '').split(';')[0]
steps.me = await (await fetch(base + '/me', { headers: { cookie } })).json()
steps.crossSite = (await fetch(base + '/logout', { method: 'POST', headers: { cookie, origin: 'https://evil.example' } })).status
steps.logout = (await fetch(base + '/logout', { method: 'POST', headers: { cookie, origin: 'http://app.example.test' } })).status
steps.after = (await fetch(base + '/me', { headers: { cookie } })).status
console.log(JSON.stringify(steps))
server.close()
`

let packDir = ''
let tarball = ''
let app: ConsumerApp | undefined

beforeAll(async () => {
  packDir = mkdtempSync(join(tmpdir(), 'tessera-pack-'))
  tarball = await packTarball(packDir)
  app = await createConsumerApp({
    tarball,
    packages: ['express', '@types/express', '@types/node'],
    files: {
      'tsconfig.json': STRICT_TSCONFIG,
      'src/app.ts': EXPRESS_APP,
      'src/cjs.cts': CJS_APP,
      'no-driver.mjs': NO_DRIVER_CHECK,
      'require.cjs': CJS_REQUIRE,
      'walk.mjs': WALK,
    },
  })
}, 300_000)

afterAll(() => {
  app?.remove()
  if (packDir !== '') rmSync(packDir, { recursive: true, force: true })
})

describe('the packed tarball', () => {
  it('has the licence, no install scripts, and no source map pointing at unshipped sources', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball], { cwd: packDir })
    const files = stdout
      .trim()
      .split('\n')
      .map((line) => line.replace(/^package\//, ''))
    expect(files).toContain('LICENSE')
    expect(files).toContain('dist/cli/main.js')
    expect(files).toContain('docs/api.md')
    expect(files.filter((file) => file.endsWith('.tsbuildinfo'))).toEqual([])
    // Maps would point at ../src/*.ts, which the package does not ship: the build makes none.
    expect(files.filter((file) => file.endsWith('.map'))).toEqual([])
    const manifest = JSON.parse(
      (await run('tar', ['-xzOf', tarball, 'package/package.json'], { cwd: packDir })).stdout,
    ) as { scripts: Record<string, string>; license: string }
    expect(manifest.license).toBe('MIT')
    // npm 11 lists a dependency's install-time scripts (prepare too) as needing approval.
    for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) {
      expect(manifest.scripts[hook], hook).toBeUndefined()
    }
  })
})

describe('an Express app that installs the packed tarball and only express', () => {
  it('has none of the optional peers or their types installed', async () => {
    const listed = await run('npm', ['ls', '--all', '--parseable'], { cwd: app?.dir ?? '' })
    for (const name of ['pg', 'better-sqlite3', 'redis', '@types/pg', '@types/better-sqlite3']) {
      expect(listed.stdout).not.toMatch(new RegExp(`/node_modules/${name}$`, 'm'))
    }
    expect(listed.stdout).not.toContain('@types/nodemailer')
  })

  it('typechecks with strict, skipLibCheck: false and module nodenext', async () => {
    // Throws with tsc's report when a declaration needs a package the app does not have.
    await app?.exec('tsc', ['-p', 'tsconfig.json'])
  }, 180_000)

  it('runs: signs in, serves /me, refuses a cross-site post, signs out', async () => {
    const output = await app?.exec('node', ['walk.mjs'], {
      TESSERA_SECRET: randomBytes(32).toString('base64url'),
      NODE_ENV: 'production',
    })
    expect(JSON.parse(output ?? '')).toMatchObject({
      wrong: 401,
      login: 200,
      me: { user: { id: 'user-1' } },
      crossSite: 403,
      logout: 204,
      after: 401,
    })
  })

  it('loads from CommonJS with require()', async () => {
    expect((await app?.exec('node', ['require.cjs']))?.trim()).toBe('function function')
  })

  it('gets an error naming the package to install when a database driver is missing', async () => {
    const output = await app?.exec('node', ['no-driver.mjs'])
    const results = (output ?? '')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { url: string; code?: string; message?: string })
    expect(results).toEqual([
      {
        url: 'sqlite::memory:',
        code: 'config_invalid',
        message:
          'createDatabase: SQLite needs a driver: install the better-sqlite3 package (npm install better-sqlite3)',
      },
      {
        url: 'postgres://nobody@127.0.0.1:1/none',
        code: 'config_invalid',
        message:
          'createDatabase: PostgreSQL needs a driver: install the pg package (npm install pg)',
      },
    ])
  })
})

// Fastify's adapter with only fastify installed: fastify-plugin is a dependency of tessera-auth
// (an optional peer before, so `npm install fastify tessera-auth` could not import the adapter).
const FASTIFY_APP = `import Fastify from 'fastify'
import { createKeyring, createSessionManager } from 'tessera-auth'
import { tesseraPlugin, signIn } from 'tessera-auth/fastify'
import { createMemoryStore } from 'tessera-auth/stores/memory'

const keyring = createKeyring(process.env.TESSERA_SECRET)
const sessions = createSessionManager(createMemoryStore(), keyring)
const app = Fastify()
await app.register(tesseraPlugin, { sessions, keyring, trustedOrigins: ['http://app.example.test'] })
app.post('/login', async (request) => {
  await signIn(request, 'user-2')
  return { ok: true }
})
app.get('/me', { preHandler: app.tessera.requireAuth }, () => ({ ok: true }))
const anonymous = await app.inject({ method: 'GET', url: '/me' })
const login = await app.inject({ method: 'POST', url: '/login', headers: { 'sec-fetch-site': 'same-origin' } })
const cookie = [login.headers['set-cookie']].flat()[0].split(';')[0]
const me = await app.inject({ method: 'GET', url: '/me', headers: { cookie } })
console.log(JSON.stringify({ anonymous: anonymous.statusCode, login: login.statusCode, me: me.statusCode }))
`

describe('a Fastify app that installs the packed tarball and only fastify', () => {
  let fastifyApp: ConsumerApp | undefined

  beforeAll(async () => {
    fastifyApp = await createConsumerApp({
      tarball,
      packages: ['fastify'],
      files: { 'app.mjs': FASTIFY_APP },
    })
  }, 300_000)

  afterAll(() => fastifyApp?.remove())

  it('imports tessera-auth/fastify and signs in', async () => {
    const output = await fastifyApp?.exec('node', ['app.mjs'], {
      TESSERA_SECRET: randomBytes(32).toString('base64url'),
    })
    expect(JSON.parse(output ?? '')).toEqual({ anonymous: 401, login: 200, me: 200 })
  })
})
