import { randomBytes } from 'node:crypto'
import type { Context } from 'hono'
import type { AuthService } from '../../auth/service.js'
import type { TrustedProxies } from '../../core/client-ip.js'
import { checkCrossSite, type TrustedOrigins } from '../../core/csrf.js'
import { isTesseraError } from '../../core/errors.js'
import { html, type SafeHtml } from '../admin/html.js'
import { documentShell } from '../admin/views/layout.js'
import type { AppEnv, TesseraApp } from '../app.js'
import { MAX_BODY_BYTES, readBodyBytes } from '../body.js'
import { HTTPError } from '../http-error.js'
import { requestInfo } from '../request-context.js'

/** What the `/reset` pages are built on; everything is built by the caller. */
export interface ResetRoutesDeps {
  /** The auth service of the API: the page confirms a reset exactly as `/auth/password-reset/confirm`. */
  auth: AuthService
  /** The public URL's origin plus `TESSERA_TRUSTED_ORIGINS`: where the form may be posted from. */
  trustedOrigins: TrustedOrigins
  /** Proxies whose `X-Forwarded-For` is believed (audit records). */
  trustedProxies: TrustedProxies
  /** Shortest password the policy accepts, shown as the field's `minlength`. @default 12 */
  passwordMinLength?: number | undefined
}

type PageStatus = 200 | 400 | 403 | 413 | 415 | 429 | 503

// The shape of a reset token (32 random bytes, base64url): anything else is refused before any
// database work, and never echoed into the page.
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/

/** "5 minutes", "1 minute", "30 seconds": how long to wait, for a page. */
function waitText(seconds: number): string {
  if (seconds < 60) return seconds === 1 ? '1 second' : `${seconds} seconds`
  const minutes = Math.ceil(seconds / 60)
  return minutes === 1 ? '1 minute' : `${minutes} minutes`
}

/**
 * Serves the page the reset e-mail links to: `GET /reset?token=...` shows a form (new password,
 * twice) that posts to `POST /reset`, which sets the password through the same
 * `auth.confirmPasswordReset` as `POST /auth/password-reset/confirm` and says what happened.
 *
 * Server-rendered, no script at all (CSP `script-src 'none'`, the one stylesheet by nonce),
 * `Cache-Control: no-store` and `Referrer-Policy: strict-origin` (the token is in the URL; see
 * docs/decisions.md for why not `no-referrer`). Bad input gets a 4xx page, never a 500.
 */
export function resetRoutes(deps: ResetRoutesDeps): (app: TesseraApp) => void {
  const { auth } = deps
  const minLength = deps.passwordMinLength ?? 12

  function send(
    c: Context<AppEnv>,
    status: PageStatus,
    page: (nonce: string) => SafeHtml,
  ): Response {
    const nonce = randomBytes(18).toString('base64')
    const body = page(nonce).value
    // SECURITY: no script may run (script-src 'none'); the one stylesheet needs this response's
    // nonce; the form may post only to this origin; no framing (ASVS 14.4.3, 14.4.7).
    c.header(
      'Content-Security-Policy',
      [
        "default-src 'none'",
        "script-src 'none'",
        `style-src 'nonce-${nonce}'`,
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
      ].join('; '),
    )
    // SECURITY: the page's URL holds the reset token: no cache may keep the page (ASVS 8.2.1),
    // and no Referer ever carries more than the bare origin. Not 'no-referrer': with it browsers
    // send `Origin: null` on the form post, which the cross-site rule must refuse.
    c.header('Cache-Control', 'no-store')
    c.header('Referrer-Policy', 'strict-origin')
    c.header('X-Frame-Options', 'DENY')
    c.header('X-Content-Type-Options', 'nosniff')
    return c.html(body, status)
  }

  function shell(nonce: string, title: string, content: SafeHtml): SafeHtml {
    return documentShell({
      nonce,
      title: `${title} · tessera`,
      brand: 'tessera',
      referrer: 'strict-origin',
      content: html`<div class="narrow">${content}</div>`,
    })
  }

  function formPage(token: string, error?: string): (nonce: string) => SafeHtml {
    const alert = error === undefined ? '' : html`<p class="flash error" role="alert">${error}</p>`
    // The token travels in a hidden field, not in the form's action URL, so the POST's URL
    // (and anything that logs URLs in front of the server) never holds it. The action is
    // relative, so it also works when the public URL has a path (`https://example.com/auth`).
    return (nonce) =>
      shell(
        nonce,
        'Choose a new password',
        html`<h1>Choose a new password</h1>
          ${alert}
          <form method="post" action="reset" class="stack">
            <input type="hidden" name="token" value="${token}" />
            <label
              >New password
              <input
                type="password"
                name="newPassword"
                autocomplete="new-password"
                required
                minlength="${minLength}"
            /></label>
            <label
              >New password again
              <input
                type="password"
                name="confirmPassword"
                autocomplete="new-password"
                required
                minlength="${minLength}"
            /></label>
            <button type="submit">Set the new password</button>
          </form>
          <p class="muted">
            At least ${minLength} characters. Setting it signs you out everywhere, this browser
            included.
          </p>`,
      )
  }

  function messagePage(title: string, text: string): (nonce: string) => SafeHtml {
    return (nonce) =>
      shell(
        nonce,
        title,
        html`<h1>${title}</h1>
          <p>${text}</p>`,
      )
  }

  const invalidLink = messagePage(
    'This reset link does not work',
    'The link is invalid, has expired (links last 30 minutes) or was already used. Ask for a new password reset e-mail and use the newest link.',
  )

  return (app) => {
    app.get('/reset', (c) => {
      const token = c.req.query('token')
      if (token === undefined || !TOKEN_SHAPE.test(token)) return send(c, 400, invalidLink)
      return send(c, 200, formPage(token))
    })

    app.post('/reset', async (c) => {
      // SECURITY: the form needs no session-bound CSRF token: the reset token in it is the
      // secret that authorises the change, and a page on another site cannot know it. The
      // cross-site rule still applies (Sec-Fetch-Site, Origin), so a forged cross-site post is
      // refused before anything is read (docs/decisions.md; OWASP CSRF cheat sheet).
      const decision = checkCrossSite({
        method: c.req.method,
        headers: { secFetchSite: c.req.header('sec-fetch-site'), origin: c.req.header('origin') },
        trustedOrigins: deps.trustedOrigins,
        hasSessionCookie: false,
      })
      if (!decision.allowed) {
        return send(
          c,
          403,
          messagePage(
            'Request refused',
            'This form can only be sent from this site. Open the link from the e-mail again.',
          ),
        )
      }
      const type = c.req.header('content-type') ?? ''
      if (type.split(';')[0]?.trim().toLowerCase() !== 'application/x-www-form-urlencoded') {
        return send(
          c,
          415,
          messagePage('Unsupported form', 'The form must be sent as a normal HTML form.'),
        )
      }
      let bytes: Uint8Array
      try {
        bytes = await readBodyBytes(c.req.raw, MAX_BODY_BYTES)
      } catch (error) {
        if (error instanceof HTTPError && error.status === 413) {
          return send(c, 413, messagePage('Form too large', 'The form is larger than 64 KiB.'))
        }
        throw error
      }
      const form = new URLSearchParams(new TextDecoder().decode(bytes))
      const token = form.get('token') ?? ''
      if (!TOKEN_SHAPE.test(token)) return send(c, 400, invalidLink)
      const newPassword = form.get('newPassword') ?? ''
      const confirmPassword = form.get('confirmPassword')
      if (newPassword === '') {
        return send(c, 400, formPage(token, 'Enter the new password in both fields.'))
      }
      // Checked before the service is called: a mismatch changes nothing, not even the token.
      if (confirmPassword !== newPassword) {
        return send(c, 400, formPage(token, 'The two passwords are not the same. Type them again.'))
      }
      let result: Awaited<ReturnType<AuthService['confirmPasswordReset']>>
      try {
        result = await auth.confirmPasswordReset(
          { token, newPassword },
          requestInfo(c, deps.trustedProxies),
        )
      } catch (error) {
        // A store that cannot be reached: fail closed with a page, not the API's JSON.
        if (isTesseraError(error) && error.code === 'store_unavailable') {
          return send(
            c,
            503,
            messagePage(
              'Try again in a moment',
              'The service cannot reach its storage right now. Nothing was changed.',
            ),
          )
        }
        throw error
      }
      if (result.ok) {
        return send(
          c,
          200,
          messagePage(
            'Password changed',
            'Your new password is set. Every session of your account was signed out: sign in again with the new password.',
          ),
        )
      }
      if (result.code === 'weak_password') return send(c, 400, formPage(token, result.message))
      if (result.code === 'rate_limited') {
        // The same limit as POST /auth/password-reset/confirm (one action, one count).
        const retryAfter = result.retryAfterSeconds ?? 60
        c.header('Retry-After', String(retryAfter))
        return send(
          c,
          429,
          messagePage(
            'Too many attempts',
            `Too many password reset attempts from here. Nothing was changed. Wait ${waitText(retryAfter)} and open the link from the e-mail again.`,
          ),
        )
      }
      return send(c, 400, invalidLink)
    })
  }
}
