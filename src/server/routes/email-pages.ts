import type { Context } from 'hono'
import type { AuthService } from '../../auth/service.js'
import type { TrustedProxies } from '../../core/client-ip.js'
import type { TrustedOrigins } from '../../core/csrf.js'
import { isTesseraError } from '../../core/errors.js'
import { html } from '../admin/html.js'
import type { AppEnv, TesseraApp } from '../app.js'
import type { ServerMetrics } from '../metrics.js'
import { requestInfo } from '../request-context.js'
import { messagePage, pageShell, readPageForm, sendPage, type Page } from './pages.js'

/** What the pages of the mailed links are built on. */
export interface EmailPagesDeps {
  auth: AuthService
  trustedOrigins: TrustedOrigins
  trustedProxies: TrustedProxies
  metrics: ServerMetrics
  /** The product name in the pages' titles. @default 'tessera' */
  productName?: string | undefined
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/
const CODE_SHAPE = /^[0-9]{8}$/

/** One page behind a mailed link: what its button says and what its POST does. */
interface LinkPage {
  path: string
  title: string
  text: string
  button: string
  /** Runs the action with the token; answers the page to show. */
  act(c: Context<AppEnv>, token: string): Promise<Response>
}

/**
 * The pages mailed links open: `/verify-email`, `/confirm-email`, `/report-email-change` and
 * `/email-code`. A GET only shows a button; the POST of that button acts (through the same
 * service calls as the API). SECURITY: mail scanners and link previews follow links with GET,
 * so a GET never verifies, changes or signs in anything (kratos#1451).
 */
export function emailPages(deps: EmailPagesDeps): (app: TesseraApp) => void {
  const { auth } = deps
  const product = deps.productName ?? 'tessera'
  const send = (c: Context<AppEnv>, status: 200 | 400 | 429 | 503, page: Page): Response =>
    sendPage(c, status, page)
  const message = (title: string, text: string): Page => messagePage(title, text, product)
  const deadLink = message(
    'This link does not work',
    'The link is invalid, has expired or was already used. Ask for a new e-mail and use the newest link.',
  )

  function buttonPage(page: LinkPage, fields: Record<string, string>): Page {
    // The secret travels in hidden fields, not in the form's action URL, so the POST's URL
    // (and whatever logs URLs) never holds it. The action is relative: it works under a path.
    return (nonce) =>
      pageShell(
        nonce,
        page.title,
        html`<h1>${page.title}</h1>
          <p>${page.text}</p>
          <form method="post" action="${page.path.slice(1)}" class="stack">
            ${Object.entries(fields).map(
              ([name, value]) => html`<input type="hidden" name="${name}" value="${value}" />`,
            )}
            <button type="submit">${page.button}</button>
          </form>`,
        product,
      )
  }

  async function guarded(c: Context<AppEnv>, run: () => Promise<Response>): Promise<Response> {
    try {
      return await run()
    } catch (error) {
      // A store that cannot be reached: fail closed with a page, not the API's JSON.
      if (isTesseraError(error) && error.code === 'store_unavailable') {
        return send(
          c,
          503,
          message(
            'Try again in a moment',
            'The service cannot reach its storage right now. Nothing was changed.',
          ),
        )
      }
      throw error
    }
  }

  const tooMany = message('Too many attempts', 'Wait a few minutes, then open the link again.')
  const info = (c: Context<AppEnv>): ReturnType<typeof requestInfo> =>
    requestInfo(c, deps.trustedProxies)

  const pages: LinkPage[] = [
    {
      path: '/verify-email',
      title: 'Confirm your e-mail address',
      text: 'Press the button to confirm that this address belongs to your account.',
      button: 'Confirm the address',
      async act(c, token) {
        const result = await auth.email.verify(token, info(c))
        if (result.ok) {
          return send(
            c,
            200,
            message('Address confirmed', `${result.user.email} is now confirmed. Thank you.`),
          )
        }
        return result.code === 'rate_limited' ? send(c, 429, tooMany) : send(c, 400, deadLink)
      },
    },
    {
      path: '/confirm-email',
      title: 'Confirm your new e-mail address',
      text: 'Press the button to make this address the address of your account.',
      button: 'Use this address',
      async act(c, token) {
        const result = await auth.email.confirmChange(token, info(c))
        if (result.ok) {
          return send(
            c,
            200,
            message('Address changed', `Your account's address is now ${result.user.email}.`),
          )
        }
        if (result.code === 'conflict') {
          return send(
            c,
            400,
            message('Address taken', 'Another account uses this address now. Nothing changed.'),
          )
        }
        return result.code === 'rate_limited' ? send(c, 429, tooMany) : send(c, 400, deadLink)
      },
    },
    {
      path: '/report-email-change',
      title: 'This was not me',
      text: 'Press the button to cancel (or undo) the change of address and sign out every session of the account. Then reset your password.',
      button: 'Cancel the change and sign everyone out',
      async act(c, token) {
        const result = await auth.email.reportChange(token, info(c))
        if (!result.ok) return send(c, 400, deadLink)
        return send(
          c,
          200,
          message(
            'Thank you',
            `${result.restored ? 'The address is back to this one' : 'The change is cancelled'}, and every session was signed out. Reset your password now: whoever asked for the change knows it.`,
          ),
        )
      },
    },
  ]

  return (app) => {
    for (const page of pages) {
      app.get(page.path, (c) => {
        const token = c.req.query('token')
        if (token === undefined || !TOKEN_SHAPE.test(token)) return send(c, 400, deadLink)
        return send(c, 200, buttonPage(page, { token }))
      })
      app.post(page.path, async (c) => {
        const form = await readPageForm(c, deps.trustedOrigins, product)
        if (form instanceof Response) return form
        const token = form.get('token') ?? ''
        if (!TOKEN_SHAPE.test(token)) return send(c, 400, deadLink)
        return guarded(c, () => page.act(c, token))
      })
    }

    const codePage: LinkPage = {
      path: '/email-code',
      title: 'Sign in',
      text: 'Press the button to sign in with the code from the e-mail, in this browser.',
      button: 'Sign in',
      act: () => Promise.reject(new Error('unused')),
    }
    app.get('/email-code', (c) => {
      const email = c.req.query('email') ?? ''
      const code = c.req.query('code') ?? ''
      if (!CODE_SHAPE.test(code) || email === '' || email.length > 320) {
        return send(c, 400, deadLink)
      }
      return send(c, 200, buttonPage(codePage, { email, code }))
    })
    app.post('/email-code', async (c) => {
      const form = await readPageForm(c, deps.trustedOrigins, product)
      if (form instanceof Response) return form
      const email = form.get('email') ?? ''
      const code = form.get('code') ?? ''
      if (!CODE_SHAPE.test(code) || email.length > 320) return send(c, 400, deadLink)
      return guarded(c, async () => {
        const result = await auth.email.verifyCode({ email, code }, info(c))
        if (result.ok) {
          deps.metrics.recordLogin('success')
          c.header('Set-Cookie', result.setCookie, { append: true })
          return send(c, 200, message('Signed in', `You are signed in as ${result.user.email}.`))
        }
        if (result.code === 'rate_limited') {
          deps.metrics.recordRateLimited('email_code_verify')
          return send(c, 429, tooMany)
        }
        if (result.code === 'second_factor_required') {
          return send(
            c,
            400,
            message(
              'A second factor is needed',
              'This account has a second factor: sign in with it from the sign-in page.',
            ),
          )
        }
        deps.metrics.recordLogin('failure')
        return send(c, 400, deadLink)
      })
    })
  }
}
