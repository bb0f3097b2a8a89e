import { randomBytes } from 'node:crypto'
import type { Context } from 'hono'
import { toPublicIdentity, type Identities } from '../../auth/identities.js'
import type { IdentitySignIn } from '../../auth/identity-sign-in.js'
import type { SecondFactorRequired } from '../../auth/sign-in.js'
import type { TrustedProxies } from '../../core/client-ip.js'
import { isTesseraError, TesseraError } from '../../core/errors.js'
import { freshnessRefusal } from '../../core/refusals.js'
import { html } from '../admin/html.js'
import { documentShell } from '../admin/views/layout.js'
import type { AppEnv, TesseraApp } from '../app.js'
import { readJSONBody } from '../body.js'
import type { ServerMetrics } from '../metrics.js'
import { requestInfo } from '../request-context.js'
import { callerOf, type Caller } from './auth.js'

/** What the identity-provider routes are built on; everything is built by the caller. */
export interface OIDCRoutesDeps {
  identitySignIn: IdentitySignIn
  identities: Identities
  trustedProxies: TrustedProxies
  metrics: ServerMetrics
  /**
   * Seconds within which the user must have proved a credential to link or unlink an identity
   * (`TESSERA_REAUTH_MAX_AGE`). @default 600
   */
  reauthMaxAge?: number | undefined
  /**
   * Answers a callback whose account has a second factor: the second-factor step (the MFA
   * routes) stores the continuation and asks for the factor. Without it such a sign-in is
   * refused with a page, and nobody is signed in.
   */
  secondFactor?:
    | ((c: Context<AppEnv>, required: SecondFactorRequired, returnTo: string) => Promise<Response>)
    | undefined
  /** @default Date.now */
  now?: (() => number) | undefined
}

type PageStatus = 400 | 403 | 404 | 429 | 503

/**
 * `GET /auth/oidc/:provider` (to the provider), `GET /auth/oidc/:provider/callback` (back,
 * signed in), `POST /auth/oidc/:provider/link` (a signed-in user links an identity),
 * `GET /auth/identities` and `DELETE /auth/identities/:id`. Registered after the API's
 * authentication middleware (`authRoutes`), whose session they read.
 */
export function oidcRoutes(deps: OIDCRoutesDeps): (app: TesseraApp) => void {
  const { identitySignIn, identities, metrics } = deps
  const reauthMaxAge = deps.reauthMaxAge ?? 600
  const now = deps.now ?? Date.now

  function page(c: Context<AppEnv>, status: PageStatus, title: string, text: string): Response {
    const nonce = randomBytes(18).toString('base64')
    const body = documentShell({
      nonce,
      title: `${title} · tessera`,
      brand: 'tessera',
      referrer: 'no-referrer',
      content: html`<div class="narrow">
        <h1>${title}</h1>
        <p>${text}</p>
      </div>`,
    })
    // SECURITY: the callback URL holds the authorization code: no cache keeps the page and no
    // Referer carries it anywhere; no script may run, no framing.
    c.header(
      'Content-Security-Policy',
      `default-src 'none'; script-src 'none'; style-src 'nonce-${nonce}'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'`,
    )
    c.header('Cache-Control', 'no-store')
    c.header('Referrer-Policy', 'no-referrer')
    c.header('X-Frame-Options', 'DENY')
    c.header('X-Content-Type-Options', 'nosniff')
    return c.html(body.value, status)
  }

  function requireFresh(c: Context<AppEnv>): Caller {
    const caller = callerOf(c)
    if (caller === null) throw new TesseraError('unauthenticated', 'sign in first')
    const refused = freshnessRefusal(caller.session.authTime, reauthMaxAge, now())
    if (refused !== null) throw new TesseraError('reauthentication_required', refused.message)
    return caller
  }

  return (app) => {
    app.get('/auth/oidc/:provider', async (c) => {
      const returnTo = c.req.query('returnTo')
      const started = await identitySignIn.begin(c.req.param('provider'), { returnTo })
      c.header('Set-Cookie', started.setCookie, { append: true })
      return c.redirect(started.location, 302)
    })

    app.get('/auth/oidc/:provider/callback', async (c) => {
      const caller = callerOf(c)
      const info = requestInfo(c, deps.trustedProxies)
      let result: Awaited<ReturnType<IdentitySignIn['callback']>>
      try {
        result = await identitySignIn.callback(c.req.param('provider'), {
          ...info,
          url: new URL(c.req.url),
          cookieHeader: c.req.header('cookie'),
          session: caller?.kind === 'cookie' ? caller.session : undefined,
        })
      } catch (error) {
        if (isTesseraError(error, 'store_unavailable')) {
          c.header('Retry-After', '1')
          return page(
            c,
            503,
            'Try again in a moment',
            'The service cannot reach its storage right now. Nobody was signed in.',
          )
        }
        throw error
      }
      c.header('Set-Cookie', result.clearCookie, { append: true })
      if (result.ok) {
        if (result.kind === 'signed_in') {
          metrics.recordLogin('success')
          c.header('Set-Cookie', result.signedIn.setCookie, { append: true })
        }
        return c.redirect(result.returnTo, 302)
      }
      if (result.code === 'second_factor_required') {
        if (deps.secondFactor !== undefined)
          return deps.secondFactor(c, result.secondFactor, result.returnTo)
        return page(
          c,
          403,
          'A second factor is needed',
          'This account has a second factor, which this server cannot ask for here. Sign in with your password instead.',
        )
      }
      metrics.recordLogin('failure')
      const status: PageStatus =
        result.reason === 'provider_unavailable'
          ? 503
          : result.reason === 'unknown_provider'
            ? 404
            : result.reason === 'rate_limited'
              ? 429
              : 400
      if (status === 503) c.header('Retry-After', '30')
      if (status === 429) {
        metrics.recordRateLimited('identity_callback')
        c.header('Retry-After', String(result.retryAfterSeconds ?? 1))
      }
      return page(c, status, 'Sign-in failed', result.message)
    })

    app.post('/auth/oidc/:provider/link', async (c) => {
      const caller = requireFresh(c)
      // A link is a browser round trip: it comes back with the session cookie it started from.
      if (caller.kind !== 'cookie') {
        throw new TesseraError('forbidden', 'linking an identity needs a browser session')
      }
      const body = await readJSONBody(c.req.raw)
      const returnTo =
        typeof body === 'object' &&
        body !== null &&
        !Array.isArray(body) &&
        Object.hasOwn(body, 'returnTo')
          ? (body as { returnTo?: unknown }).returnTo
          : undefined
      if (returnTo !== undefined && typeof returnTo !== 'string') {
        throw new TesseraError('invalid_request', 'returnTo must be a string')
      }
      const started = await identitySignIn.begin(c.req.param('provider'), {
        returnTo,
        linkUserId: caller.user.id,
      })
      c.header('Set-Cookie', started.setCookie, { append: true })
      return c.json({ location: started.location })
    })

    app.get('/auth/identities', async (c) => {
      const caller = callerOf(c)
      if (caller === null) throw new TesseraError('unauthenticated', 'sign in first')
      const list = await identities.listByUser(caller.user.id)
      return c.json({ identities: list.map(toPublicIdentity) })
    })

    app.delete('/auth/identities/:id', async (c) => {
      const caller = requireFresh(c)
      const result = await identities.unlink(
        caller.user.id,
        c.req.param('id'),
        requestInfo(c, deps.trustedProxies),
      )
      if (result.ok) return c.body(null, 204)
      if (result.code === 'not_found') throw new TesseraError('not_found', 'no such identity')
      throw new TesseraError(
        'conflict',
        'this is the account’s last way to sign in: set a password or link another identity first',
      )
    })
  }
}
