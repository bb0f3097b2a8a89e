import type { ErrorHandler } from 'hono'
import type { User } from '../../auth/accounts.js'
import { httpErrorOfError, isTesseraError, type TesseraErrorCode } from '../../core/errors.js'
import { anonymousPage, send, type AdminEnv, type AdminKit } from './context.js'
import { messagePage } from './views/layout.js'

// The page title for an error code; the status comes from core's one table (HTTP_ERRORS).
const TITLES: Partial<Record<TesseraErrorCode, string>> = {
  not_found: 'Not found',
  invalid_request: 'Bad request',
  forbidden: 'Forbidden',
  csrf_failed: 'Request refused',
  payload_too_large: 'Form too large',
  unsupported_media_type: 'Unsupported form',
  rate_limited: 'Too many requests',
  store_unavailable: 'Temporarily unavailable',
  overloaded: 'Temporarily unavailable',
}

/**
 * The panel's error pages, through the one error vocabulary: a `TesseraError` gets the status of
 * its code in core's `HTTP_ERRORS` (and its `Retry-After`), with its message on the page; an
 * unreachable store a "try again" page (503); anything else a generic 500 (the error goes to
 * `onError`, never to the page).
 */
export function errorPages(kit: AdminKit): ErrorHandler<AdminEnv> {
  return (error, c) => {
    const page = anonymousPage(kit, c, '')
    const admin = c.get('admin') as User | undefined
    if (admin !== undefined) page.admin = admin
    if (isTesseraError(error)) {
      const answer = httpErrorOfError(error)
      if (answer.status < 500 || answer.status === 503) {
        for (const [name, value] of Object.entries(answer.headers)) c.header(name, value)
        const title = TITLES[error.code] ?? 'Request refused'
        const text =
          answer.status === 503
            ? 'A store the panel needs does not answer. Try again in a moment.'
            : error.message
        return send(c, messagePage(page, title, text), answer.status)
      }
    }
    kit.onError(error)
    return send(
      c,
      messagePage(
        page,
        'Something went wrong',
        'The request failed; nothing was shown to anyone else. Check the server log.',
      ),
      500,
    )
  }
}
