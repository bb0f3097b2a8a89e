/*
 * What the panel is built from (AdminDeps), the Hono environment of its sub-app, and the kit every
 * route module receives: the dependencies with their defaults resolved once, plus the request
 * helpers that need them (client address, page context, sending a page).
 */
import type { HttpBindings } from '@hono/node-server'
import type { Context, Hono } from 'hono'
import type { TesseraVariables } from '../../adapters/hono.js'
import type { User } from '../../auth/accounts.js'
import type { TesseraDB } from '../../auth/db/database.js'
import type { Identities } from '../../auth/identities.js'
import type { KeySet } from '../../auth/keys.js'
import type { PasswordPolicyOptions } from '../../auth/password-policy.js'
import type { AuthService } from '../../auth/service.js'
import { clientIp, parseTrustedProxies, type TrustedProxies } from '../../core/client-ip.js'
import { createTrustedOrigins, type TrustedOrigins } from '../../core/csrf.js'
import { TesseraError } from '../../core/errors.js'
import type { Keyring } from '../../core/keyring.js'
import type { Session, SessionManager } from '../../core/session-manager.js'
import type { SafeHtml } from './html.js'
import type { AdminSessionManager } from './setup.js'
import type { ServerMetrics } from '../metrics.js'
import type { Flash, PageContext, PasswordRules } from './views/layout.js'

/** What {@link createAdminApp} is built from: the server's real services. */
export interface AdminDeps {
  /** The accounts database (counts for the dashboard, direct grants, group permissions). */
  db: TesseraDB
  /**
   * The auth service of the API: sign-in (its pipeline, with the API's password hasher and login
   * limiter, so the panel is no side door for guessing), accounts, audit, createUser, resets,
   * session revocation.
   */
  auth: AuthService
  /** The panel's own sessions and the setup link; build it with {@link createAdminSessionManager}. */
  adminSessions: AdminSessionManager
  /** The application's sessions (listed and revoked per user). */
  appSessions: SessionManager
  /** Signing keys of access tokens (listed and rotated). */
  keys: KeySet
  /** The server keyring (CSRF tokens use its `csrf` purpose). */
  keyring: Keyring
  /** The public URL of the server (its origin is trusted for form posts). */
  publicUrl: string
  /** More trusted origins (`TESSERA_TRUSTED_ORIGINS`). @default [] */
  trustedOrigins?: readonly string[] | undefined
  /** Proxies whose `X-Forwarded-For` is believed. @default none */
  trustedProxies?: TrustedProxies | readonly string[] | undefined
  /**
   * The password policy the auth service applies (`AuthServiceOptions.passwordPolicy`), so the
   * forms that set a password can state it. @default 12 to 128 characters, common list
   */
  passwordPolicy?: PasswordPolicyOptions | undefined
  /**
   * The server's metrics: admin-panel sign-ins count in `tessera_logins_total` like the API's,
   * refusals by the limiter in `tessera_rate_limited_total` (scope `admin_login`). @default none
   */
  metrics?: Pick<ServerMetrics, 'recordLogin' | 'recordRateLimited'> | undefined
  /** Users' identities at identity providers (listed and unlinked per user). @default none */
  identities?: Identities | undefined
  /** Live browser sessions, when the store can count them (`Backends.countSessions`). */
  countSessions?: (() => Promise<number>) | undefined
  /** Where the panel is mounted. @default '/admin' */
  basePath?: string | undefined
  /** Receives unexpected errors (the page shows a generic message). @default console.error */
  onError?: ((error: unknown) => void) | undefined
  /** @default Date.now */
  now?: () => number
}

/**
 * The Hono environment of the admin sub-app: core's request authentication state
 * (`tessera-auth/hono`: `tessera`, `session`, `user`), the response's CSP nonce, and, behind the
 * guard, the signed-in administrator and their panel session.
 */
export interface AdminEnv {
  Bindings: Partial<HttpBindings>
  Variables: TesseraVariables<User> & {
    nonce: string
    adminSession: Session
    admin: User
  }
}

/** A request of the panel. */
export type AdminContext = Context<AdminEnv>

/** The panel's Hono sub-app, which every route module adds its routes to. */
export type AdminApp = Hono<AdminEnv>

/** The dependencies with defaults resolved, shared by every route module. */
export interface AdminKit {
  readonly deps: AdminDeps
  /** Mount path without a trailing slash, e.g. `/admin`. */
  readonly base: string
  readonly trusted: TrustedOrigins
  readonly proxies: TrustedProxies
  /** True when the public URL is https (cookies get `Secure`). */
  readonly secureCookies: boolean
  readonly now: () => number
  readonly onError: (error: unknown) => void
  /** What the password forms state (from `deps.passwordPolicy`). */
  readonly passwordRules: PasswordRules
}

/**
 * Resolves {@link AdminDeps} once for every route module.
 *
 * @throws TesseraError `config_invalid` for a bad `basePath`, `publicUrl`, trusted origin or proxy
 */
export function createAdminKit(deps: AdminDeps): AdminKit {
  const base = (deps.basePath ?? '/admin').replace(/\/+$/, '')
  if (!/^\/[A-Za-z0-9/_-]*$/.test(base)) {
    throw new TesseraError('config_invalid', 'admin basePath must be a path such as /admin')
  }
  let publicOrigin: string
  try {
    publicOrigin = new URL(deps.publicUrl).origin
  } catch (cause) {
    throw new TesseraError('config_invalid', 'admin publicUrl must be an absolute URL', { cause })
  }
  const trusted = createTrustedOrigins([publicOrigin, ...(deps.trustedOrigins ?? [])])
  const proxies: TrustedProxies =
    deps.trustedProxies === undefined
      ? parseTrustedProxies([])
      : 'contains' in deps.trustedProxies
        ? deps.trustedProxies
        : parseTrustedProxies(deps.trustedProxies)
  return {
    deps,
    base,
    trusted,
    proxies,
    secureCookies: publicOrigin.startsWith('https:'),
    now: deps.now ?? Date.now,
    onError:
      deps.onError ??
      ((error: unknown): void => {
        console.error('tessera admin: unexpected error:', error)
      }),
    passwordRules: {
      minLength: deps.passwordPolicy?.minLength ?? 12,
      maxLength: deps.passwordPolicy?.maxLength ?? 128,
      commonList: deps.passwordPolicy?.commonList ?? true,
    },
  }
}

/** Where the request came from: the client address (through trusted proxies) and user agent. */
export function requestContext(
  kit: AdminKit,
  c: AdminContext,
): { ip: string | undefined; userAgent: string | undefined } {
  const socketAddress = c.env?.incoming?.socket.remoteAddress
  const ip =
    socketAddress === undefined
      ? undefined
      : clientIp(socketAddress, c.req.header('x-forwarded-for'), kit.proxies)
  const agent = c.req.header('user-agent')
  return { ip, userAgent: agent === undefined ? undefined : agent.slice(0, 512) }
}

/** {@link requestContext} plus the signed-in administrator as the actor, for the audit log. */
export function actionContext(
  kit: AdminKit,
  c: AdminContext,
): { ip: string | undefined; userAgent: string | undefined; actorId: string } {
  return { ...requestContext(kit, c), actorId: c.get('admin').id }
}

/** The page context of a signed-in administrator's page. */
export function pageContext(
  kit: AdminKit,
  c: AdminContext,
  csrf: string,
  flash?: Flash,
): PageContext {
  return { base: kit.base, nonce: c.get('nonce'), csrf, admin: c.get('admin'), flash }
}

/** The page context of a page without a signed-in administrator (sign-in, setup, errors). */
export function anonymousPage(kit: AdminKit, c: AdminContext, csrf: string): PageContext {
  return { base: kit.base, nonce: c.get('nonce'), csrf, admin: null }
}

/** Answers with a rendered page. */
export function send(
  c: AdminContext,
  body: SafeHtml,
  status: 200 | 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429 | 503 | 500 = 200,
): Response {
  return c.html(body.value, status)
}
