import { randomBytes } from 'node:crypto'
import { SignJWT } from 'jose'
import { TesseraError } from '../core/errors.js'
import type { AuthMethod, Session } from '../core/session-manager.js'
import {
  audienceList,
  checkClaims,
  checkLeeway,
  verifyCompactJWS,
  type JWTClaims,
  type TokenRejection,
} from '../jwt/jws.js'
import type { KeySet } from './keys.js'

/** The `typ` header of tessera access tokens (RFC 9068). */
export const ACCESS_TOKEN_TYPE = 'at+jwt'

/** Claims of a verified access token. */
export interface AccessTokenClaims extends JWTClaims {
  iss: string
  sub: string
  aud: string | string[]
  /** The session or refresh-token family the token belongs to. */
  sid: string
  iat: number
  exp: number
  jti: string
  /** When the user last proved a credential in the session (epoch seconds; API.md "Tokens"). */
  auth_time?: number
  /** The session's assurance level: `aal1` or `aal2`. */
  acr?: 'aal1' | 'aal2'
  /** The session's authentication methods (RFC 8176). */
  amr?: AuthMethod[]
}

/** The authentication claims of a token bound to `session` (API.md "Tokens"). */
export interface SessionAuthClaims {
  [claim: string]: number | string | string[]
  auth_time: number
  acr: 'aal1' | 'aal2'
  amr: AuthMethod[]
}

/**
 * `auth_time`, `acr` and `amr` of an access token, taken from the session it is bound to:
 * pass them as `claims` to `issue` (or to a refresh family, whose tokens all keep them).
 */
export function sessionAuthClaims(
  session: Pick<Session, 'authTime' | 'aal' | 'amr'>,
): SessionAuthClaims {
  return {
    auth_time: Math.floor(session.authTime / 1000),
    acr: session.aal === 2 ? 'aal2' : 'aal1',
    amr: [...session.amr],
  }
}

/** The outcome of verifying an access token: never an exception for a bad token. */
export type AccessTokenResult =
  | { ok: true; claims: AccessTokenClaims }
  | { ok: false; code: 'token_invalid'; reason: TokenRejection }

/** A freshly issued access token. */
export interface IssuedAccessToken {
  token: string
  /** Lifetime in seconds, for `expires_in`. */
  expiresIn: number
  jti: string
  /** Expiry, epoch seconds. */
  exp: number
}

/** Options of {@link createAccessTokens}. */
export interface AccessTokenOptions {
  /** The signing keys (asymmetric {@link createKeySet}, or {@link createHMACKeySet}). */
  keys: KeySet
  /** `iss` of issued tokens and the only issuer accepted. */
  issuer: string
  /** `aud` of issued tokens and the accepted audience(s). */
  audience: string | readonly string[]
  /** Lifetime in seconds. @default 900 */
  ttl?: number
  /** Clock skew allowance in seconds, at most 60. @default 60 */
  leeway?: number
  /**
   * Strict mode: called with `sid` on every {@link AccessTokens.verify}; `false` rejects the
   * token at once (`session_revoked`), so a revoked session's tokens stop working before they
   * expire. Off by default.
   */
  isSessionAlive?: (sid: string) => Promise<boolean>
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number
}

/** Issues and verifies access tokens. */
export interface AccessTokens {
  /** Lifetime of new tokens in seconds. */
  readonly ttl: number
  /** Signs a token for `subject` (a user id) in session or family `sid`. */
  issue(
    subject: string,
    sid: string,
    options?: { claims?: Record<string, unknown> },
  ): Promise<IssuedAccessToken>
  /** Verifies a token, and in strict mode that its session is alive. */
  verify(token: string): Promise<AccessTokenResult>
  /** Verifies signature and claims only (no strict-mode check); the synchronous hot path. */
  verifySync(token: string): AccessTokenResult
}

const RESERVED = new Set(['iss', 'sub', 'aud', 'sid', 'iat', 'exp', 'nbf', 'jti'])

/**
 * Creates the access-token issuer and verifier. Tokens are signed with jose; verification uses
 * node:crypto against the key the `kid` names, with the algorithm pinned to that key.
 *
 * @throws TesseraError `config_invalid` for a missing issuer or audience, a ttl that is not
 * positive, or a leeway over 60 s
 * @example
 * ```ts
 * const tokens = createAccessTokens({ keys, issuer: 'https://auth.example.com', audience: 'api' })
 * const { token } = await tokens.issue(user.id, session.id)
 * const result = await tokens.verify(token)
 * if (result.ok) console.log(result.claims.sub)
 * ```
 */
export function createAccessTokens(options: AccessTokenOptions): AccessTokens {
  const { keys, issuer, isSessionAlive } = options
  if (typeof issuer !== 'string' || issuer.length === 0) {
    throw new TesseraError('config_invalid', 'issuer must be a non-empty string')
  }
  const audience = audienceList(options.audience)
  const ttl = options.ttl ?? 900
  if (!Number.isInteger(ttl) || ttl <= 0) {
    throw new TesseraError('config_invalid', 'ttl must be a positive whole number of seconds')
  }
  const leeway = checkLeeway(options.leeway ?? 60)
  const now = options.now ?? Date.now
  const jwsOptions = { resolveKey: keys.verificationKey.bind(keys), typ: ACCESS_TOKEN_TYPE }
  const aud = audience.length === 1 ? (audience[0] as string) : [...audience]

  function verifySync(token: string): AccessTokenResult {
    const jws = verifyCompactJWS(token, jwsOptions)
    if (!jws.ok) return { ok: false, code: 'token_invalid', reason: jws.reason }
    const checked = checkClaims(jws.payload, { issuer, audience, leeway, now: now() })
    if (!checked.ok) return { ok: false, code: 'token_invalid', reason: checked.reason }
    const { claims } = checked
    if (
      typeof claims.sub !== 'string' ||
      typeof claims.sid !== 'string' ||
      typeof claims.jti !== 'string' ||
      typeof claims.iat !== 'number'
    ) {
      return { ok: false, code: 'token_invalid', reason: 'claims_invalid' }
    }
    return { ok: true, claims: claims as AccessTokenClaims }
  }

  return {
    ttl,
    async issue(subject, sid, issueOptions = {}): Promise<IssuedAccessToken> {
      if (typeof subject !== 'string' || subject.length === 0) {
        throw new TesseraError('invalid_argument', 'issue: subject must be a non-empty string')
      }
      if (typeof sid !== 'string' || sid.length === 0) {
        throw new TesseraError('invalid_argument', 'issue: sid must be a non-empty string')
      }
      await keys.refreshIfStale()
      const key = keys.signingKey()
      const extra: Record<string, unknown> = {}
      for (const [name, value] of Object.entries(issueOptions.claims ?? {})) {
        if (!RESERVED.has(name)) extra[name] = value
      }
      const iat = Math.floor(now() / 1000)
      const exp = iat + ttl
      const jti = randomBytes(16).toString('base64url')
      const token = await new SignJWT({ ...extra, sid })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: ACCESS_TOKEN_TYPE })
        .setIssuer(issuer)
        .setAudience(aud)
        .setSubject(subject)
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .setJti(jti)
        .sign(key.privateKey)
      return { token, expiresIn: ttl, jti, exp }
    },
    verifySync,
    async verify(token: string): Promise<AccessTokenResult> {
      let result = verifySync(token)
      if (!result.ok && result.reason === 'unknown_key') {
        // Another process may have rotated keys since this one loaded them: reload (at most
        // once per reload interval, from our own storage only) and try once more.
        await keys.refreshIfStale()
        result = verifySync(token)
      }
      if (!result.ok || isSessionAlive === undefined) return result
      // SECURITY: strict mode fails closed: a store error propagates (503), never a pass.
      const alive = await isSessionAlive(result.claims.sid)
      return alive ? result : { ok: false, code: 'token_invalid', reason: 'session_revoked' }
    },
  }
}
