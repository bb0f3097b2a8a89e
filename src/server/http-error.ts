import { HTTP_ERRORS, TesseraError } from '../core/errors.js'
import type { APIErrorCode, ErrorBody, HTTPErrorStatus } from '../core/errors.js'

export type { APIErrorCode }

/** The HTTP status codes the API answers errors with (the statuses of `HTTP_ERRORS`). */
export type ErrorStatus = HTTPErrorStatus

/**
 * An error of the HTTP API, thrown by the body reader and kept for the call sites that name a
 * status: a {@link TesseraError} with an API code, answered through the one table
 * (`HTTP_ERRORS` in core/errors.ts) like every other. New code throws `TesseraError` directly.
 *
 * @throws TesseraError `invalid_argument` when `status` is not the table's status for `code`
 *   (a second, drifting status table is exactly what this class must not become)
 */
export class HTTPError extends TesseraError {
  readonly status: ErrorStatus

  constructor(
    status: ErrorStatus,
    code: APIErrorCode,
    message: string,
    options: { headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(code, message, {
      ...(options.cause === undefined ? {} : { cause: options.cause }),
      ...(options.headers === undefined ? {} : { headers: options.headers }),
    })
    const expected = HTTP_ERRORS[code].status
    if (status !== expected) {
      throw new TesseraError(
        'invalid_argument',
        `HTTPError: ${code} is answered with ${expected} (HTTP_ERRORS), not ${status}`,
      )
    }
    this.name = 'HTTPError'
    this.status = status
  }
}

/** The JSON body of an error response (API.md). */
export function errorBody(code: APIErrorCode, message: string): ErrorBody {
  return { error: { code, message } }
}
