import { httpErrorOf, isTesseraError, TesseraError } from './errors.js'
import type { APIErrorCode, HTTPErrorStatus, TesseraErrorCode } from './errors.js'

/**
 * The refusals of request authentication and its guards, each built from the one error table
 * (`HTTP_ERRORS`), and the checks guards run on their arguments at setup. The rules of the
 * step-up guards live here so that every adapter, Next's included, refuses the same way.
 */

/** A refusal an adapter answers with `status` and the API.md error body {@link refusalBody}. */
export interface AuthRefusal {
  status: HTTPErrorStatus
  code: APIErrorCode
  message: string
  /** Extra response headers (`WWW-Authenticate` on a refused bearer token, `Retry-After` on 503). */
  headers: Readonly<Record<string, string>>
}

const PERMISSION_PATTERN = /^[a-z0-9_-]+\.[a-z0-9_.-]+$/
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({})

/** The API.md error body of a refusal: `{"error": {"code", "message"}}`. */
export function refusalBody(refusal: AuthRefusal): {
  error: { code: APIErrorCode; message: string }
} {
  return { error: { code: refusal.code, message: refusal.message } }
}

/**
 * A permission codename check usable at setup: adapters call it when a guard is built, so a
 * typo fails at startup rather than refusing every request.
 * @throws TesseraError `config_invalid` when `permission` is not `app.action`
 */
export function checkPermissionName(permission: string): string {
  if (typeof permission !== 'string' || !PERMISSION_PATTERN.test(permission)) {
    throw new TesseraError(
      'config_invalid',
      'requirePermission: the permission must look like app.action (lower case letters, digits, _ or -)',
    )
  }
  return permission
}

/**
 * The `maxAgeSeconds` of a `requireFresh` guard, checked at setup.
 * @throws TesseraError `config_invalid` unless it is a positive number of seconds
 */
export function checkMaxAge(maxAgeSeconds: number): number {
  if (typeof maxAgeSeconds !== 'number' || !Number.isFinite(maxAgeSeconds) || maxAgeSeconds <= 0) {
    throw new TesseraError(
      'config_invalid',
      'requireFresh: maxAgeSeconds must be a positive number of seconds (e.g. 600 for 10 minutes)',
    )
  }
  return maxAgeSeconds
}

/**
 * The `level` of a `requireAAL` guard, checked at setup.
 * @throws TesseraError `config_invalid` unless it is 1 or 2
 */
export function checkAALLevel(level: number): 1 | 2 {
  if (level !== 1 && level !== 2) {
    throw new TesseraError('config_invalid', 'requireAAL: level must be 1 or 2')
  }
  return level
}

/** A refusal with the status and body code of `code` in the one error table. */
export function refusal(
  code: TesseraErrorCode,
  message: string,
  headers: Readonly<Record<string, string>> = NO_HEADERS,
): AuthRefusal {
  const answer = httpErrorOf(code, message, { headers })
  return {
    status: answer.status,
    code: answer.body.error.code,
    message: answer.body.error.message,
    headers: Object.freeze(answer.headers),
  }
}

/** `503 unavailable` (with `Retry-After`): a store or key set the request needs is unreachable. */
export const UNAVAILABLE = refusal(
  'unavailable',
  'a service this request needs cannot be reached; try again later',
)
/** `401 unauthenticated`: the request has no signed-in user. */
export const UNAUTHENTICATED = refusal('unauthenticated', 'sign in to use this endpoint')

/**
 * The rule of every `requireFresh` guard: `403 reauthentication_required` unless `authTime`
 * (epoch ms, when the user last proved a credential) is within `maxAgeSeconds` of `now`, else
 * `null`. For adapters whose guards see a session rather than a request state (Next.js).
 */
export function freshnessRefusal(
  authTime: number | null,
  maxAgeSeconds: number,
  now: number,
): AuthRefusal | null {
  // SECURITY: step-up for sensitive changes (ASVS 3.7.1, NIST SP 800-63B 7.2): an unknown
  // authentication time is never recent.
  if (authTime === null || now - authTime > maxAgeSeconds * 1000) {
    return refusal(
      'reauthentication_required',
      `this action needs a sign-in within the last ${Math.round(maxAgeSeconds)} seconds; authenticate again`,
    )
  }
  return null
}

/**
 * The rule of every `requireAAL` guard: `403 reauthentication_required` unless `aal` (the
 * assurance level of the sign-in; 0 when unknown) is at least `level`, else `null`.
 */
export function assuranceRefusal(aal: number, level: 1 | 2): AuthRefusal | null {
  // SECURITY: an unknown assurance level counts as none (ASVS 2.2.3, NIST SP 800-63B 4).
  if (!(aal >= level)) {
    return refusal(
      'reauthentication_required',
      level === 2
        ? 'this action needs a sign-in with a second factor (aal2); authenticate again with one'
        : 'this action needs a sign-in (aal1); authenticate again',
    )
  }
  return null
}

/** The `401 unauthenticated` refusal every guard gives a request without a user. */
export function unauthenticatedRefusal(): AuthRefusal {
  return UNAUTHENTICATED
}

/**
 * The refusal an adapter answers when a call it made (sign in, sign out) failed because a store
 * cannot be reached or the server is saturated (`503`, with `Retry-After`), or `null` for any
 * other error, which the adapter passes on.
 */
export function refusalOfError(error: unknown): AuthRefusal | null {
  if (!isTesseraError(error)) return null
  if (error.code !== 'store_unavailable' && error.code !== 'overloaded') return null
  return refusal(error.code, error.message)
}
