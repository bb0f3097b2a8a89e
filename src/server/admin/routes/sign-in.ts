/*
 * Signing in to the panel (GET/POST /login) and out (POST /logout). The sign-in form's CSRF token
 * is bound to a random value in a short-lived cookie (login CSRF); the session is the panel's own.
 */
import { randomBytes } from 'node:crypto'
import { parseEmail } from '../../../auth/email.js'
import type { LoginTicket } from '../../../auth/rate-limit.js'
import { serializeCookie, serializeDeletedCookie } from '../../../core/cookie.js'
import { createCSRFToken } from '../../../core/csrf.js'
import { readCookie } from '../../../core/session-manager.js'
import {
  anonymousPage,
  requestContext,
  send,
  type AdminApp,
  type AdminContext,
  type AdminKit,
} from '../context.js'
import { readForm, requireSameSite } from '../forms.js'
import { mayUsePanel } from '../guard.js'
import { signInPage } from '../views/sign-in.js'

const LOGIN_COOKIE = 'tessera_admin_login'
const MAX_PASSWORD_INPUT = 4096

/** GET and POST `/login`: the sign-in form and its check. */
export function signInRoutes(app: AdminApp, kit: AdminKit): void {
  const { adminSessions, auth, keyring, limiter, passwords, metrics } = kit.deps
  const { accounts, audit } = auth
  const base = kit.base

  function loginCookie(value: string): string {
    return serializeCookie(LOGIN_COOKIE, value, {
      path: base,
      httpOnly: true,
      secure: kit.secureCookies,
      sameSite: 'Strict',
      maxAge: 3600,
    })
  }

  /** A sign-in form with a fresh login CSRF binding (a random value in a short-lived cookie). */
  function renderSignIn(
    c: AdminContext,
    status: 200 | 400 | 401 | 403 | 429,
    options: { email?: string; error?: string; notice?: string } = {},
  ): Response {
    const binding = randomBytes(18).toString('base64url')
    c.header('Set-Cookie', loginCookie(binding), { append: true })
    const page = anonymousPage(kit, c, createCSRFToken(keyring, `admin-login:${binding}`))
    return send(c, signInPage(page, options), status)
  }

  app.get('/login', async (c) => {
    const current = await adminSessions.validate(c.req.header('cookie'))
    if (current !== null && current.session.userId !== null) return c.redirect(base, 303)
    const signedOut = c.req.query('signed_out') === '1'
    return renderSignIn(c, 200, signedOut ? { notice: 'You are signed out.' } : {})
  })

  app.post('/login', async (c) => {
    const form = await readForm(c)
    const binding = readCookie(c.req.header('cookie') ?? '', LOGIN_COOKIE) ?? ''
    if (binding === '') {
      return renderSignIn(c, 403, { error: 'Your sign-in form expired; please try again.' })
    }
    requireSameSite(kit, c, form, `admin-login:${binding}`)
    const rawEmail = form.get('email') ?? ''
    const password = form.get('password') ?? ''
    if (rawEmail === '' || password === '') {
      return renderSignIn(c, 400, { email: rawEmail, error: 'E-mail and password are required.' })
    }
    const ctx = requestContext(kit, c)
    const email = parseEmail(rawEmail)
    let ticket: LoginTicket | undefined
    if (limiter !== undefined) {
      // SECURITY: the same limiter as the API, checked before any hash (ASVS 2.2.1).
      const check = await limiter.check({
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
        metrics?.recordRateLimited('admin_login')
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
    else if (found === null || hash === null) await passwords.dummyVerify(password)
    else verified = await passwords.verify(password, hash)

    if (found === null || hash === null || !verified || !found.isActive) {
      if (ticket !== undefined) await limiter?.failed(ticket)
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
      metrics?.recordLogin('failure')
      // SECURITY: one answer for unknown e-mail, wrong password and disabled account.
      return renderSignIn(c, 401, { email: rawEmail, error: 'E-mail or password is incorrect.' })
    }
    if (ticket !== undefined) await limiter?.succeeded(ticket)
    if (!(await mayUsePanel(kit, found))) {
      await audit.record({
        type: 'login',
        outcome: 'denied',
        userId: found.id,
        ...ctx,
        detail: { panel: 'admin', reason: 'not_admin' },
      })
      // A correct password without the right to the panel is a sign-in that did not happen.
      metrics?.recordLogin('failure')
      return renderSignIn(c, 403, {
        email: rawEmail,
        error: 'This account may not use the admin panel.',
      })
    }
    if (passwords.needsRehash(hash)) {
      await accounts.upgradePasswordHash(found.id, hash, await passwords.hash(password))
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
    metrics?.recordLogin('success')
    c.header('Set-Cookie', issued.setCookie, { append: true })
    c.header(
      'Set-Cookie',
      serializeDeletedCookie(LOGIN_COOKIE, {
        path: base,
        httpOnly: true,
        secure: kit.secureCookies,
        sameSite: 'Strict',
      }),
      { append: true },
    )
    return c.redirect(base, 303)
  })
}

/** POST `/logout` (behind the guard): ends the admin session. */
export function signOutRoutes(app: AdminApp, kit: AdminKit): void {
  const { adminSessions } = kit.deps
  app.post('/logout', async (c) => {
    const form = await readForm(c)
    const session = c.get('session')
    requireSameSite(kit, c, form, `admin:${session.id}`)
    await adminSessions.revoke(session)
    await kit.deps.auth.audit.record({
      type: 'logout',
      outcome: 'success',
      userId: session.userId,
      ...requestContext(kit, c),
      detail: { panel: 'admin' },
    })
    c.header('Set-Cookie', adminSessions.clearCookie(), { append: true })
    return c.redirect(`${kit.base}/login?signed_out=1`, 303)
  })
}
