/**
 * `tessera-auth/jwt`: verify tessera access tokens in another service (a resource server), from the
 * issuer's JWKS or from fixed keys, with the algorithm pinned to each key.
 *
 * @example
 * ```ts
 * import { createVerifier } from 'tessera-auth/jwt'
 * const verifier = createVerifier({ issuer, audience: 'api', jwksUrl })
 * const result = await verifier.verify(token)
 * ```
 */
export {
  createVerifier,
  maxCacheAge,
  type Verifier,
  type VerifierKey,
  type VerifierOptions,
  type VerifierResult,
} from './verifier.js'
export {
  checkClaims,
  pinKey,
  verifyCompactJWS,
  JWS_ALGORITHMS,
  MAX_LEEWAY,
  MAX_TOKEN_LENGTH,
  type ClaimRules,
  type JWSAlgorithm,
  type JWSHeader,
  type JWSResult,
  type JWSVerifyOptions,
  type JWTClaims,
  type PinnedKey,
  type TokenRejection,
} from './jws.js'
export { exportPublicJWK, importPublicJWK, thumbprint, type JWKS, type PublicJWK } from './jwk.js'
