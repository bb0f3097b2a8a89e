import { randomBytes } from 'node:crypto'
import type { HttpBindings } from '@hono/node-server'
import { Hono, type Context, type Env } from 'hono'
import { isPermissionCodename, type User } from '../../auth/accounts.js'
import type { AuditEventType } from '../../auth/audit.js'
import type { TesseraDB } from '../../auth/db/database.js'
import { parseEmail } from '../../auth/email.js'
import type { KeySet } from '../../auth/keys.js'
import type { PasswordHasher } from '../../auth/passwords.js'
import type { LoginLimiter, LoginTicket } from '../../auth/rate-limit.js'
import type { AuthService } from '../../auth/service.js'
import { clientIp, parseTrustedProxies, type TrustedProxies } from '../../core/client-ip.js'
import { serializeCookie, serializeDeletedCookie } from '../../core/cookie.js'
import {
  checkCrossSite,
  createCSRFToken,
  createTrustedOrigins,
  verifyCSRFToken,
  type TrustedOrigins,
} from '../../core/csrf.js'
import { isTesseraError, TesseraError } from '../../core/errors.js'
import type { Keyring } from '../../core/keyring.js'
import { readCookie, type Session, type SessionManager } from '../../core/session-manager.js'
import type { SafeHtml } from './html.js'
import { countAdmins, SETUP_KIND } from './setup.js'
import {
  auditPage,
  dashboardPage,
  groupsPage,
  keysPage,
  messagePage,
  sessionsPage,
  setupPage,
  signInPage,
  userPage,
  usersPage,
  type Flash,
  type PageContext,
} from './views.js'

/** The permission that opens the admin panel to a user who is not an administrator. */
export const ADMIN_PERMISSION = 'admin.access'

/** What {@link createAdminApp} is built from: the server's real services. */
export interface AdminDeps {
  /** The accounts database (counts for the dashboard, direct grants, group permissions). */
  db: TesseraDB
  /** The auth service of the API: accounts, audit, createUser, resets, session revocation. */
  auth: AuthService
  /** The panel's own sessions; build it with {@link createAdminSessionManager}. */
  adminSessions: SessionManager
  /** The application's sessions (listed and revoked per user). */
  appSessions: SessionManager
  /** Signing keys of access tokens (listed and rotated). */
  keys: KeySet
  /** The server keyring (CSRF tokens use its `csrf` purpose). */
  keyring: Keyring
  /** Verifies passwords at sign-in. */
  passwords: PasswordHasher
  /** The login limiter of the API, shared so that the panel is no side door for guessing. */
  limiter?: LoginLimiter | undefined
  /** The public URL of the server (its origin is trusted for form posts). */
  publicUrl: string
  /** More trusted origins (`TESSERA_TRUSTED_ORIGINS`). @default [] */
  trustedOrigins?: readonly string[] | undefined
  /** Proxies whose `X-Forwarded-For` is believed. @default none */
  trustedProxies?: TrustedProxies | readonly string[] | undefined
  /** Live browser sessions, when the store can count them (`Backends.countSessions`). */
  countSessions?: (() => Promise<number>) | undefined
  /** Where the panel is mounted. @default '/admin' */
  basePath?: string | undefined
  /** Receives unexpected errors (the page shows a generic message). @default console.error */
  onError?: ((error: unknown) => void) | undefined
  /** @default Date.now */
  now?: () => number
}

/** The Hono environment of the admin sub-app. */
export interface AdminEnv {
  Bindings: Partial<HttpBindings>
  Variables: {
    nonce: string
    session: Session
    admin: User
  }
}

type AdminContext = Context<AdminEnv>

const FAVICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1f5fbf"/><path d="M4 4h8v2H9v7H7V6H4z" fill="#fff"/></svg>'
const LOGIN_COOKIE = 'tessera_admin_login'
const PAGE_SIZE = 25
const MAX_BODY = 64 * 1024
const MAX_PASSWORD_INPUT = 4096
const AUDIT_TYPES = [
  'signup',
  'login',
  'logout',
  'rate_limited',
  'password_changed',
  'password_reset_requested',
  'password_reset_used',
  'session_revoked',
  'user_created',
  'user_disabled',
  'user_enabled',
  'user_deleted',
  'permission_changed',
  'token_reused',
] as const satisfies readonly AuditEventType[]
// Fails to compile when an event type is added to the audit log but not to the filter above.
const AUDIT_TYPES_COMPLETE: Exclude<AuditEventType, (typeof AUDIT_TYPES)[number]> extends never
  ? true
  : false = true
void AUDIT_TYPES_COMPLETE
const USER_ID = /^[A-Za-z0-9_-]{1,64}$/
const SESSION_ID = /^[A-Za-z0-9_-]{22}$/

/** Thrown by a handler to answer with an HTML page and a status. */
class PageError extends Error {
  readonly status: 400 | 403 | 404 | 413 | 415 | 429
  readonly title: string
  constructor(status: 400 | 403 | 404 | 413 | 415 | 429, title: string, message: string) {
    super(message)
    this.status = status
    this.title = title
  }
}

function param(c: AdminContext, name: string): string {
  return c.req.param(name) ?? ''
}

function pageNumber(value: string | undefined): number {
  if (value === undefined || !/^[1-9][0-9]{0,5}$/.test(value)) return 1
  return Number(value)
}

function codenameList(
  text: string,
): { ok: true; codenames: string[] } | { ok: false; bad: string } {
  const codenames = [
    ...new Set(
      text
        .split(/[\s,]+/)
        .map((item) => item.trim())
        .filter((item) => item !== ''),
    ),
  ]
  for (const codename of codenames) {
    if (!isPermissionCodename(codename)) return { ok: false, bad: codename }
  }
  return { ok: true, codenames }
}

/**
 * The admin panel: server-rendered pages under `basePath` (default `/admin`) for administrators
 * and holders of `admin.access`. Mount it on the server app:
 *
 * ```ts
 * app.route('/admin', createAdminApp(deps))
 * ```
 *
 * Every response carries a CSP with a fresh nonce (for the one stylesheet; no script is allowed
 * at all), `Cache-Control: no-store` and anti-framing headers. Every POST needs the CSRF token of
 * its form and passes the Origin / `Sec-Fetch-Site` rule; every action redirects (POST, redirect,
 * GET) to a page that says what it did.
 *
 * @throws TesseraError `config_invalid` for a bad `publicUrl`, trusted origin or proxy entry.
 */
export function createAdminApp(deps: AdminDeps): Hono<AdminEnv> {
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
  const trusted: TrustedOrigins = createTrustedOrigins([
    publicOrigin,
    ...(deps.trustedOrigins ?? []),
  ])
  const proxies: TrustedProxies =
    deps.trustedProxies === undefined
      ? parseTrustedProxies([])
      : 'contains' in deps.trustedProxies
        ? deps.trustedProxies
        : parseTrustedProxies(deps.trustedProxies)
  const secureCookies = publicOrigin.startsWith('https:')
  const now = deps.now ?? Date.now
  const { auth, adminSessions, appSessions, keyring, db } = deps
  const accounts = auth.accounts
  const audit = auth.audit
  const onError =
    deps.onError ??
    ((error: unknown): void => {
      console.error('tessera admin: unexpected error:', error)
    })
  let setupRunning = false

  const app = new Hono<AdminEnv>()

  // --- headers on every response -------------------------------------------------------------
  app.use(async (c, next) => {
    const nonce = randomBytes(18).toString('base64')
    c.set('nonce', nonce)
    await next()
    // SECURITY: no script may run at all (script-src 'none'); the one stylesheet needs this
    // response's nonce; forms may post only to this origin; no framing (ASVS 14.4.3, 14.4.7).
    c.res.headers.set(
      'Content-Security-Policy',
      [
        "default-src 'none'",
        "script-src 'none'",
        `style-src 'nonce-${nonce}'`,
        "img-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
      ].join('; '),
    )
    // SECURITY: admin pages show users and sessions: never cached (API.md).
    c.res.headers.set('Cache-Control', 'no-store')
    c.res.headers.set('X-Frame-Options', 'DENY')
    c.res.headers.set('X-Content-Type-Options', 'nosniff')
    // Not 'no-referrer': with it Chromium sends `Origin: null` on form posts, which the origin
    // check must refuse. 'same-origin' still sends nothing to other sites (the setup token).
    c.res.headers.set('Referrer-Policy', 'same-origin')
  })

  // --- helpers --------------------------------------------------------------------------------
  function requestContext(c: AdminContext): {
    ip: string | undefined
    userAgent: string | undefined
  } {
    const socketAddress = c.env?.incoming?.socket.remoteAddress
    const ip =
      socketAddress === undefined
        ? undefined
        : clientIp(socketAddress, c.req.header('x-forwarded-for'), proxies)
    const agent = c.req.header('user-agent')
    return { ip, userAgent: agent === undefined ? undefined : agent.slice(0, 512) }
  }

  function actionContext(c: AdminContext): {
    ip: string | undefined
    userAgent: string | undefined
    actorId: string
  } {
    return { ...requestContext(c), actorId: c.get('admin').id }
  }

  function pageContext(c: AdminContext, csrf: string, flash?: Flash): PageContext {
    return {
      base,
      nonce: c.get('nonce'),
      csrf,
      admin: c.get('admin'),
      flash,
    }
  }

  function send(
    c: AdminContext,
    body: SafeHtml,
    status: 200 | 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429 | 503 | 500 = 200,
  ): Response {
    return c.html(body.value, status)
  }

  async function readForm(c: AdminContext): Promise<URLSearchParams> {
    const type = c.req.header('content-type') ?? ''
    const essence = type.split(';')[0]?.trim().toLowerCase()
    if (essence !== 'application/x-www-form-urlencoded') {
      throw new PageError(
        415,
        'Unsupported form',
        'Forms must be sent as application/x-www-form-urlencoded.',
      )
    }
    const length = Number(c.req.header('content-length') ?? '0')
    if (Number.isFinite(length) && length > MAX_BODY) {
      throw new PageError(413, 'Form too large', 'The form is larger than 64 KiB.')
    }
    const buffer = await c.req.arrayBuffer()
    if (buffer.byteLength > MAX_BODY) {
      throw new PageError(413, 'Form too large', 'The form is larger than 64 KiB.')
    }
    return new URLSearchParams(new TextDecoder().decode(buffer))
  }

  /**
   * SECURITY: every state-changing request must pass both the cross-site rule (Sec-Fetch-Site,
   * Origin) and carry the CSRF token of its form, bound to `binding` (ASVS 4.2.2, 13.2.3).
   */
  function requireSameSite(c: AdminContext, form: URLSearchParams, binding: string): void {
    const token = form.get('_csrf')
    const valid = verifyCSRFToken(keyring, binding, token)
    const decision = checkCrossSite({
      method: c.req.method,
      headers: { secFetchSite: c.req.header('sec-fetch-site'), origin: c.req.header('origin') },
      trustedOrigins: trusted,
      hasSessionCookie: true,
      csrfTokenValid: valid,
    })
    if (!decision.allowed) {
      throw new PageError(403, 'Request refused', `${decision.message} (csrf_failed)`)
    }
    if (!valid) {
      throw new PageError(
        403,
        'Request refused',
        'The form is missing its CSRF token or the token is invalid; reload the page and try again (csrf_failed).',
      )
    }
  }

  function csrfFor(session: Session): string {
    return createCSRFToken(keyring, `admin:${session.id}`)
  }

  async function redirectWith(c: AdminContext, path: string, flash: Flash): Promise<Response> {
    await adminSessions.update(c.get('session'), { flash: { kind: flash.kind, text: flash.text } })
    return c.redirect(`${base}${path}`, 303)
  }

  async function takeFlash(c: AdminContext): Promise<Flash | undefined> {
    const session = c.get('session')
    const stored = session.data.flash
    if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) return undefined
    const { kind, text } = stored as { kind?: unknown; text?: unknown }
    await adminSessions.update(session, { flash: undefined })
    if ((kind !== 'ok' && kind !== 'error') || typeof text !== 'string') return undefined
    return { kind, text }
  }

  async function isAllowed(user: User): Promise<boolean> {
    return user.isActive && (user.isAdmin || (await accounts.hasPermission(user, ADMIN_PERMISSION)))
  }

  function loginCookie(value: string): string {
    return serializeCookie(LOGIN_COOKIE, value, {
      path: base,
      httpOnly: true,
      secure: secureCookies,
      sameSite: 'Strict',
      maxAge: 3600,
    })
  }

  function anonymousPage(c: AdminContext, csrf: string): PageContext {
    return { base, nonce: c.get('nonce'), csrf, admin: null }
  }

  /** A sign-in form with a fresh login CSRF binding (a random value in a short-lived cookie). */
  function renderSignIn(
    c: AdminContext,
    status: 200 | 400 | 401 | 403 | 429,
    options: { email?: string; error?: string } = {},
  ): Response {
    const binding = randomBytes(18).toString('base64url')
    c.header('Set-Cookie', loginCookie(binding), { append: true })
    const page = anonymousPage(c, createCSRFToken(keyring, `admin-login:${binding}`))
    return send(c, signInPage(page, options), status)
  }

  async function findUserOr404(id: string): Promise<User> {
    const user = USER_ID.test(id) ? await accounts.findUserById(id) : null
    if (user === null) throw new PageError(404, 'No such user', 'There is no user with this id.')
    return user
  }

  // --- errors ---------------------------------------------------------------------------------
  app.onError((error, c) => {
    const page = anonymousPage(c, '')
    const admin = c.get('admin') as User | undefined
    if (admin !== undefined) page.admin = admin
    if (error instanceof PageError) {
      return send(c, messagePage(page, error.title, error.message), error.status)
    }
    if (
      isTesseraError(error) &&
      (error.code === 'store_unavailable' || error.code === 'overloaded')
    ) {
      return send(
        c,
        messagePage(
          page,
          'Temporarily unavailable',
          'A store the panel needs does not answer. Try again in a moment.',
        ),
        503,
      )
    }
    onError(error)
    return send(
      c,
      messagePage(
        page,
        'Something went wrong',
        'The request failed; nothing was shown to anyone else. Check the server log.',
      ),
      500,
    )
  })

  // --- sign-in, sign-out, setup (no session needed) -------------------------------------------
  app.get('/favicon.svg', (c) => c.body(FAVICON, 200, { 'Content-Type': 'image/svg+xml' }))

  app.get('/login', async (c) => {
    const current = await adminSessions.validate(c.req.header('cookie'))
    if (current !== null && current.session.userId !== null) return c.redirect(base, 303)
    const signedOut = c.req.query('signed_out') === '1'
    return renderSignIn(c, 200, signedOut ? { error: 'You are signed out.' } : {})
  })

  app.post('/login', async (c) => {
    const form = await readForm(c)
    const binding = readCookie(c.req.header('cookie') ?? '', LOGIN_COOKIE) ?? ''
    if (binding === '') {
      return renderSignIn(c, 403, { error: 'Your sign-in form expired; please try again.' })
    }
    requireSameSite(c, form, `admin-login:${binding}`)
    const rawEmail = form.get('email') ?? ''
    const password = form.get('password') ?? ''
    if (rawEmail === '' || password === '') {
      return renderSignIn(c, 400, { email: rawEmail, error: 'E-mail and password are required.' })
    }
    const ctx = requestContext(c)
    const email = parseEmail(rawEmail)
    let ticket: LoginTicket | undefined
    if (deps.limiter !== undefined) {
      // SECURITY: the same limiter as the API, checked before any hash (ASVS 2.2.1).
      const check = await deps.limiter.check({
        account: email ?? rawEmail.slice(0, 320),
        ...(ctx.ip === undefined ? {} : { ip: ctx.ip }),
      })
      if (!check.allowed) {
        await audit.record({
          type: 'rate_limited',
          outcome: 'denied',
          ...ctx,
          detail: {
            action: 'admin_login',
            scope: check.scope,
            retryAfterSeconds: check.retryAfter,
          },
        })
        c.header('Retry-After', String(check.retryAfter))
        return renderSignIn(c, 429, {
          email: rawEmail,
          error: `Too many attempts. Try again in ${check.retryAfter} s.`,
        })
      }
      ticket = check.ticket
    }
    const found = email === null ? null : await accounts.findUserByEmail(email)
    const hash = found === null ? null : await accounts.getPasswordHash(found.id)
    let verified = false
    if (password.length > MAX_PASSWORD_INPUT) verified = false
    else if (found === null || hash === null) await deps.passwords.dummyVerify(password)
    else verified = await deps.passwords.verify(password, hash)

    if (found === null || hash === null || !verified || !found.isActive) {
      if (ticket !== undefined) await deps.limiter?.failed(ticket)
      await audit.record({
        type: 'login',
        outcome: 'failure',
        userId: found?.id ?? null,
        ...ctx,
        detail: {
          panel: 'admin',
          reason: found === null ? 'unknown_account' : !verified ? 'wrong_password' : 'inactive',
        },
      })
      // SECURITY: one answer for unknown e-mail, wrong password and disabled account.
      return renderSignIn(c, 401, { email: rawEmail, error: 'E-mail or password is incorrect.' })
    }
    if (ticket !== undefined) await deps.limiter?.succeeded(ticket)
    if (!(await isAllowed(found))) {
      await audit.record({
        type: 'login',
        outcome: 'denied',
        userId: found.id,
        ...ctx,
        detail: { panel: 'admin', reason: 'not_admin' },
      })
      return renderSignIn(c, 403, {
        email: rawEmail,
        error: 'This account may not use the admin panel.',
      })
    }
    if (deps.passwords.needsRehash(hash)) {
      await accounts.upgradePasswordHash(found.id, hash, await deps.passwords.hash(password))
    }
    // SECURITY: a fresh admin session on every sign-in; one sent along is ended (fixation).
    const previous = await adminSessions.validate(c.req.header('cookie'))
    if (previous !== null) await adminSessions.revoke(previous.session)
    const meta = {
      ...(ctx.ip === undefined ? {} : { ip: ctx.ip }),
      ...(ctx.userAgent === undefined ? {} : { userAgent: ctx.userAgent }),
    }
    const issued = await adminSessions.create(found.id, {
      meta,
      data: { flash: { kind: 'ok', text: `Signed in as ${found.email}.` } },
    })
    await accounts.recordLogin(found.id)
    await audit.record({
      type: 'login',
      outcome: 'success',
      userId: found.id,
      ...ctx,
      detail: { panel: 'admin' },
    })
    c.header('Set-Cookie', issued.setCookie, { append: true })
    c.header(
      'Set-Cookie',
      serializeDeletedCookie(LOGIN_COOKIE, {
        path: base,
        httpOnly: true,
        secure: secureCookies,
        sameSite: 'Strict',
      }),
      { append: true },
    )
    return c.redirect(base, 303)
  })

  async function setupSession(token: string | undefined): Promise<Session | null> {
    if (token === undefined) return null
    const found = await adminSessions.validateToken(token)
    if (found === null || found.session.userId !== null || found.session.data.kind !== SETUP_KIND) {
      return null
    }
    return found.session
  }

  const deadSetupLink =
    'This setup link is invalid, already used or expired, or an administrator already exists. Sign in, or run `tessera user create --admin`.'

  app.get('/setup', async (c) => {
    const token = c.req.query('token')
    const session = await setupSession(token)
    if (session === null || token === undefined || (await countAdmins(db)) > 0) {
      return send(c, messagePage(anonymousPage(c, ''), 'Setup link not valid', deadSetupLink), 404)
    }
    const page = anonymousPage(c, createCSRFToken(keyring, `admin-setup:${session.id}`))
    return send(c, setupPage(page, { token }))
  })

  app.post('/setup', async (c) => {
    const form = await readForm(c)
    const token = form.get('token') ?? ''
    const session = await setupSession(token)
    if (session === null || (await countAdmins(db)) > 0) {
      return send(c, messagePage(anonymousPage(c, ''), 'Setup link not valid', deadSetupLink), 404)
    }
    requireSameSite(c, form, `admin-setup:${session.id}`)
    const again = (status: 400 | 409, error: string): Response =>
      send(
        c,
        setupPage(anonymousPage(c, createCSRFToken(keyring, `admin-setup:${session.id}`)), {
          token,
          email: form.get('email') ?? '',
          error,
        }),
        status,
      )
    const email = form.get('email') ?? ''
    const password = form.get('password') ?? ''
    if (password !== (form.get('password2') ?? '')) return again(400, 'The two passwords differ.')
    // One creation at a time in this process, re-checked after the wait.
    if (setupRunning) return again(409, 'Another setup is running; try again.')
    setupRunning = true
    try {
      if ((await countAdmins(db)) > 0) {
        return send(
          c,
          messagePage(anonymousPage(c, ''), 'Setup link not valid', deadSetupLink),
          404,
        )
      }
      const ctx = requestContext(c)
      const created = await auth.createUser({ email, password, isAdmin: true }, ctx)
      if (!created.ok) return again(created.code === 'conflict' ? 409 : 400, created.message)
      // SECURITY: single use: the setup record is deleted once the administrator exists.
      await adminSessions.revoke(session)
      const meta = {
        ...(ctx.ip === undefined ? {} : { ip: ctx.ip }),
        ...(ctx.userAgent === undefined ? {} : { userAgent: ctx.userAgent }),
      }
      const issued = await adminSessions.create(created.user.id, {
        meta,
        data: {
          flash: {
            kind: 'ok',
            text: `Administrator ${created.user.email} created; you are signed in.`,
          },
        },
      })
      await accounts.recordLogin(created.user.id)
      c.header('Set-Cookie', issued.setCookie, { append: true })
      return c.redirect(base, 303)
    } finally {
      setupRunning = false
    }
  })

  // --- everything else needs an admin session --------------------------------------------------
  app.use(async (c, next) => {
    const validated = await adminSessions.validate(c.req.header('cookie'))
    if (validated === null || validated.session.userId === null) {
      // SECURITY: a POST without a session changes nothing; it is sent to the sign-in page.
      return c.redirect(`${base}/login`, 303)
    }
    if (validated.setCookie !== undefined)
      c.header('Set-Cookie', validated.setCookie, { append: true })
    const user = await accounts.findUserById(validated.session.userId)
    // SECURITY: rights are re-read on every request, so a disable or demotion ends access at once.
    if (user === null || !(await isAllowed(user))) {
      throw new PageError(403, 'Forbidden', 'This account may not use the admin panel.')
    }
    c.set('session', validated.session)
    c.set('admin', user)
    await next()
  })

  app.post('/logout', async (c) => {
    const form = await readForm(c)
    const session = c.get('session')
    requireSameSite(c, form, `admin:${session.id}`)
    await adminSessions.revoke(session)
    c.header('Set-Cookie', adminSessions.clearCookie(), { append: true })
    return c.redirect(`${base}/login?signed_out=1`, 303)
  })

  /** Runs a POST action after the CSRF checks, with the parsed form. */
  function action(
    path: string,
    handler: (c: AdminContext, form: URLSearchParams) => Promise<Response>,
  ): void {
    app.post(path, async (c) => {
      const form = await readForm(c)
      requireSameSite(c, form, `admin:${c.get('session').id}`)
      return handler(c, form)
    })
  }

  // --- dashboard ------------------------------------------------------------------------------
  app.get('/', async (c) => {
    const flash = await takeFlash(c)
    const since = now() - 86_400_000
    const [users, admins, failed, recent, activeSessions] = await Promise.all([
      accounts.listUsers({ limit: 1 }),
      countAdmins(db),
      db
        .selectFrom('audit_events')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('type', '=', 'login')
        .where('outcome', '=', 'failure')
        .where('at', '>=', since)
        .executeTakeFirstOrThrow(),
      audit.list({ type: 'login', since, limit: 100 }),
      deps.countSessions === undefined ? Promise.resolve(null) : deps.countSessions(),
    ])
    const page = pageContext(c, csrfFor(c.get('session')), flash)
    return send(
      c,
      dashboardPage(
        page,
        {
          users: users.total,
          admins,
          activeSessions,
          failedLogins: Number(failed.n),
          recent: recent.filter((e) => e.outcome === 'failure').slice(0, 10),
        },
        now(),
      ),
    )
  })

  // --- users ----------------------------------------------------------------------------------
  async function renderUsers(
    c: AdminContext,
    status: 200 | 400 | 409,
    extra: { createEmail?: string; createError?: string; flash?: Flash | undefined },
  ): Promise<Response> {
    const search = (c.req.query('q') ?? '').slice(0, 320)
    const pageNo = pageNumber(c.req.query('page'))
    const { users, total } = await accounts.listUsers({
      search,
      limit: PAGE_SIZE,
      offset: (pageNo - 1) * PAGE_SIZE,
    })
    const page = pageContext(c, csrfFor(c.get('session')), extra.flash)
    const data = {
      users,
      total,
      page: pageNo,
      pageSize: PAGE_SIZE,
      search,
      ...(extra.createEmail === undefined ? {} : { createEmail: extra.createEmail }),
      ...(extra.createError === undefined ? {} : { createError: extra.createError }),
    }
    return send(c, usersPage(page, data, now()), status)
  }

  app.get('/users', async (c) => renderUsers(c, 200, { flash: await takeFlash(c) }))

  action('/users', async (c, form) => {
    const email = form.get('email') ?? ''
    const password = form.get('password') ?? ''
    const isAdmin = form.get('isAdmin') === '1'
    if (email === '' || password === '') {
      return renderUsers(c, 400, {
        createEmail: email,
        createError: 'E-mail and password are required.',
      })
    }
    const created = await auth.createUser({ email, password, isAdmin }, actionContext(c))
    if (!created.ok) {
      return renderUsers(c, created.code === 'conflict' ? 409 : 400, {
        createEmail: email,
        createError: created.message,
      })
    }
    return redirectWith(c, `/users/${encodeURIComponent(created.user.id)}`, {
      kind: 'ok',
      text: `Created ${isAdmin ? 'administrator' : 'user'} ${created.user.email}.`,
    })
  })

  app.get('/users/:id', async (c) => {
    const user = await findUserOr404(param(c, 'id'))
    const flash = await takeFlash(c)
    const [groups, memberOf, direct, effective, sessions] = await Promise.all([
      accounts.listGroups(),
      accounts.listUserGroups(user.id),
      db
        .selectFrom('user_permissions')
        .select('codename')
        .where('user_id', '=', user.id)
        .orderBy('codename')
        .execute(),
      accounts.getUserPermissions(user.id),
      appSessions.list(user.id),
    ])
    const page = pageContext(c, csrfFor(c.get('session')), flash)
    return send(
      c,
      userPage(
        page,
        {
          user,
          groups,
          memberOf: new Set(memberOf.map((g) => g.id)),
          directPermissions: direct.map((row) => row.codename),
          effectivePermissions: effective,
          sessionCount: sessions.length,
          isSelf: user.id === c.get('admin').id,
        },
        now(),
      ),
    )
  })

  function refuseSelf(c: AdminContext, user: User, what: string): Promise<Response> | null {
    if (user.id !== c.get('admin').id) return null
    return redirectWith(c, `/users/${encodeURIComponent(user.id)}`, {
      kind: 'error',
      text: `You cannot ${what} your own account here.`,
    })
  }

  action('/users/:id/disable', async (c) => {
    const user = await findUserOr404(param(c, 'id'))
    const refused = refuseSelf(c, user, 'disable')
    if (refused !== null) return refused
    await accounts.disableUser(user.id, actionContext(c))
    return redirectWith(c, `/users/${encodeURIComponent(user.id)}`, {
      kind: 'ok',
      text: `Disabled ${user.email}; their sessions were ended.`,
    })
  })

  action('/users/:id/enable', async (c) => {
    const user = await findUserOr404(param(c, 'id'))
    await accounts.enableUser(user.id, actionContext(c))
    return redirectWith(c, `/users/${encodeURIComponent(user.id)}`, {
      kind: 'ok',
      text: `Enabled ${user.email}.`,
    })
  })

  action('/users/:id/admin', async (c, form) => {
    const user = await findUserOr404(param(c, 'id'))
    const refused = refuseSelf(c, user, 'change the administrator flag of')
    if (refused !== null) return refused
    const isAdmin = form.get('isAdmin') === '1'
    await accounts.setAdmin(user.id, { isAdmin }, actionContext(c))
    return redirectWith(c, `/users/${encodeURIComponent(user.id)}`, {
      kind: 'ok',
      text: isAdmin
        ? `${user.email} is now an administrator.`
        : `${user.email} is no longer an administrator.`,
    })
  })

  action('/users/:id/delete', async (c, form) => {
    const user = await findUserOr404(param(c, 'id'))
    const refused = refuseSelf(c, user, 'delete')
    if (refused !== null) return refused
    if (form.get('confirm') !== 'yes') {
      return redirectWith(c, `/users/${encodeURIComponent(user.id)}`, {
        kind: 'error',
        text: 'Tick “I am sure” to delete the user.',
      })
    }
    await accounts.deleteUser(user.id, actionContext(c))
    return redirectWith(c, '/users', { kind: 'ok', text: `Deleted ${user.email}.` })
  })

  action('/users/:id/reset', async (c) => {
    const user = await findUserOr404(param(c, 'id'))
    if (!user.isActive) {
      return redirectWith(c, `/users/${encodeURIComponent(user.id)}`, {
        kind: 'error',
        text: `${user.email} is disabled; enable the account before sending a reset.`,
      })
    }
    await auth.requestPasswordReset({ email: user.email }, requestContext(c))
    return redirectWith(c, `/users/${encodeURIComponent(user.id)}`, {
      kind: 'ok',
      text: `A password reset e-mail is on its way to ${user.email}.`,
    })
  })

  action('/users/:id/groups', async (c, form) => {
    const user = await findUserOr404(param(c, 'id'))
    const wanted = new Set(form.getAll('group'))
    const all = await accounts.listGroups()
    const known = new Set(all.map((g) => g.id))
    for (const id of wanted) {
      if (!known.has(id)) {
        return redirectWith(c, `/users/${encodeURIComponent(user.id)}`, {
          kind: 'error',
          text: 'One of the chosen groups no longer exists; nothing was changed.',
        })
      }
    }
    const current = new Set((await accounts.listUserGroups(user.id)).map((g) => g.id))
    const ctx = actionContext(c)
    let changes = 0
    for (const id of wanted) {
      if (!current.has(id)) {
        await accounts.addUserToGroup(user.id, id, ctx)
        changes++
      }
    }
    for (const id of current) {
      if (!wanted.has(id)) {
        await accounts.removeUserFromGroup(user.id, id, ctx)
        changes++
      }
    }
    const names = all.filter((g) => wanted.has(g.id)).map((g) => g.name)
    return redirectWith(c, `/users/${encodeURIComponent(user.id)}`, {
      kind: 'ok',
      text:
        changes === 0
          ? 'Groups unchanged.'
          : `Groups of ${user.email}: ${names.length === 0 ? 'none' : names.join(', ')}.`,
    })
  })

  action('/users/:id/permissions', async (c, form) => {
    const user = await findUserOr404(param(c, 'id'))
    const parsed = codenameList(form.get('permissions') ?? '')
    if (!parsed.ok) {
      return redirectWith(c, `/users/${encodeURIComponent(user.id)}`, {
        kind: 'error',
        text: `“${parsed.bad.slice(0, 100)}” is not a permission codename (app.action, lower case); nothing was changed.`,
      })
    }
    const current = (
      await db
        .selectFrom('user_permissions')
        .select('codename')
        .where('user_id', '=', user.id)
        .execute()
    ).map((row) => row.codename)
    const ctx = actionContext(c)
    for (const codename of parsed.codenames) {
      if (!current.includes(codename)) await accounts.grantPermission(user.id, codename, ctx)
    }
    for (const codename of current) {
      if (!parsed.codenames.includes(codename))
        await accounts.revokePermission(user.id, codename, ctx)
    }
    return redirectWith(c, `/users/${encodeURIComponent(user.id)}`, {
      kind: 'ok',
      text: `Direct permissions of ${user.email}: ${parsed.codenames.length === 0 ? 'none' : parsed.codenames.join(', ')}.`,
    })
  })

  // --- a user's sessions ----------------------------------------------------------------------
  app.get('/users/:id/sessions', async (c) => {
    const user = await findUserOr404(param(c, 'id'))
    const flash = await takeFlash(c)
    const sessions = await appSessions.list(user.id)
    return send(
      c,
      sessionsPage(pageContext(c, csrfFor(c.get('session')), flash), user, sessions, now()),
    )
  })

  action('/users/:id/sessions/revoke-all', async (c) => {
    const user = await findUserOr404(param(c, 'id'))
    const count = await auth.revokeOtherSessions(user.id, requestContext(c))
    return redirectWith(c, `/users/${encodeURIComponent(user.id)}/sessions`, {
      kind: 'ok',
      text: `Revoked ${count} session${count === 1 ? '' : 's'} of ${user.email}.`,
    })
  })

  action('/users/:id/sessions/:sid/revoke', async (c) => {
    const user = await findUserOr404(param(c, 'id'))
    const sid = param(c, 'sid')
    const revoked =
      SESSION_ID.test(sid) && (await auth.revokeSession(user.id, sid, requestContext(c)))
    return redirectWith(c, `/users/${encodeURIComponent(user.id)}/sessions`, {
      kind: revoked ? 'ok' : 'error',
      text: revoked
        ? `Revoked session ${sid.slice(0, 8)} of ${user.email}.`
        : 'That session had already ended.',
    })
  })

  // --- groups and permissions -----------------------------------------------------------------
  app.get('/groups', async (c) => {
    const flash = await takeFlash(c)
    const [groups, grants, members, permissions] = await Promise.all([
      accounts.listGroups(),
      db
        .selectFrom('group_permissions')
        .select(['group_id', 'codename'])
        .orderBy('codename')
        .execute(),
      db
        .selectFrom('user_groups')
        .select(['group_id', (eb) => eb.fn.countAll().as('n')])
        .groupBy('group_id')
        .execute(),
      accounts.listPermissions(),
    ])
    const memberCount = new Map(members.map((row) => [row.group_id, Number(row.n)]))
    const data = {
      groups: groups.map((group) => ({
        ...group,
        permissions: grants.filter((g) => g.group_id === group.id).map((g) => g.codename),
        members: memberCount.get(group.id) ?? 0,
      })),
      permissions,
    }
    return send(c, groupsPage(pageContext(c, csrfFor(c.get('session')), flash), data))
  })

  action('/groups', async (c, form) => {
    const name = form.get('name') ?? ''
    try {
      const group = await accounts.createGroup(name, actionContext(c))
      return await redirectWith(c, '/groups', { kind: 'ok', text: `Created group ${group.name}.` })
    } catch (error) {
      if (
        isTesseraError(error) &&
        (error.code === 'invalid_argument' || error.code === 'conflict')
      ) {
        return redirectWith(c, '/groups', {
          kind: 'error',
          text: `Group not created: ${error.message}.`,
        })
      }
      throw error
    }
  })

  async function findGroupOr404(id: string): Promise<{ id: string; name: string }> {
    const group = (await accounts.listGroups()).find((g) => g.id === id)
    if (group === undefined)
      throw new PageError(404, 'No such group', 'There is no group with this id.')
    return group
  }

  action('/groups/:id/delete', async (c) => {
    const group = await findGroupOr404(param(c, 'id'))
    await accounts.deleteGroup(group.id, actionContext(c))
    return redirectWith(c, '/groups', { kind: 'ok', text: `Deleted group ${group.name}.` })
  })

  action('/groups/:id/permissions', async (c, form) => {
    const group = await findGroupOr404(param(c, 'id'))
    const parsed = codenameList(form.get('permissions') ?? '')
    if (!parsed.ok) {
      return redirectWith(c, '/groups', {
        kind: 'error',
        text: `“${parsed.bad.slice(0, 100)}” is not a permission codename (app.action, lower case); nothing was changed.`,
      })
    }
    const current = (
      await db
        .selectFrom('group_permissions')
        .select('codename')
        .where('group_id', '=', group.id)
        .execute()
    ).map((row) => row.codename)
    const ctx = actionContext(c)
    for (const codename of parsed.codenames) {
      if (!current.includes(codename)) await accounts.grantGroupPermission(group.id, codename, ctx)
    }
    for (const codename of current) {
      if (!parsed.codenames.includes(codename))
        await accounts.revokeGroupPermission(group.id, codename, ctx)
    }
    return redirectWith(c, '/groups', {
      kind: 'ok',
      text: `Permissions of ${group.name}: ${parsed.codenames.length === 0 ? 'none' : parsed.codenames.join(', ')}.`,
    })
  })

  action('/permissions', async (c, form) => {
    const codename = (form.get('codename') ?? '').trim()
    const description = (form.get('description') ?? '').trim().slice(0, 200)
    if (!isPermissionCodename(codename)) {
      return redirectWith(c, '/groups', {
        kind: 'error',
        text: `“${String(codename).slice(0, 100)}” is not a permission codename (app.action, lower case).`,
      })
    }
    await accounts.definePermission(codename, { description })
    return redirectWith(c, '/groups', { kind: 'ok', text: `Saved permission ${codename}.` })
  })

  action('/permissions/delete', async (c, form) => {
    const codename = form.get('codename') ?? ''
    const deleted =
      isPermissionCodename(codename) &&
      (await accounts.deletePermission(codename, actionContext(c)))
    return redirectWith(c, '/groups', {
      kind: deleted ? 'ok' : 'error',
      text: deleted
        ? `Deleted permission ${codename} and every grant of it.`
        : 'No such permission.',
    })
  })

  // --- audit log ------------------------------------------------------------------------------
  app.get('/audit', async (c) => {
    const flash = await takeFlash(c)
    const userFilter = (c.req.query('user') ?? '').trim().slice(0, 320)
    const typeFilter = c.req.query('type') ?? ''
    const pageNo = pageNumber(c.req.query('page'))
    const type = (AUDIT_TYPES as readonly string[]).includes(typeFilter)
      ? (typeFilter as AuditEventType)
      : undefined
    let userId: string | undefined
    let error: string | undefined
    if (userFilter !== '') {
      const byEmail = userFilter.includes('@') ? await accounts.findUserByEmail(userFilter) : null
      if (byEmail !== null) userId = byEmail.id
      else if (USER_ID.test(userFilter)) userId = userFilter
      else error = `No user “${userFilter}”.`
    }
    const events =
      error === undefined
        ? await audit.list({
            ...(userId === undefined ? {} : { userId }),
            ...(type === undefined ? {} : { type }),
            limit: PAGE_SIZE + 1,
            offset: (pageNo - 1) * PAGE_SIZE,
          })
        : []
    const shown = events.slice(0, PAGE_SIZE)
    const emails = new Map<string, string>()
    for (const id of new Set(
      shown.map((e) => e.userId).filter((id): id is string => id !== null),
    )) {
      const user = await accounts.findUserById(id)
      if (user !== null) emails.set(id, user.email)
    }
    const data = {
      events: shown,
      emails,
      types: AUDIT_TYPES,
      user: userFilter,
      type: type ?? '',
      page: pageNo,
      hasNext: events.length > PAGE_SIZE,
      ...(error === undefined ? {} : { error }),
    }
    return send(
      c,
      auditPage(pageContext(c, csrfFor(c.get('session')), flash), data, now()),
      error === undefined ? 200 : 400,
    )
  })

  // --- signing keys ---------------------------------------------------------------------------
  app.get('/keys', async (c) => {
    const flash = await takeFlash(c)
    await deps.keys.refreshIfStale()
    return send(
      c,
      keysPage(
        pageContext(c, csrfFor(c.get('session')), flash),
        deps.keys.list(),
        deps.keys.algorithm,
        now(),
      ),
    )
  })

  action('/keys/rotate', async (c) => {
    let keys
    try {
      keys = await deps.keys.rotate()
    } catch (error) {
      if (isTesseraError(error) && error.code !== 'store_unavailable') {
        return redirectWith(c, '/keys', {
          kind: 'error',
          text: `Keys not rotated: ${error.message}`,
        })
      }
      throw error
    }
    const current = keys.find((k) => k.status === 'current')
    return redirectWith(c, '/keys', {
      kind: 'ok',
      text: `Rotated the signing keys: ${current === undefined ? 'no current key' : `${current.kid} signs now`}.`,
    })
  })

  return app
}

/**
 * Mounts the panel on the server app at `basePath` (default `/admin`), and redirects
 * `/admin/` to `/admin` (a mounted sub-app's root matches only the path without the slash).
 *
 * @example
 * ```ts
 * mountAdminApp(app, createAdminApp(deps))
 * ```
 */
export function mountAdminApp<E extends Env>(
  app: Hono<E>,
  admin: Hono<AdminEnv>,
  options: { basePath?: string } = {},
): void {
  const base = (options.basePath ?? '/admin').replace(/\/+$/, '')
  app.get(`${base}/`, (c) => c.redirect(base, 308))
  app.route(base, admin)
}
