/*
 * The admin panel over real parts: a migrated SQLite file, the memory session store, the real
 * session managers, auth service (argon2id at a test cost), login limiter, key set and mailer
 * (file outbox), mounted on the server's real `createApp` at /admin.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import {
  createKeySet,
  createKeyringSealer,
  createMemoryKeyStorage,
  type KeySet,
} from '../../../src/auth/keys.js'
import { createFileOutboxMailer } from '../../../src/auth/mailer.js'
import { createLoginLimiter, createMemoryRateLimitStore } from '../../../src/auth/rate-limit.js'
import { createAuthService, type AuthService } from '../../../src/auth/service.js'
import type { TesseraDB } from '../../../src/auth/db/database.js'
import { createKeyring, type Keyring } from '../../../src/core/keyring.js'
import { createSessionManager, type SessionManager } from '../../../src/core/session-manager.js'
import { createApp, type TesseraApp } from '../../../src/server/app.js'
import {
  createAdminApp,
  createAdminSessionManager,
  mountAdminApp,
  type AdminDeps,
} from '../../../src/server/admin/index.js'
import { createLogger } from '../../../src/server/logger.js'
import { createMetrics } from '../../../src/server/metrics.js'
import { createMemoryStore } from '../../../src/stores/memory.js'
import { createTestHasher } from '../../helpers/auth-fixtures.js'
import { openSqlite } from '../../helpers/databases.js'

export const SECRET = 'Vq3nR8sLw2XyT6pZk9MdC4hJf7bGa1eUoIiWrNyE5tQ'
export const ADMIN_EMAIL = 'root@example.com'
export const ADMIN_PASSWORD = 'admin password for tests'

export interface AdminFixture {
  app: TesseraApp
  db: TesseraDB
  auth: AuthService
  keyring: Keyring
  keys: KeySet
  adminSessions: SessionManager
  appSessions: SessionManager
  publicUrl: string
  /** Files in the mail outbox. */
  mails(): string[]
  /** Creates a user with a password through the real service. */
  createUser(email: string, options?: { isAdmin?: boolean; password?: string }): Promise<string>
}

/** Builds the panel; `publicUrl` defaults to `http://localhost:3000`. */
export async function buildAdmin(
  options: { publicUrl?: string; deps?: Partial<AdminDeps>; withAdmin?: boolean } = {},
): Promise<AdminFixture> {
  const publicUrl = options.publicUrl ?? 'http://localhost:3000'
  const db = await openSqlite()
  const keyring = createKeyring(SECRET)
  const store = createMemoryStore()
  const adminStore = createMemoryStore()
  onTestFinished(async () => {
    await store.close()
    await adminStore.close()
  })
  const appSessions = createSessionManager(store, keyring)
  const adminSessions = createAdminSessionManager(adminStore, keyring, {
    secure: publicUrl.startsWith('https:'),
  })
  const outbox = mkdtempSync(join(tmpdir(), 'tessera-admin-outbox-'))
  onTestFinished(() => rmSync(outbox, { recursive: true, force: true }))
  const passwords = createTestHasher()
  // A frozen clock: a lock the tests cause never runs out while they look at it.
  const limiter = createLoginLimiter({
    store: createMemoryRateLimitStore(),
    now: () => 1_700_000_000_000,
  })
  const auth = createAuthService(db, {
    sessions: appSessions,
    passwords,
    limiter,
    mailer: createFileOutboxMailer({ from: 'no-reply@example.com', directory: outbox }),
    publicUrl,
  })
  const keys = createKeySet({
    storage: createMemoryKeyStorage(),
    sealer: createKeyringSealer(keyring),
  })
  await keys.load()
  const admin = createAdminApp({
    db,
    auth,
    adminSessions,
    appSessions,
    keys,
    keyring,
    passwords,
    limiter,
    publicUrl,
    countSessions: () => Promise.resolve(store.size),
    onError: (error) => {
      throw error
    },
    ...options.deps,
  })
  const app = createApp({
    config: { https: publicUrl.startsWith('https:') },
    logger: createLogger('silent'),
    metrics: createMetrics({ processMetrics: false }),
    routes: [(server) => mountAdminApp(server, admin)],
  })
  const fixture: AdminFixture = {
    app,
    db,
    auth,
    keyring,
    keys,
    adminSessions,
    appSessions,
    publicUrl,
    mails: () => readdirSync(outbox).filter((f) => f.endsWith('.eml')),
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
