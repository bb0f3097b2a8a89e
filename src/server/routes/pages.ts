import { randomBytes } from 'node:crypto'
import type { Context } from 'hono'
import { HTTP_ERRORS } from '../../core/errors.js'
import { checkCrossSite, type TrustedOrigins } from '../../core/csrf.js'
import { html, type SafeHtml } from '../admin/html.js'
import { documentShell } from '../admin/views/layout.js'
import type { AppEnv } from '../app.js'
import { readFormBody } from '../body.js'
import { HTTPError } from '../http-error.js'

/** The statuses a page that a mailed link opens may answer with. */
export type PageStatus = 200 | 400 | 403 | 413 | 415 | 429 | 503

/** A page, given the response's CSP nonce. */
export type Page = (nonce: string) => SafeHtml

/**
 * Answers with a server-rendered page for a mailed link (reset, verification, address change,
 * sign-in code): no script at all, the one stylesheet by nonce, posts only to this origin, no
 * framing, no cache, and a Referer of at most the bare origin (the URL holds a token).
 */
export function sendPage(c: Context<AppEnv>, status: PageStatus, page: Page): Response {
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
  // SECURITY: the page's URL holds a token: no cache may keep the page (ASVS 8.2.1), and no
  // Referer carries more than the origin. Not 'no-referrer': with it browsers send
  // `Origin: null` on the form post, which the cross-site rule must refuse.
  c.header('Cache-Control', 'no-store')
  c.header('Referrer-Policy', 'strict-origin')
  c.header('X-Frame-Options', 'DENY')
  c.header('X-Content-Type-Options', 'nosniff')
  // Every 503 says when to come back, as the API's answers do (one table: core/errors.ts).
  if (status === 503 && c.res.headers.get('Retry-After') === null) {
    c.header('Retry-After', String(HTTP_ERRORS.store_unavailable.retryAfter ?? 1))
  }
  return c.html(body, status)
}

/** The document around a page's content, titled `<title> · <product>`. */
export function pageShell(
  nonce: string,
  title: string,
  content: SafeHtml,
  productName = 'tessera',
): SafeHtml {
  return documentShell({
    nonce,
    title: `${title} · ${productName}`,
    brand: productName,
    referrer: 'strict-origin',
    content: html`<div class="narrow">${content}</div>`,
  })
}

/** A page with a heading and one paragraph. */
export function messagePage(title: string, text: string, productName?: string): Page {
  return (nonce) =>
    pageShell(
      nonce,
      title,
      html`<h1>${title}</h1>
        <p>${text}</p>`,
      productName,
    )
}

/**
 * Reads the form a page posted (`application/x-www-form-urlencoded`, at most 64 KiB) after the
 * cross-site rule, or answers the refusal as a page. The form needs no session-bound CSRF
 * token: the mailed token in it is the secret that authorises the action, and a page on another
 * site cannot know it; `Sec-Fetch-Site` and `Origin` still apply.
 */
export async function readPageForm(
  c: Context<AppEnv>,
  trustedOrigins: TrustedOrigins,
  productName?: string,
): Promise<URLSearchParams | Response> {
  const decision = checkCrossSite({
    method: c.req.method,
    headers: { secFetchSite: c.req.header('sec-fetch-site'), origin: c.req.header('origin') },
    trustedOrigins,
    hasSessionCookie: false,
  })
  if (!decision.allowed) {
    return sendPage(
      c,
      403,
      messagePage(
        'Request refused',
        'This form can only be sent from this site. Open the link from the e-mail again.',
        productName,
      ),
    )
  }
  try {
    // The server's one body reader, as the API's and the admin panel's: a body the client cut
    // off or sent with a broken chunk is a 400 page, never a 500.
    return await readFormBody(c.req.raw)
  } catch (error) {
    if (!(error instanceof HTTPError)) throw error
    if (error.status === 415) {
      return sendPage(
        c,
        415,
        messagePage(
          'Unsupported form',
          'The form must be sent as a normal HTML form.',
          productName,
        ),
      )
    }
    if (error.status === 413) {
      return sendPage(
        c,
        413,
        messagePage('Form too large', 'The form is larger than 64 KiB.', productName),
      )
    }
    return sendPage(
      c,
      400,
      messagePage(
        'The form did not arrive whole',
        'The form was cut off on its way. Nothing was changed. Open the link from the e-mail again.',
        productName,
      ),
    )
  }
}
