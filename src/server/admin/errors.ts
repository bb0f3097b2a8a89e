import type { ErrorHandler } from 'hono'
import type { User } from '../../auth/accounts.js'
import { isTesseraError } from '../../core/errors.js'
import { anonymousPage, send, type AdminEnv, type AdminKit } from './context.js'
import { messagePage } from './views/layout.js'

/** Thrown by a handler to answer with an HTML page and a status. */
export class PageError extends Error {
  readonly status: 400 | 403 | 404 | 413 | 415 | 429
  readonly title: string
  constructor(status: 400 | 403 | 404 | 413 | 415 | 429, title: string, message: string) {
    super(message)
    this.status = status
    this.title = title
  }
}

/**
 * The panel's error pages: a {@link PageError} as its page and status, an unreachable store as
 * 503, anything else as a generic 500 (the error goes to `onError`, never to the page).
 */
export function errorPages(kit: AdminKit): ErrorHandler<AdminEnv> {
  return (error, c) => {
    const page = anonymousPage(kit, c, '')
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
