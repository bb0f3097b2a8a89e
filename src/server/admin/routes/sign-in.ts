/*
 * Signing in to the panel (GET/POST /login) and out (POST /logout). The sign-in form's CSRF token
 * is bound to a random value in a short-lived cookie (login CSRF); the session is the panel's own.
 */
import { randomBytes } from 'node:crypto'
import { parseEmail } from '../../../auth/email.js'
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
import { ADMIN_PERMISSION } from '../guard.js'
import { secondStepPage } from '../views/mfa.js'
import { signInPage } from '../views/sign-in.js'

const LOGIN_COOKIE = 'tessera_admin_login'

/** GET and POST `/login`: the sign-in form and its check. */
export function signInRoutes(app: AdminApp, kit: AdminKit): void {
  const { adminSessions, auth, keyring, metrics } = kit.deps
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

  /** The second step's code form, under a fresh login binding like the sign-in form. */
  function renderSecondStep(
    c: AdminContext,
    status: 200 | 400 | 401 | 429,
    options: { challenge: string; error?: string },
  ): Response {
    const binding = randomBytes(18).toString('base64url')
    c.header('Set-Cookie', loginCookie(binding), { append: true })
    const page = anonymousPage(kit, c, createCSRFToken(keyring, `admin-login:${binding}`))
    return send(c, secondStepPage(page, options), status)
  }

  /** A sign-in that ended with a session: its cookie, the login binding gone, the dashboard. */
  function signedIn(c: AdminContext, setCookie: string): Response {
    metrics?.recordLogin('success')
    c.header('Set-Cookie', setCookie, { append: true })
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
  }

  const panelSignIn = {
    sessions: adminSessions,
    require: { permission: ADMIN_PERMISSION, reason: 'not_admin' },
    audit: { action: 'admin_login', detail: { panel: 'admin' } },
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
    // The one sign-in pipeline (src/auth/sign-in.ts), as POST /auth/login and the token grant:
    // the limiter before any hash, one credentials query and exactly one verification (a dummy
    // one for an unknown e-mail), the input length cap, the rehash and the audit events; the
    // panel adds its own session manager, its right (admin.access) and its audit details.
    const previous = await adminSessions.validate(c.req.header('cookie'))
    const ctx = requestContext(kit, c)
    const result = await auth.signIn.password(
      { email: rawEmail, password },
      {
        ...ctx,
        ...panelSignIn,
        session: previous?.session,
        data: { flash: { kind: 'ok', text: `Signed in as ${parseEmail(rawEmail) ?? rawEmail}.` } },
      },
    )
    if (!result.ok) {
      switch (result.code) {
        case 'rate_limited': {
          const wait = result.retryAfterSeconds ?? 1
          metrics?.recordRateLimited('admin_login')
          c.header('Retry-After', String(wait))
          return renderSignIn(c, 429, {
            email: rawEmail,
            error: `Too many attempts. Try again in ${wait} s.`,
          })
        }
        case 'forbidden':
          // A correct password without the right to the panel is a sign-in that did not happen.
          metrics?.recordLogin('failure')
          return renderSignIn(c, 403, {
            email: rawEmail,
            error: 'This account may not use the admin panel.',
          })
        case 'second_factor_required': {
          // The second step (issue 13): a code form bound to a challenge of purpose `admin`.
          if (kit.deps.mfa === undefined) {
            return renderSignIn(c, 403, {
              email: rawEmail,
              error: 'This account has a second factor, which this admin panel cannot ask for.',
            })
          }
          const issued = await kit.deps.mfa.secondStep.begin(result, 'admin')
          return renderSecondStep(c, 200, { challenge: issued.challenge })
        }
        case 'invalid_request':
          return renderSignIn(c, 400, {
            email: rawEmail,
            error: 'E-mail and password are required.',
          })
        default:
          metrics?.recordLogin('failure')
          // SECURITY: one answer for unknown e-mail, wrong password, over-long input and
          // disabled account (the pipeline's invalid_credentials).
          return renderSignIn(c, 401, {
            email: rawEmail,
            error: 'E-mail or password is incorrect.',
          })
      }
    }
    return signedIn(c, result.setCookie)
  })

  app.post('/login/mfa', async (c) => {
    const mfa = kit.deps.mfa
    const form = await readForm(c)
    const binding = readCookie(c.req.header('cookie') ?? '', LOGIN_COOKIE) ?? ''
    if (mfa === undefined || binding === '') {
      return renderSignIn(c, 403, { error: 'Your sign-in form expired; please try again.' })
    }
    requireSameSite(kit, c, form, `admin-login:${binding}`)
    const challenge = form.get('challenge') ?? ''
    const previous = await adminSessions.validate(c.req.header('cookie'))
    // The same second step as POST /auth/mfa/verify; only challenges of the panel's sign-in.
    const verified = await mfa.secondStep.verify(
      { challenge, method: form.get('method') ?? '', code: form.get('code') ?? '' },
      {
        ...requestContext(kit, c),
        ...panelSignIn,
        session: previous?.session,
        purposes: ['admin'],
        data: { flash: { kind: 'ok', text: 'Signed in with a second factor.' } },
      },
    )
    if (verified.ok) return signedIn(c, verified.result.setCookie)
    switch (verified.code) {
      case 'invalid_credentials':
        metrics?.recordLogin('failure')
        return renderSecondStep(c, 401, { challenge, error: 'The code is not correct.' })
      case 'rate_limited': {
        const wait = verified.retryAfterSeconds ?? 1
        metrics?.recordRateLimited('admin_login')
        c.header('Retry-After', String(wait))
        return renderSecondStep(c, 429, {
          challenge,
          error: `Too many attempts. Try again in ${wait} s.`,
        })
      }
      case 'forbidden':
        return renderSignIn(c, 403, { error: 'This account may not use the admin panel.' })
      case 'invalid_request':
        return renderSecondStep(c, 400, { challenge, error: 'Enter a code.' })
      default:
        return renderSignIn(c, 400, { error: 'Your sign-in expired; please sign in again.' })
    }
  })
}

/** POST `/logout` (behind the guard): ends the admin session. */
export function signOutRoutes(app: AdminApp, kit: AdminKit): void {
  const { adminSessions } = kit.deps
  app.post('/logout', async (c) => {
    // The request authentication checked the form token and the Origin rule already.
    const session = c.get('adminSession')
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
