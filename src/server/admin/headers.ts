import { randomBytes } from 'node:crypto'
import type { MiddlewareHandler } from 'hono'
import type { AdminEnv } from './context.js'

/**
 * The headers of every panel response, error pages included: a CSP with a fresh nonce for the
 * one stylesheet and no script at all, no caching, no framing, no sniffing.
 */
export function securityHeaders(): MiddlewareHandler<AdminEnv> {
  return async (c, next) => {
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
  }
}
