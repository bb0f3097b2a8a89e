import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import { pinKey, type JWSAlgorithm, type PinnedKey } from './jws.js'

/** A public JSON Web Key as published in a JWKS. */
export interface PublicJWK {
  kty: string
  kid?: string
  alg?: string
  use?: string
  crv?: string
  x?: string
  y?: string
  n?: string
  e?: string
  [name: string]: unknown
}

/** A JSON Web Key Set (RFC 7517 section 5). */
export interface JWKS {
  keys: PublicJWK[]
}

/** The algorithm a public key is used with, from its type and curve. */
export function algorithmOf(key: KeyObject): Exclude<JWSAlgorithm, 'HS256'> | null {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA'
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    return 'ES256'
  }
  if (key.asymmetricKeyType === 'rsa') return 'RS256'
  return null
}

/** The public members of a key as a JWK (no private parts), with `kid`, `alg` and `use`. */
export function exportPublicJWK(kid: string, alg: JWSAlgorithm, key: KeyObject): PublicJWK {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key
  const jwk = publicKey.export({ format: 'jwk' })
  const members: PublicJWK = { kty: String(jwk.kty) }
  for (const name of ['crv', 'x', 'y', 'n', 'e'] as const) {
    const value = jwk[name]
    if (typeof value === 'string') members[name] = value
  }
  return { ...members, kid, alg, use: 'sig' }
}

/** RFC 7638 JWK thumbprint (SHA-256, base64url) of a public key: a stable key id. */
export function thumbprint(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key
  const jwk = publicKey.export({ format: 'jwk' })
  // Required members only, in lexicographic order, no whitespace (RFC 7638 section 3).
  const required: Record<string, string[]> = {
    OKP: ['crv', 'kty', 'x'],
    EC: ['crv', 'kty', 'x', 'y'],
    RSA: ['e', 'kty', 'n'],
  }
  const names = required[String(jwk.kty)] ?? []
  const canonical = `{${names.map((name) => `"${name}":${JSON.stringify(jwk[name as keyof JsonWebKey])}`).join(',')}}`
  return createHash('sha256').update(canonical).digest('base64url')
}

/**
 * Imports one public JWK from a JWKS as a pinned key, or `null` when it is not a usable
 * signature key: symmetric (`oct`) keys, keys for encryption, unknown algorithms, RSA under
 * 2048 bits and keys whose `alg` contradicts their type are all skipped.
 */
export function importPublicJWK(jwk: unknown): PinnedKey | null {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return null
  const entry = jwk as PublicJWK
  if (typeof entry.kid !== 'string' || entry.kid.length === 0) return null
  if (entry.use !== undefined && entry.use !== 'sig') return null
  // SECURITY: a JWKS is public; a symmetric key in it is never used, so a published key can
  // never become an HMAC secret (RFC 8725 3.1).
  if (entry.kty !== 'OKP' && entry.kty !== 'EC' && entry.kty !== 'RSA') return null
  const members: JsonWebKey = { kty: entry.kty }
  for (const name of ['crv', 'x', 'y', 'n', 'e'] as const) {
    const value = entry[name]
    if (typeof value === 'string') members[name] = value
  }
  let key: KeyObject
  try {
    key = createPublicKey({ key: members, format: 'jwk' })
  } catch {
    return null
  }
  const alg = algorithmOf(key)
  if (alg === null) return null
  if (entry.alg !== undefined && entry.alg !== alg) return null
  try {
    return pinKey(entry.kid, alg, key)
  } catch {
    return null
  }
}
