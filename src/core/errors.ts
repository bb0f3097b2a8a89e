/**
 * The one error vocabulary of tessera: every error it throws on purpose is a
 * {@link TesseraError} with a stable `code`, and {@link HTTP_ERRORS} says how each code is
 * answered over HTTP (status, the code of the body, `Retry-After`). The server, the admin panel
 * and the adapters all answer through that one table.
 *
 * Codes are never renamed or reused; `docs/errors.md` lists each one with its HTTP answer (a test
 * keeps the two equal). Library codes keep their names (`token_invalid`, `store_unavailable`) and
 * map to the HTTP API's names (`invalid_token`, `unavailable`); the API's own codes (API.md) are
 * codes here too, so a route can throw `new TesseraError('not_found', ...)` or
 * `new TesseraError('reauthentication_required', ...)` and get the documented answer.
 */
const LIBRARY_ERROR_CODES = [
  'config_invalid',
  'invalid_argument',
  'cookie_invalid',
  'cookie_too_large',
  'store_unavailable',
  'store_conflict',
  'conflict',
  'not_found',
  'token_invalid',
  'token_reused',
  'jwks_unavailable',
  'overloaded',
] as const

/** Codes of the HTTP API (API.md, plus `internal_error`) that are not library codes too. */
const API_ONLY_ERROR_CODES = [
  'invalid_request',
  'invalid_credentials',
  'unauthenticated',
  'forbidden',
  'csrf_failed',
  'rate_limited',
  'invalid_token',
  'weak_password',
  'payload_too_large',
  'unsupported_media_type',
  'unavailable',
  'reauthentication_required',
  'email_unverified',
  'internal_error',
] as const

/** Every code: the library's own, then the HTTP API's. */
export const ERROR_CODES = [...LIBRARY_ERROR_CODES, ...API_ONLY_ERROR_CODES] as const

/** The stable machine-readable reason of a {@link TesseraError}. */
export type TesseraErrorCode = (typeof ERROR_CODES)[number]

/**
 * The codes an HTTP error body carries (`{"error": {"code", "message"}}`): API.md's list, plus
 * `internal_error` for the generic 500. Every one is also a {@link TesseraErrorCode}; three are
 * library codes answered under their own name.
 */
export const API_ERROR_CODES = [
  ...API_ONLY_ERROR_CODES,
  'token_reused',
  'not_found',
  'conflict',
] as const satisfies readonly TesseraErrorCode[]

/** A code of an HTTP error body; see {@link API_ERROR_CODES}. */
export type APIErrorCode = (typeof API_ERROR_CODES)[number]

/** The HTTP statuses errors are answered with. */
export type HTTPErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429 | 500 | 503

/** One row of {@link HTTP_ERRORS}: how an error with this code is answered over HTTP. */
export interface HTTPErrorMapping {
  readonly status: HTTPErrorStatus
  /** The `code` of the response body. */
  readonly code: APIErrorCode
  /**
   * The message sent instead of the error's own, for codes whose own message is meant for the
   * log (a store's address, a setting's name). `undefined` sends the error's message.
   */
  readonly message?: string
  /**
   * Seconds for `Retry-After` when the error carries none of its own. Every `503` and `429` row
   * has one: a client told to come back must be told when.
   */
  readonly retryAfter?: number
}

const INTERNAL: HTTPErrorMapping = {
  status: 500,
  code: 'internal_error',
  message: 'internal server error',
}

/**
 * The one table from error code to HTTP answer. A `500` row is a code no request should cause
 * (misconfiguration, a bug): it is answered with a generic body and logged as an error.
 */
export const HTTP_ERRORS: Readonly<Record<TesseraErrorCode, HTTPErrorMapping>> = Object.freeze({
  config_invalid: INTERNAL,
  cookie_too_large: INTERNAL,
  internal_error: INTERNAL,
  invalid_argument: { status: 400, code: 'invalid_request' },
  cookie_invalid: { status: 400, code: 'invalid_request' },
  invalid_request: { status: 400, code: 'invalid_request' },
  weak_password: { status: 400, code: 'weak_password' },
  // A token the client sent in a body (reset, challenge) that is unknown, used or expired.
  invalid_token: { status: 400, code: 'invalid_token' },
  // An access or refresh token that was refused: the request is not authenticated.
  token_invalid: { status: 401, code: 'invalid_token' },
  token_reused: { status: 401, code: 'token_reused' },
  invalid_credentials: { status: 401, code: 'invalid_credentials' },
  unauthenticated: { status: 401, code: 'unauthenticated' },
  forbidden: { status: 403, code: 'forbidden' },
  csrf_failed: { status: 403, code: 'csrf_failed' },
  reauthentication_required: { status: 403, code: 'reauthentication_required' },
  email_unverified: { status: 403, code: 'email_unverified' },
  not_found: { status: 404, code: 'not_found' },
  conflict: { status: 409, code: 'conflict' },
  store_conflict: {
    status: 409,
    code: 'conflict',
    message: 'the resource was changed by another request; try again',
  },
  payload_too_large: { status: 413, code: 'payload_too_large' },
  unsupported_media_type: { status: 415, code: 'unsupported_media_type' },
  rate_limited: { status: 429, code: 'rate_limited', retryAfter: 1 },
  // SECURITY: a store that cannot be reached fails closed with 503, never as "no session".
  store_unavailable: {
    status: 503,
    code: 'unavailable',
    message: 'a store the server needs is unavailable; try again later',
    retryAfter: 1,
  },
  // Password hashing is saturated: shed load with 503 rather than queue without bound.
  overloaded: {
    status: 503,
    code: 'unavailable',
    message: 'the server is busy; try again shortly',
    retryAfter: 1,
  },
  // The verifier fetches a key set at most once a minute, so an earlier retry meets the same gap.
  jwks_unavailable: {
    status: 503,
    code: 'unavailable',
    message: 'a key set the server needs is unavailable; try again later',
    retryAfter: 60,
  },
  unavailable: { status: 503, code: 'unavailable', retryAfter: 1 },
})

/** Options of {@link TesseraError}. */
export interface TesseraErrorOptions {
  cause?: unknown
  /** Seconds the caller should wait before trying again (`Retry-After`), e.g. for `rate_limited`. */
  retryAfter?: number
  /** Extra response headers for the HTTP answer (`WWW-Authenticate` on a refused bearer token). */
  headers?: Readonly<Record<string, string>>
}

/**
 * The one error class of tessera.
 *
 * Messages name the option and what was expected; they never contain a token, cookie value,
 * secret, password or hash.
 *
 * @example
 * ```ts
 * try { createKeyring('keyboard cat') } catch (error) {
 *   if (error instanceof TesseraError && error.code === 'config_invalid') console.error(error.message)
 * }
 * ```
 */
export class TesseraError extends Error {
  /** Stable snake_case reason; safe to branch on and to show in logs. */
  readonly code: TesseraErrorCode
  /** Seconds to wait before a retry, when the error knows (`Retry-After`). */
  readonly retryAfter: number | undefined
  /** Extra headers of the HTTP answer. */
  readonly headers: Readonly<Record<string, string>>

  constructor(code: TesseraErrorCode, message: string, options?: TesseraErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'TesseraError'
    this.code = code
    this.retryAfter = options?.retryAfter
    this.headers = options?.headers ?? NO_HEADERS
  }
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({})

/** True when `error` is a {@link TesseraError}, optionally with the given code. */
export function isTesseraError(error: unknown, code?: TesseraErrorCode): error is TesseraError {
  return error instanceof TesseraError && (code === undefined || error.code === code)
}

/** The JSON body of an HTTP error: `{"error": {"code", "message"}}` (API.md). */
export interface ErrorBody {
  error: { code: APIErrorCode; message: string }
}

/** What an error is answered with over HTTP; built by {@link httpErrorOf}. */
export interface HTTPErrorAnswer {
  status: HTTPErrorStatus
  headers: Record<string, string>
  body: ErrorBody
}

/**
 * The HTTP answer of an error code, through {@link HTTP_ERRORS}: its status, the API body, and
 * `Retry-After` on every `503` and `429` (the error's own seconds when it has them, else the
 * table's). A `500` row's body is generic, whatever the message.
 *
 * @example
 * ```ts
 * const { status, headers, body } = httpErrorOf(error.code, error.message, error)
 * return Response.json(body, { status, headers })
 * ```
 */
export function httpErrorOf(
  code: TesseraErrorCode,
  message: string,
  options: { retryAfter?: number | undefined; headers?: Readonly<Record<string, string>> } = {},
): HTTPErrorAnswer {
  // Unknown strings (an AuthFailure code a newer service added) are a bad request, not a crash.
  const mapping: HTTPErrorMapping = Object.hasOwn(HTTP_ERRORS, code)
    ? HTTP_ERRORS[code]
    : HTTP_ERRORS.invalid_request
  const headers: Record<string, string> = { ...options.headers }
  const own = options.retryAfter
  if (typeof own === 'number' && Number.isFinite(own)) {
    headers['Retry-After'] = String(Math.max(1, Math.ceil(own)))
  } else if (mapping.retryAfter !== undefined && headers['Retry-After'] === undefined) {
    headers['Retry-After'] = String(mapping.retryAfter)
  }
  return {
    status: mapping.status,
    headers,
    body: { error: { code: mapping.code, message: mapping.message ?? message } },
  }
}

/** {@link httpErrorOf} for a thrown {@link TesseraError}: its code, message, seconds and headers. */
export function httpErrorOfError(error: TesseraError): HTTPErrorAnswer {
  return httpErrorOf(error.code, error.message, {
    retryAfter: error.retryAfter,
    headers: error.headers,
  })
}
