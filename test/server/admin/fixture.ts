/*
 * The admin panel over real parts, wired as the server wires it: the backends the server opens
 * (`openBackends`: a migrated SQLite file, or PostgreSQL in a schema of its own plus Redis under a
 * prefix of its own), one session store for app and admin sessions, the server's signing keys
 * (`loadKeys`), session count (`backends.countSessions`) and login limiter store, the real session
 * managers, auth service (argon2id at a test cost) and mailer (file outbox), mounted on the
 * server's real `createApp` at /admin.
 */
import { createIdentities, type Identities } from '../../../src/auth/identities.js'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import type { KeySet } from '../../../src/auth/keys.js'
import { createFileOutboxMailer } from '../../../src/auth/mailer.js'
import { createLoginLimiter } from '../../../src/auth/rate-limit.js'
import { createAuthService, type AuthService } from '../../../src/auth/service.js'
import type { TesseraDB } from '../../../src/auth/db/database.js'
import { createKeyring, type Keyring } from '../../../src/core/keyring.js'
import { createSessionManager, type SessionManager } from '../../../src/core/session-manager.js'
import { createApp, type TesseraApp } from '../../../src/server/app.js'
import { openBackends, type Backends } from '../../../src/server/backends.js'
import { loadConfig } from '../../../src/server/config.js'
import {
  createAdminApp,
  createAdminSessionManager,
  mountAdminApp,
  type AdminDeps,
  type AdminSessionManager,
} from '../../../src/server/admin/index.js'
import { createLogger } from '../../../src/server/logger.js'
import { createMetrics } from '../../../src/server/metrics.js'
import { loadKeys } from '../../../src/server/services.js'
import { createTestHasher, type CountingHasher } from '../../helpers/auth-fixtures.js'
import { uniqueName } from '../../helpers/services.js'
import { createSchema, dropRedisPrefix } from '../api-harness.js'

export const SECRET = 'Vq3nR8sLw2XyT6pZk9MdC4hJf7bGa1eUoIiWrNyE5tQ'
export const ADMIN_EMAIL = 'root@example.com'
export const ADMIN_PASSWORD = 'admin password for tests'

/** What the panel runs on: the server's embedded default, or its shared-backend setup. */
export type AdminBackend =
  { kind: 'sqlite' } | { kind: 'postgres+redis'; pgUrl: string; redisUrl: string }

export interface AdminFixture {
  app: TesseraApp
  db: TesseraDB
  backends: Backends
  auth: AuthService
  keyring: Keyring
  keys: KeySet
  adminSessions: AdminSessionManager
  /** The auth service's password hasher, counting its calls (`calls.verify`, `calls.dummy`). */
  passwords: CountingHasher
  appSessions: SessionManager
  /** Users' identities at identity providers, as the server builds them. */
  identities: Identities
  publicUrl: string
  /** Files in the mail outbox. */
  mails(): string[]
  /** Creates a user with a password through the real service. */
  createUser(email: string, options?: { isAdmin?: boolean; password?: string }): Promise<string>
}

/**
 * Builds the panel on `backend` (SQLite by default), with a schema, Redis prefix and directory of
 * its own, all removed when the test ends; `publicUrl` defaults to `http://localhost:3000`.
 */
export async function buildAdmin(
  options: {
    backend?: AdminBackend
    publicUrl?: string
    deps?: Partial<AdminDeps>
    withAdmin?: boolean
  } = {},
): Promise<AdminFixture> {
  const publicUrl = options.publicUrl ?? 'http://localhost:3000'
  const backend = options.backend ?? { kind: 'sqlite' }
  const dir = mkdtempSync(join(tmpdir(), 'tessera-admin-'))
  const cleanups: Array<() => Promise<void> | void> = [
    () => rmSync(dir, { recursive: true, force: true }),
  ]
  // One hook that undoes everything in reverse, whatever vitest's hook order.
  onTestFinished(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    TESSERA_SECRET: SECRET,
    TESSERA_PUBLIC_URL: publicUrl,
    DATABASE_URL: `sqlite:${join(dir, 'tessera.db')}`,
  }
  if (backend.kind === 'postgres+redis') {
    const schema = uniqueName('tadmin')
    cleanups.push(await createSchema(backend.pgUrl, schema))
    const url = new URL(backend.pgUrl)
    url.searchParams.set('options', `-c search_path=${schema}`)
    env.DATABASE_URL = url.toString()
    const prefix = `${uniqueName('tadmin')}:`
    env.REDIS_URL = backend.redisUrl
    env.TESSERA_REDIS_PREFIX = prefix
    cleanups.push(() => dropRedisPrefix(backend.redisUrl, prefix))
  }
  const config = loadConfig(env, { cwd: dir, envFiles: false })
  const backends = await openBackends(config, createLogger('silent'))
  cleanups.push(() => backends.close())
  const { db } = backends
  const keyring = createKeyring(SECRET)
  // One store for app and admin sessions, as in the server.
  const appSessions = createSessionManager(backends.sessionStore, keyring)
  const adminSessions = createAdminSessionManager(backends.sessionStore, keyring, {
    secure: config.https,
  })
  const outbox = join(dir, 'outbox')
  const passwords = createTestHasher()
  // A frozen clock: a lock the tests cause never runs out while they look at it.
  const limiter = createLoginLimiter({
    store: backends.rateLimitStore,
    now: () => 1_700_000_000_000,
  })
  const auth = createAuthService(db, {
    sessions: appSessions,
    passwords,
    limiter,
    mailer: createFileOutboxMailer({ from: 'no-reply@example.com', directory: outbox }),
    publicUrl,
  })
  cleanups.push(() => auth.idle())
  const keys = await loadKeys(config, keyring, backends)
  const identities = createIdentities(db, { audit: auth.audit })
  const admin = createAdminApp({
    db,
    auth,
    adminSessions,
    appSessions,
    keys,
    keyring,
    publicUrl,
    countSessions: backends.countSessions,
    identities,
    onError: (error) => {
      throw error
    },
    ...options.deps,
  })
  const app = createApp({
    config: { https: config.https },
    logger: createLogger('silent'),
    metrics: createMetrics({ processMetrics: false }),
    routes: [(server) => mountAdminApp(server, admin)],
  })
  const fixture: AdminFixture = {
    app,
    db,
    backends,
    auth,
    keyring,
    keys,
    adminSessions,
    appSessions,
    passwords,
    identities,
    publicUrl,
    mails: () => {
      try {
        return readdirSync(outbox).filter((f) => f.endsWith('.eml'))
      } catch {
        return [] // no mail yet: the outbox is made by the first one
      }
    },
    async createUser(email, userOptions = {}) {
      const result = await auth.createUser({
        email,
        password: userOptions.password ?? 'user password for tests',
        isAdmin: userOptions.isAdmin === true,
      })
      if (!result.ok) throw new Error(result.message)
      return result.user.id
    },
  }
  if (options.withAdmin !== false)
    await fixture.createUser(ADMIN_EMAIL, { isAdmin: true, password: ADMIN_PASSWORD })
  return fixture
}

/** A cookie-keeping client over `app.request()`, sending what a same-origin browser sends. */
export class Client {
  readonly cookies = new Map<string, string>()
  constructor(
    readonly app: TesseraApp,
    readonly origin = 'http://localhost:3000',
  ) {}

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  private keep(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === ''
      if (expired) this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  async get(path: string, headers: Record<string, string> = {}): Promise<Response> {
    const response = await this.app.request(path, {
      headers: { cookie: this.cookieHeader(), 'sec-fetch-site': 'same-origin', ...headers },
    })
    this.keep(response)
    return response
  }

  async post(
    path: string,
    fields: Record<string, string | string[]>,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    const body = new URLSearchParams()
    for (const [key, value] of Object.entries(fields)) {
      for (const item of Array.isArray(value) ? value : [value]) body.append(key, item)
    }
    const response = await this.app.request(path, {
      method: 'POST',
      headers: {
        cookie: this.cookieHeader(),
        'content-type': 'application/x-www-form-urlencoded',
        origin: this.origin,
        'sec-fetch-site': 'same-origin',
        ...headers,
      },
      body: body.toString(),
    })
    this.keep(response)
    return response
  }

  /** The CSRF token in a page's forms. */
  async csrf(path = '/admin'): Promise<string> {
    const page = await (await this.get(path)).text()
    const match = /name="_csrf" value="([^"]+)"/.exec(page)
    if (match?.[1] === undefined) throw new Error(`no CSRF field on ${path}`)
    return match[1]
  }

  /** Posts a form of a page with its CSRF token; follows nothing. */
  async submit(
    path: string,
    fields: Record<string, string | string[]>,
    from = '/admin',
  ): Promise<Response> {
    return this.post(path, { _csrf: await this.csrf(from), ...fields })
  }

  async signIn(email = ADMIN_EMAIL, password = ADMIN_PASSWORD): Promise<Response> {
    const token = await this.csrf('/admin/login')
    return this.post('/admin/login', { _csrf: token, email, password })
  }
}
