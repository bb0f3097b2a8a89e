import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Logger } from 'pino'
import type { TesseraDB } from '../../auth/db/database.js'
import { parseEmail } from '../../auth/email.js'
import { checkPasswordPolicy, type PasswordPolicyOptions } from '../../auth/password-policy.js'
import type { PasswordHasher } from '../../auth/passwords.js'
import type { AuthService } from '../../auth/service.js'
import type { TesseraApp } from '../app.js'
import { MAX_BODY_BYTES, readBodyBytes } from '../body.js'
import { HTTPError } from '../http-error.js'

/** The one-time link that creates the first admin account. */
export interface AdminSetup {
  /** True while the link can still be used. */
  readonly pending: boolean
  /** The link itself, while pending (it is printed to the log once, at start). */
  readonly url: string | null
  /** True when `token` is this process's setup token and it is still pending. */
  check(token: unknown): boolean
  /** Uses the link up. */
  finish(): void
}

/** Options of {@link startAdminSetup}. */
export interface AdminSetupOptions {
  publicUrl: string
  logger: Logger
}

/** True when the accounts database has at least one admin. */
export async function hasAdmin(db: TesseraDB): Promise<boolean> {
  const row = await db
    .selectFrom('users')
    .select('id')
    .where('is_admin', '=', 1)
    .limit(1)
    .executeTakeFirst()
  return row !== undefined
}

/**
 * On a database without an admin, makes a one-time setup token and logs the link
 * `$TESSERA_PUBLIC_URL/setup?token=...` that lets a person create the first admin (API.md).
 * The token lives only in this process's memory, as a hash; a restart prints a new one.
 */
export async function startAdminSetup(
  db: TesseraDB,
  options: AdminSetupOptions,
): Promise<AdminSetup> {
  if (await hasAdmin(db)) return { pending: false, url: null, check: () => false, finish() {} }
  const token = randomBytes(32).toString('base64url')
  const digest = createHash('sha256').update(token).digest()
  const url = `${options.publicUrl}/setup?token=${token}`
  let pending = true
  // The one deliberate credential in the log (API.md): it can only create the first admin, works
  // once, and dies with the process.
  options.logger.warn(
    { setupUrl: url },
    `no admin account yet: open ${url} to create one (one-time link), or run \`tessera user create --admin\``,
  )
  return {
    get pending() {
      return pending
    },
    get url() {
      return pending ? url : null
    },
    check(candidate) {
      if (!pending || typeof candidate !== 'string' || candidate.length > 128) return false
      // SECURITY: constant-time comparison of fixed-length digests.
      return timingSafeEqual(createHash('sha256').update(candidate).digest(), digest)
    },
    finish() {
      pending = false
    },
  }
}

/** What the setup page needs. */
export interface SetupRoutesDeps {
  setup: AdminSetup
  db: TesseraDB
  auth: AuthService
  passwords: PasswordHasher
  passwordPolicy: PasswordPolicyOptions
  logger: Logger
}

// SECURITY: the setup pages are the only HTML the API serves: no script, no style, no frame;
// the form may post only to this origin.
const PAGE_CSP = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

function escapeHTML(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${escapeHTML(title)} · tessera</title></head>
<body>
<h1>${escapeHTML(title)}</h1>
${body}
</body>
</html>
`
}

function form(token: string, message: string | null, email = ''): string {
  return page(
    'Create the first admin account',
    `${message === null ? '' : `<p role="alert"><strong>${escapeHTML(message)}</strong></p>`}
<form method="post" action="setup">
<input type="hidden" name="token" value="${escapeHTML(token)}">
<p><label>E-mail<br><input type="email" name="email" required autocomplete="username" value="${escapeHTML(email)}"></label></p>
<p><label>Password (at least 12 characters)<br><input type="password" name="password" required autocomplete="new-password"></label></p>
<p><button type="submit">Create admin account</button></p>
</form>`,
  )
}

/** `GET /setup?token=…` (the form) and `POST /setup` (creates the first admin). */
export function setupRoutes(deps: SetupRoutesDeps): (app: TesseraApp) => void {
  const { setup, auth, passwords, logger } = deps
  const headers = { 'Content-Security-Policy': PAGE_CSP, 'Cache-Control': 'no-store' }
  const gone = (): Response =>
    new Response(
      page(
        'Setup link not valid',
        '<p>This setup link is not valid or was already used. Restart the server for a new one while there is no admin, or run <code>tessera user create --admin</code>.</p>',
      ),
      { status: 404, headers: { ...headers, 'Content-Type': 'text/html; charset=utf-8' } },
    )

  return (app) => {
    app.get('/setup', (c) => {
      const token = c.req.query('token')
      if (!setup.check(token)) return gone()
      return c.html(form(token ?? '', null), 200, headers)
    })

    app.post('/setup', async (c) => {
      const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase()
      if (type !== 'application/x-www-form-urlencoded') {
        throw new HTTPError(415, 'unsupported_media_type', 'the setup form posts form data')
      }
      const bytes = await readBodyBytes(c.req.raw, MAX_BODY_BYTES)
      const fields = new URLSearchParams(new TextDecoder().decode(bytes))
      const token = fields.get('token') ?? ''
      if (!setup.check(token)) return gone()
      const rawEmail = fields.get('email') ?? ''
      const password = fields.get('password') ?? ''
      const email = parseEmail(rawEmail)
      if (email === null) {
        return c.html(form(token, 'That is not an e-mail address.', rawEmail), 400, headers)
      }
      const policy = checkPasswordPolicy(password, deps.passwordPolicy)
      if (!policy.ok) return c.html(form(token, policy.message, rawEmail), 400, headers)
      if ((await auth.accounts.findUserByEmail(email)) !== null) {
        return c.html(
          form(token, 'An account with that e-mail exists already.', rawEmail),
          409,
          headers,
        )
      }
      if (await hasAdmin(deps.db)) {
        setup.finish()
        return gone()
      }
      // Used up before the slow hash, so two racing submissions cannot both create an admin.
      setup.finish()
      const user = await auth.accounts.createUser({
        email,
        passwordHash: await passwords.hash(password),
        isAdmin: true,
      })
      logger.info({ userId: user.id }, 'first admin account created through the setup link')
      return c.html(
        page(
          'Admin account created',
          `<p>${escapeHTML(user.email)} is now an administrator. Sign in with <code>POST /auth/login</code>. This link no longer works.</p>`,
        ),
        201,
        headers,
      )
    })
  }
}
