import { createSecretKey, type KeyObject } from 'node:crypto'
import { TesseraError } from '../core/errors.js'
import { importPublicJWK, type JWKS, type PublicJWK } from './jwk.js'
import {
  audienceList,
  checkClaims,
  checkLeeway,
  pinKey,
  verifyCompactJWS,
  type JWSAlgorithm,
  type JWSHeader,
  type JWTClaims,
  type PinnedKey,
  type TokenRejection,
} from './jws.js'

/** A key given to {@link createVerifier} directly instead of a JWKS URL. */
export type VerifierKey =
  | PublicJWK
  | { kid: string; alg: JWSAlgorithm; key: KeyObject }
  | { kid: string; alg: 'HS256'; secret: Uint8Array }

/** Options of {@link createVerifier}. Give exactly one of `jwksUrl` and `keys`. */
export interface VerifierOptions {
  /** The only accepted `iss`. */
  issuer: string
  /** Accepted audience(s): one must appear in the token's `aud`. */
  audience: string | readonly string[]
  /** Where the issuer publishes its keys, e.g. `https://auth.example.com/.well-known/jwks.json`. */
  jwksUrl?: string | URL
  /** Fixed keys (public JWKs, KeyObjects, or an HS256 secret). */
  keys?: readonly VerifierKey[]
  /** Required `typ` header, or `null` for none. @default 'at+jwt' */
  typ?: string | null
  /** Clock skew allowance in seconds, at most 60. @default 60 */
  leeway?: number
  /** Bound on one JWKS fetch (connect, headers and body), in seconds. @default 5 */
  timeout?: number
  /** Largest JWKS body accepted, in bytes. @default 65536 */
  maxJwksBytes?: number
  /** Least time between two fetches, whatever the reason, in seconds. @default 60 */
  cooldown?: number
  /** Cache lifetime when the response has no `Cache-Control: max-age`, in seconds. @default 600 */
  defaultCacheTtl?: number
  /** Upper bound on a `max-age`, in seconds. @default 86400 */
  maxCacheTtl?: number
  /** Allow a plain-http JWKS URL on a host other than loopback. @default false */
  allowInsecureHttp?: boolean
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number
}

/** The outcome of {@link Verifier.verify}: never an exception for a bad token. */
export type VerifierResult =
  | { ok: true; claims: JWTClaims; header: JWSHeader }
  | { ok: false; code: 'token_invalid'; reason: TokenRejection }
  | { ok: false; code: 'jwks_unavailable'; reason: 'jwks_unavailable' }

/** Verifies tokens of one issuer for a resource server. */
export interface Verifier {
  verify(token: string): Promise<VerifierResult>
  /** Fetches the JWKS now (respecting the cooldown). Resolves false when no fetch succeeded. */
  refresh(): Promise<boolean>
}

interface KeyCache {
  keys: Map<string, PinnedKey>
  expiresAt: number
}

/**
 * Creates a verifier for tokens issued by tessera (or any issuer publishing a JWKS). Keys come
 * only from the configured URL or list, never from a token's header; the algorithm is the key's.
 *
 * @throws TesseraError `config_invalid` for a missing issuer or audience, both or neither of
 * `jwksUrl` and `keys`, an unusable key, a non-https URL, or a leeway over 60 s
 * @example
 * ```ts
 * import { createVerifier } from 'tessera-auth/jwt'
 * const verifier = createVerifier({
 *   issuer: 'https://auth.example.com',
 *   audience: 'orders-api',
 *   jwksUrl: 'https://auth.example.com/.well-known/jwks.json',
 * })
 * const result = await verifier.verify(bearerToken)
 * if (!result.ok) return res.status(401).end()
 * ```
 */
export function createVerifier(options: VerifierOptions): Verifier {
  const { issuer } = options
  if (typeof issuer !== 'string' || issuer.length === 0) {
    throw new TesseraError('config_invalid', 'issuer must be a non-empty string')
  }
  const audience = audienceList(options.audience)
  if ((options.jwksUrl === undefined) === (options.keys === undefined)) {
    throw new TesseraError('config_invalid', 'give exactly one of jwksUrl and keys')
  }
  const leeway = checkLeeway(options.leeway ?? 60)
  const typ = options.typ === undefined ? 'at+jwt' : options.typ
  const now = options.now ?? Date.now

  const staticKeys = options.keys === undefined ? null : buildStaticKeys(options.keys)
  const remote = options.jwksUrl === undefined ? null : createJwksSource(options, now)

  function check(token: string, keys: Map<string, PinnedKey>): VerifierResult {
    const jws = verifyCompactJWS(token, {
      resolveKey: (kid) => (kid === undefined ? undefined : keys.get(kid)),
      typ,
    })
    if (!jws.ok) return { ok: false, code: 'token_invalid', reason: jws.reason }
    const checked = checkClaims(jws.payload, { issuer, audience, leeway, now: now() })
    if (!checked.ok) return { ok: false, code: 'token_invalid', reason: checked.reason }
    return { ok: true, claims: checked.claims, header: jws.header }
  }

  return {
    async verify(token: string): Promise<VerifierResult> {
      if (staticKeys !== null) return check(token, staticKeys)
      const source = remote as JwksSource
      await source.ensureFresh()
      const keys = source.keys()
      if (keys === null) return { ok: false, code: 'jwks_unavailable', reason: 'jwks_unavailable' }
      const first = check(token, keys)
      if (first.ok || first.reason !== 'unknown_key') return first
      // An unknown kid may be a key published since the last fetch: fetch again, at most once
      // per cooldown, however many such tokens arrive.
      if (!(await source.refetch())) return first
      return check(token, source.keys() ?? keys)
    },
    async refresh(): Promise<boolean> {
      return remote === null ? true : remote.refetch()
    },
  }
}

function buildStaticKeys(keys: readonly VerifierKey[]): Map<string, PinnedKey> {
  const map = new Map<string, PinnedKey>()
  for (const entry of keys) {
    let pinned: PinnedKey | null
    if ('secret' in entry) {
      const { kid, secret } = entry as { kid: string; secret: Uint8Array }
      pinned = pinKey(kid, 'HS256', createSecretKey(secret))
    } else if ('key' in entry && typeof entry.key === 'object') {
      const { kid, alg, key } = entry as { kid: string; alg: JWSAlgorithm; key: KeyObject }
      pinned = pinKey(kid, alg, key)
    } else {
      pinned = importPublicJWK(entry)
    }
    if (pinned === null) {
      throw new TesseraError(
        'config_invalid',
        'keys: an entry is not a usable public signature key',
      )
    }
    map.set(pinned.kid, pinned)
  }
  if (map.size === 0) throw new TesseraError('config_invalid', 'keys must not be empty')
  return map
}

interface JwksSource {
  keys(): Map<string, PinnedKey> | null
  ensureFresh(): Promise<void>
  refetch(): Promise<boolean>
}

function createJwksSource(options: VerifierOptions, now: () => number): JwksSource {
  let url: URL
  try {
    url = new URL(String(options.jwksUrl))
  } catch (cause) {
    throw new TesseraError('config_invalid', 'jwksUrl must be an absolute URL', { cause })
  }
  const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname)
  if (
    url.protocol !== 'https:' &&
    !(url.protocol === 'http:' && (loopback || options.allowInsecureHttp))
  ) {
    throw new TesseraError('config_invalid', 'jwksUrl must use https (http only on loopback)')
  }
  const timeoutMs = (options.timeout ?? 5) * 1000
  const maxBytes = options.maxJwksBytes ?? 65536
  const cooldownMs = (options.cooldown ?? 60) * 1000
  const defaultTtl = options.defaultCacheTtl ?? 600
  const maxTtl = options.maxCacheTtl ?? 86400

  let cache: KeyCache | null = null
  let lastAttempt = -Infinity
  let inflight: Promise<boolean> | null = null

  async function fetchOnce(): Promise<boolean> {
    lastAttempt = now()
    try {
      // SECURITY: bounded in time and size, no redirects, and only ever the configured URL:
      // nothing in a token decides what is fetched (RFC 8725 3.10).
      const response = await fetch(url, {
        redirect: 'error',
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(timeoutMs),
      })
      if (!response.ok) {
        await response.body?.cancel()
        return false
      }
      const text = await readBounded(response, maxBytes)
      if (text === null) return false
      const parsed = JSON.parse(text) as unknown
      const entries = (parsed as Partial<JWKS> | null)?.keys
      if (!Array.isArray(entries)) return false
      const keys = new Map<string, PinnedKey>()
      for (const entry of entries) {
        const pinned = importPublicJWK(entry)
        if (pinned !== null && !keys.has(pinned.kid)) keys.set(pinned.kid, pinned)
      }
      const ttl = Math.min(maxCacheAge(response.headers.get('cache-control')) ?? defaultTtl, maxTtl)
      cache = { keys, expiresAt: now() + ttl * 1000 }
      return true
    } catch {
      return false
    }
  }

  function refetch(): Promise<boolean> {
    if (inflight !== null) return inflight
    if (now() - lastAttempt < cooldownMs) return Promise.resolve(false)
    inflight = fetchOnce().finally(() => {
      inflight = null
    })
    return inflight
  }

  return {
    keys: () => cache?.keys ?? null,
    async ensureFresh(): Promise<void> {
      if (cache === null) {
        // First use: wait for the in-flight fetch, or start one unless one just failed.
        await (inflight ?? refetch())
        return
      }
      // Stale keys stay in use when a refresh fails, until a fetch succeeds.
      if (now() >= cache.expiresAt) await refetch()
    },
    refetch,
  }
}

async function readBounded(response: Response, maxBytes: number): Promise<string | null> {
  const declared = Number(response.headers.get('content-length') ?? NaN)
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel()
    return null
  }
  if (response.body === null) return null
  const reader = response.body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = (await reader.read()) as { done: boolean; value?: Uint8Array }
    if (done || value === undefined) break
    total += value.byteLength
    if (total > maxBytes) {
      await reader.cancel()
      return null
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** `max-age` of a Cache-Control header in seconds; `0` for `no-store`/`no-cache`. */
export function maxCacheAge(header: string | null): number | null {
  if (header === null) return null
  let result: number | null = null
  for (const part of header.toLowerCase().split(',')) {
    const directive = part.trim()
    if (directive === 'no-store' || directive === 'no-cache') return 0
    const match = /^max-age\s*=\s*"?(\d{1,10})"?$/.exec(directive)
    if (match) result = Number(match[1])
  }
  return result
}
