import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { TesseraError } from './errors.js'
import type { Keyring, PurposeKey } from './keyring.js'

/** The origins whose requests are trusted, normalized once; built by {@link createTrustedOrigins}. */
export interface TrustedOrigins {
  /** Serialized origins (`https://app.example.com`, `http://localhost:3000`). */
  readonly origins: ReadonlySet<string>
}

/** What {@link checkCrossSite} needs to know about a request. */
export interface CrossSiteRequest {
  /** The HTTP method, any case. */
  method: string
  /** The request's `Sec-Fetch-Site` and `Origin` headers; absent, `null` or empty means not sent. */
  headers: { secFetchSite?: string | null | undefined; origin?: string | null | undefined }
  /**
   * The public URL's origin plus any other trusted origins. Prefer {@link createTrustedOrigins}
   * at setup; an array is validated and normalized on first use.
   */
  trustedOrigins: TrustedOrigins | readonly string[]
  /** True when a session cookie came with the request (the request is cookie-authenticated). */
  hasSessionCookie: boolean
  /** True when the request carries a valid CSRF token ({@link verifyCSRFToken}). @default false */
  csrfTokenValid?: boolean | undefined
}

/** Why {@link checkCrossSite} let a request through. */
export type CrossSiteAllowedReason =
  'safe_method' | 'no_session' | 'same_origin' | 'trusted_origin' | 'valid_token'

/** Why {@link checkCrossSite} refused a request; the server answers `403 csrf_failed`. */
export type CrossSiteRefusedReason = 'cross_site' | 'untrusted_origin' | 'missing_proof'

/** The decision of {@link checkCrossSite}. */
export type CrossSiteDecision =
  | { allowed: true; reason: CrossSiteAllowedReason }
  | { allowed: false; reason: CrossSiteRefusedReason; message: string }

// RFC 9110 9.2.1 safe methods. Every other method, unknown ones included, is treated as unsafe.
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])
// scheme "://" host [":" port] ["/"]: the shape of an Origin (a trailing slash tolerated).
const ORIGIN_SHAPE = /^[a-z][a-z0-9+.-]*:\/\/[^/?#@\\\s]+\/?$/i
const MAX_ORIGIN_LENGTH = 2048

/**
 * Validates and normalizes trusted origins (lower-case scheme and host, default port dropped,
 * trailing slash dropped), so `https://App.Example.com:443/` and `https://app.example.com` are
 * one origin.
 *
 * @throws TesseraError `config_invalid` for an entry that is not an http(s) origin: a path, query,
 *   credentials, `*`, or `null` (the opaque origin of sandboxed frames and `file:` pages, which
 *   must never be trusted)
 * @example
 * ```ts
 * const trusted = createTrustedOrigins([config.publicUrl, ...config.trustedOrigins])
 * ```
 */
export function createTrustedOrigins(origins: readonly string[]): TrustedOrigins {
  const set = new Set<string>()
  for (const entry of origins) {
    const normalized = typeof entry === 'string' ? normalizeOrigin(entry.trim()) : null
    if (normalized === null) {
      throw new TesseraError(
        'config_invalid',
        'trusted origins must be http(s) origins such as "https://app.example.com" or "http://localhost:3000" (no path, no "*", no "null")',
      )
    }
    set.add(normalized)
  }
  return Object.freeze({ origins: set })
}

/** The serialized origin of an origin-shaped http(s) string, or null. */
function normalizeOrigin(value: string): string | null {
  if (value.length > MAX_ORIGIN_LENGTH || !ORIGIN_SHAPE.test(value)) return null
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return null
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null
  return url.origin
}

const arrayCache = new WeakMap<readonly string[], TrustedOrigins>()

function toTrustedOrigins(value: TrustedOrigins | readonly string[]): TrustedOrigins {
  if (!Array.isArray(value)) return value as TrustedOrigins
  const list = value as readonly string[]
  let built = arrayCache.get(list)
  if (built === undefined) {
    built = createTrustedOrigins(list)
    arrayCache.set(list, built)
  }
  return built
}

function originTrusted(trusted: TrustedOrigins, origin: string): boolean {
  // Browsers send the serialized origin, so the exact lookup is the common case.
  if (trusted.origins.has(origin)) return true
  const normalized = normalizeOrigin(origin)
  return normalized !== null && trusted.origins.has(normalized)
}

function present(value: string | null | undefined): string | null {
  if (value === undefined || value === null) return null
  const trimmed = value.trim()
  return trimmed.length === 0 ? null : trimmed
}

/** True for GET, HEAD, OPTIONS and TRACE (any case); every other method is unsafe. */
export function isSafeMethod(method: string): boolean {
  return SAFE_METHODS.has(method.toUpperCase())
}

/**
 * Decides whether a request may go on, by the cross-site rule of tessera's HTTP contract:
 *
 * 1. Safe methods (GET, HEAD, OPTIONS, TRACE) pass; every other method is checked.
 * 2. `Sec-Fetch-Site` other than `same-origin` or `none` is refused (`cross_site`).
 * 3. An `Origin` that is not trusted, `null` included, is refused (`untrusted_origin`). Rules 2
 *    and 3 apply with or without a session, so login and signup are covered (login CSRF).
 * 4. A request without a session cookie then passes (`no_session`): a command-line client or
 *    another service sends none of these headers and is not a cross-site request.
 * 5. A cookie-authenticated request must show where it comes from: `Sec-Fetch-Site:
 *    same-origin`, a trusted `Origin`, or a valid CSRF token; otherwise `missing_proof`.
 *
 * Pure and never throws for request input (an invalid `trustedOrigins` array throws
 * `config_invalid`, a setup error).
 *
 * @example
 * ```ts
 * const decision = checkCrossSite({
 *   method: request.method,
 *   headers: { secFetchSite: request.headers.get('sec-fetch-site'), origin: request.headers.get('origin') },
 *   trustedOrigins,
 *   hasSessionCookie: cookies[sessionCookieName] !== undefined,
 *   csrfTokenValid: verifyCSRFToken(keyring, session.id, request.headers.get('x-csrf-token')),
 * })
 * if (!decision.allowed) return json(403, { error: { code: 'csrf_failed', message: decision.message } })
 * ```
 */
export function checkCrossSite(request: CrossSiteRequest): CrossSiteDecision {
  if (typeof request.method === 'string' && isSafeMethod(request.method)) {
    return { allowed: true, reason: 'safe_method' }
  }
  const site = present(request.headers.secFetchSite)?.toLowerCase() ?? null
  // SECURITY: Fetch Metadata (W3C Fetch Metadata Request Headers; OWASP CSRF cheat sheet):
  // the browser says the request was started by another site; refuse before anything runs.
  if (site !== null && site !== 'same-origin' && site !== 'none') {
    return {
      allowed: false,
      reason: 'cross_site',
      message: 'cross-site request refused (Sec-Fetch-Site is not same-origin)',
    }
  }
  const origin = present(request.headers.origin)
  // SECURITY: an Origin that is not ours, or the opaque "null", means another page sent it
  // (RFC 6454 7; OWASP ASVS 50.4.3 / 4.2.2).
  if (origin !== null && !originTrusted(toTrustedOrigins(request.trustedOrigins), origin)) {
    return {
      allowed: false,
      reason: 'untrusted_origin',
      message: 'cross-site request refused (Origin is not a trusted origin)',
    }
  }
  // SECURITY: fail closed for JavaScript callers: anything truthy (a cookie string passed by
  // mistake) counts as a session; only an explicit `true` counts as a valid token.
  if (!request.hasSessionCookie) return { allowed: true, reason: 'no_session' }
  if (site === 'same-origin') return { allowed: true, reason: 'same_origin' }
  if (origin !== null) return { allowed: true, reason: 'trusted_origin' }
  if (request.csrfTokenValid === true) return { allowed: true, reason: 'valid_token' }
  // SECURITY: a cookie the browser attaches on its own is no proof of intent; without a header
  // a page cannot forge, the request needs a session-bound token (ASVS 4.2.2).
  return {
    allowed: false,
    reason: 'missing_proof',
    message:
      'request with a session cookie needs Sec-Fetch-Site: same-origin, a trusted Origin, or an X-CSRF-Token header',
  }
}

/**
 * True when a `Content-Type` header names `application/json`, in any case and with any
 * parameters (`Application/JSON; charset=utf-8`). Anything else, `text/plain` and the form types
 * a cross-site page can post without a preflight included, is false.
 */
export function isJSONContentType(contentType: string | null | undefined): boolean {
  if (typeof contentType !== 'string') return false
  const semicolon = contentType.indexOf(';')
  const essence = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim()
  return essence.length === 16 && essence.toLowerCase() === 'application/json'
}

// Token format v1 (frozen by test/vectors/csrf.json):
//   <kid: 8 base64url chars> "." base64url(mask(32) | (HMAC-SHA256(csrf key, DOMAIN | sessionId) XOR mask))
const CSRF_PURPOSE = 'csrf'
const CSRF_DOMAIN = 'tessera-csrf/v1\0'
const KID_LENGTH = 8
const HMAC_BYTES = 32
const TOKEN_LENGTH = KID_LENGTH + 1 + 86 // 64 bytes are 86 base64url characters

function csrfHmac(key: PurposeKey, sessionId: string): Buffer {
  return createHmac('sha256', key.keyObject).update(CSRF_DOMAIN).update(sessionId, 'utf8').digest()
}

/**
 * Makes a CSRF token bound to one session: an HMAC of the session id under the `csrf` key, XORed
 * with a fresh random mask that travels with it. Every call gives a different string for the same
 * session, so a compressed response never repeats it (BREACH), and a token from one session never
 * verifies for another.
 *
 * @param sessionId a stable identifier of the session that the browser cannot choose (for
 *   server-side sessions, the store id)
 * @throws TesseraError `invalid_argument` when `sessionId` is not a non-empty string
 * @example
 * ```ts
 * const token = createCSRFToken(keyring, session.id) // GET /auth/csrf → { token }
 * ```
 */
export function createCSRFToken(keyring: Keyring, sessionId: string): string {
  if (typeof sessionId !== 'string' || sessionId.length === 0) {
    throw new TesseraError(
      'invalid_argument',
      'createCSRFToken: sessionId must be a non-empty string',
    )
  }
  const key = keyring.key(CSRF_PURPOSE)
  const raw = csrfHmac(key, sessionId)
  // SECURITY: a fresh mask per response (BREACH, CVE-2013-3587): the secret part never repeats.
  const out = randomBytes(HMAC_BYTES * 2)
  for (let index = 0; index < HMAC_BYTES; index++) {
    out[HMAC_BYTES + index] = (raw[index] as number) ^ (out[index] as number)
  }
  return `${key.kid}.${out.toString('base64url')}`
}

/**
 * True when `token` was made by {@link createCSRFToken} for this session with a key of the
 * keyring (fallbacks included). Never throws; anything else is false.
 */
export function verifyCSRFToken(keyring: Keyring, sessionId: string, token: unknown): boolean {
  if (typeof token !== 'string' || token.length !== TOKEN_LENGTH) return false
  if (typeof sessionId !== 'string' || sessionId.length === 0) return false
  if (token.charCodeAt(KID_LENGTH) !== 46 /* . */) return false
  const key = keyring.find(CSRF_PURPOSE, token.slice(0, KID_LENGTH))
  if (key === undefined) return false
  const encoded = token.slice(KID_LENGTH + 1)
  const bytes = Buffer.from(encoded, 'base64url')
  if (bytes.length !== HMAC_BYTES * 2) return false
  // One token, one accepted spelling: Node's decoder ignores stray characters and spare bits.
  if (bytes.toString('base64url') !== encoded) return false
  const unmasked = Buffer.allocUnsafe(HMAC_BYTES)
  for (let index = 0; index < HMAC_BYTES; index++) {
    unmasked[index] = (bytes[index] as number) ^ (bytes[HMAC_BYTES + index] as number)
  }
  // SECURITY: constant-time comparison of the unmasked HMAC (ASVS 11.2.3).
  return timingSafeEqual(csrfHmac(key, sessionId), unmasked)
}
