/**
 * `Authorization: Bearer` access tokens: the one parser of the header, and the shape of the
 * verifier and options request authentication takes.
 */

const MAX_AUTHORIZATION_LENGTH = 16_384

/** The `WWW-Authenticate` answer to a refused bearer token (RFC 6750 3.1). */
export const INVALID_BEARER_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'WWW-Authenticate': 'Bearer error="invalid_token"',
})

/**
 * The shape a bearer verifier must have: `createVerifier()` from `tessera-auth/jwt` and
 * `createAccessTokens()` both fit. A result with `ok: false` and `code: 'jwks_unavailable'`
 * means the keys could not be fetched (503), any other failure is a bad token (401).
 */
export interface BearerVerifier {
  verify(
    token: string,
  ): Promise<
    { ok: true; claims: { sub?: unknown } & Record<string, unknown> } | { ok: false; code: string }
  >
}

/** How `Authorization: Bearer` access tokens are checked; the `bearer` option. */
export interface BearerOptions {
  /** Verifies the token's signature and claims. */
  verifier: BearerVerifier
  /**
   * The token's `sid` must name a live session of its `sub` (one store read per request), so a
   * logout or "log out other devices" ends the session's tokens at once rather than at their
   * expiry. The request's `session` is then that session.
   * @default false
   */
  requireSession?: boolean
  /**
   * What a refused token (bad, expired, its session gone) makes of the request: `'refuse'`
   * answers `401 invalid_token` with `WWW-Authenticate` (RFC 6750); `'anonymous'` goes on without
   * a user, so guards answer `401 unauthenticated` (the tessera server's contract).
   * @default 'refuse'
   */
  onInvalid?: 'refuse' | 'anonymous'
  /**
   * Whether unsafe bearer requests also pass rules 2 and 3 of the cross-site check (a
   * `Sec-Fetch-Site` other than same-origin/none, an untrusted `Origin`). A browser never adds a
   * bearer token on its own, so `'skip'` lets cross-origin API calls with a token through;
   * `'check'` refuses every cross-site unsafe request, as API.md does.
   * @default 'skip'
   */
  crossSite?: 'skip' | 'check'
}

/**
 * The token of an `Authorization: Bearer <token>` header, `''` for a malformed one, `null` for
 * another scheme or no header. The one bearer parser: every adapter and the server read the
 * header through it.
 */
export function parseBearerToken(header: string | null | undefined): string | null {
  if (typeof header !== 'string') return null
  const trimmed = header.trim()
  if (trimmed.length < 6 || trimmed.slice(0, 6).toLowerCase() !== 'bearer') return null
  if (trimmed.length === 6) return ''
  if (trimmed[6] !== ' ' && trimmed[6] !== '\t') return null
  const token = trimmed.slice(7).trim()
  // RFC 6750 2.1 b64token; anything else (spaces, commas, control characters) is malformed.
  if (token.length > MAX_AUTHORIZATION_LENGTH || !/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) return ''
  return token
}
