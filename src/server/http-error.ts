import type { TesseraErrorCode } from '../core/errors.js'

/** The error codes of the HTTP API (shared/API.md); the `code` of every error body. */
export type APIErrorCode =
  | 'invalid_request'
  | 'invalid_credentials'
  | 'unauthenticated'
  | 'forbidden'
  | 'csrf_failed'
  | 'rate_limited'
  | 'invalid_token'
  | 'token_reused'
  | 'not_found'
  | 'conflict'
  | 'weak_password'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'unavailable'
  | 'method_not_allowed'
  | 'internal_error'

/** The HTTP status codes the API answers errors with. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 429 | 500 | 503

/**
 * An error the server answers with `{"error": {"code", "message"}}`. Route handlers throw it;
 * the app's error handler turns it into the response.
 */
export class HTTPError extends Error {
  readonly status: ErrorStatus
  readonly code: APIErrorCode
  /** Extra response headers, e.g. `Retry-After`. */
  readonly headers: Readonly<Record<string, string>>

  constructor(
    status: ErrorStatus,
    code: APIErrorCode,
    message: string,
    options: { headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? {} : { cause: options.cause })
    this.name = 'HTTPError'
    this.status = status
    this.code = code
    this.headers = options.headers ?? {}
  }
}

/** One row of {@link TESSERA_ERROR_STATUS}: how a library error is answered. */
export interface ErrorMapping {
  status: ErrorStatus
  code: APIErrorCode
  /** The message sent to the client; `undefined` sends the error's own message. */
  message?: string
  /** Seconds for a `Retry-After` header. */
  retryAfter?: number
}

/**
 * The one table from library error codes to HTTP answers. A code missing here is a bug in the
 * server (answered 500 and logged), so every code a request can cause must have a row.
 * Typed as a partial record so codes other branches add compile before they get their row.
 */
export const TESSERA_ERROR_STATUS: Partial<Record<TesseraErrorCode | (string & {}), ErrorMapping>> =
  {
    invalid_argument: { status: 400, code: 'invalid_request' },
    cookie_invalid: { status: 400, code: 'invalid_request' },
    // SECURITY: a store that cannot be reached fails closed with 503, never as "no session".
    store_unavailable: {
      status: 503,
      code: 'unavailable',
      message: 'a store the server needs is unavailable; try again later',
    },
    store_conflict: {
      status: 409,
      code: 'conflict',
      message: 'the resource was changed by another request; try again',
    },
    conflict: { status: 409, code: 'conflict' },
    not_found: { status: 404, code: 'not_found' },
    token_invalid: { status: 401, code: 'invalid_token' },
    token_reused: { status: 401, code: 'token_reused' },
    // Password hashing is saturated: shed load with 503 rather than queue without bound.
    overloaded: {
      status: 503,
      code: 'unavailable',
      message: 'the server is busy; try again shortly',
      retryAfter: 1,
    },
    jwks_unavailable: {
      status: 503,
      code: 'unavailable',
      message: 'a key set the server needs is unavailable; try again later',
    },
  }

/**
 * Library codes that never come from a request: misconfiguration found at start, or a bug.
 * They are answered with a generic 500 and logged. Every other code has a row in the table.
 */
export const INTERNAL_ERROR_CODES: readonly string[] = ['config_invalid', 'cookie_too_large']

/** The JSON body of an error response. */
export function errorBody(
  code: APIErrorCode,
  message: string,
): {
  error: { code: APIErrorCode; message: string }
} {
  return { error: { code, message } }
}
