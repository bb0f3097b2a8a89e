import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createAccessTokens } from '../../src/auth/access-tokens.js'
import {
  createKeySet,
  createMemoryKeyStorage,
  type KeySet,
  createKeyringSealer,
} from '../../src/auth/keys.js'
import { createVerifier, maxCacheAge } from '../../src/jwt/verifier.js'
import { signRaw } from '../helpers/jws.js'
import { testKeyring } from '../helpers/tokens.js'

const ISS = 'https://auth.test'
const AUD = 'api'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

const servers: Server[] = []
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
})

/** A real HTTP server on 127.0.0.1 counting requests. */
async function serve(handler: Handler): Promise<{ url: string; hits: () => number }> {
  let hits = 0
  const server = createServer((req, res) => {
    hits += 1
    handler(req, res)
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}/.well-known/jwks.json`, hits: () => hits }
}

function jwksHandler(keys: KeySet, cacheControl?: string): Handler {
  return (_req, res) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (cacheControl !== undefined) headers['cache-control'] = cacheControl
    res.writeHead(200, headers).end(JSON.stringify(keys.jwks()))
  }
}

async function issuer(now: () => number): Promise<{ keys: KeySet; issue: () => Promise<string> }> {
  const keys = createKeySet({
    storage: createMemoryKeyStorage(),
    sealer: createKeyringSealer(testKeyring()),
    now,
  })
  await keys.load()
  const tokens = createAccessTokens({ keys, issuer: ISS, audience: AUD, now })
  return { keys, issue: async () => (await tokens.issue('u', 's')).token }
}

describe('createVerifier with a JWKS URL', () => {
  it('fetches once, caches, and verifies tokens of the issuer', async () => {
    let now = 1_800_000_000_000
    const { keys, issue } = await issuer(() => now)
    const server = await serve(jwksHandler(keys))
    const verifier = createVerifier({
      issuer: ISS,
      audience: AUD,
      jwksUrl: server.url,
      now: () => now,
    })
    const token = await issue()
    const result = await verifier.verify(token)
    expect(result.ok && result.claims.sub).toBe('u')
    expect((await verifier.verify(token)).ok).toBe(true)
    expect(server.hits()).toBe(1)
    now += 1000
    expect(await verifier.verify(`${token}x`)).toMatchObject({ ok: false, code: 'token_invalid' })
    expect(server.hits()).toBe(1)
  })

  it('a rotated key: the new current was published as next, so no refetch; old tokens still verify', async () => {
    let now = 1_800_000_000_000
    const { keys, issue } = await issuer(() => now)
    const server = await serve(jwksHandler(keys))
    const verifier = createVerifier({
      issuer: ISS,
      audience: AUD,
      jwksUrl: server.url,
      now: () => now,
    })
    const before = await issue()
    expect((await verifier.verify(before)).ok).toBe(true)
    now += 30_000
    await keys.rotate()
    const after = await issue()
    expect((await verifier.verify(after)).ok).toBe(true)
    expect((await verifier.verify(before)).ok).toBe(true)
    expect(server.hits()).toBe(1)
  })

  it('an unknown kid refetches at most once per minute, however many tokens carry it', async () => {
    let now = 1_800_000_000_000
    const { keys, issue } = await issuer(() => now)
    const server = await serve(jwksHandler(keys))
    const verifier = createVerifier({
      issuer: ISS,
      audience: AUD,
      jwksUrl: server.url,
      now: () => now,
    })
    await verifier.verify(await issue())
    expect(server.hits()).toBe(1)
    // Two rotations: the signing key was never published to this verifier's cache.
    now += 1000
    await keys.rotate()
    await keys.rotate()
    const unseen = await issue()
    // The first unknown-kid token waits out the cooldown (it is 1 s since the first fetch).
    const results = await Promise.all(Array.from({ length: 20 }, () => verifier.verify(unseen)))
    expect(results.every((r) => !r.ok && r.reason === 'unknown_key')).toBe(true)
    expect(server.hits()).toBe(1)
    now += 60_000
    const later = await Promise.all(Array.from({ length: 20 }, () => verifier.verify(unseen)))
    expect(later.every((r) => r.ok)).toBe(true)
    expect(server.hits()).toBe(2)
    // Forged kids do not cause more fetches within the cooldown.
    now += 1000
    const { privateKey } = await import('node:crypto').then((c) => c.generateKeyPairSync('ed25519'))
    const t = Math.floor(now / 1000)
    for (let i = 0; i < 10; i += 1) {
      const forged = signRaw(
        { alg: 'EdDSA', kid: `random-${i}`, typ: 'at+jwt' },
        { iss: ISS, aud: AUD, sub: 'x', exp: t + 60 },
        'EdDSA',
        privateKey,
      )
      expect(await verifier.verify(forged)).toMatchObject({ ok: false, reason: 'unknown_key' })
    }
    expect(server.hits()).toBe(2)
  })

  it('respects Cache-Control max-age: no refetch before it ends, one after', async () => {
    let now = 1_800_000_000_000
    const { keys, issue } = await issuer(() => now)
    const server = await serve(jwksHandler(keys, 'public, max-age=300'))
    const verifier = createVerifier({
      issuer: ISS,
      audience: AUD,
      jwksUrl: server.url,
      now: () => now,
    })
    const token = await issue()
    await verifier.verify(token)
    now += 299_000
    await verifier.verify(token)
    expect(server.hits()).toBe(1)
    now += 1000
    expect((await verifier.verify(token)).ok).toBe(true)
    expect(server.hits()).toBe(2)
  })

  it('keeps the cached keys when a refresh fails (stale on error)', async () => {
    let now = 1_800_000_000_000
    const { keys, issue } = await issuer(() => now)
    let healthy = true
    const server = await serve((req, res) => {
      if (healthy) jwksHandler(keys, 'max-age=60')(req, res)
      else res.writeHead(500).end()
    })
    const verifier = createVerifier({
      issuer: ISS,
      audience: AUD,
      jwksUrl: server.url,
      now: () => now,
    })
    const token = await issue()
    expect((await verifier.verify(token)).ok).toBe(true)
    healthy = false
    now += 120_000
    expect((await verifier.verify(token)).ok).toBe(true)
    expect(server.hits()).toBe(2)
  })

  it('a server that never answers: bounded by the timeout, jwks_unavailable', async () => {
    const server = await serve(() => {
      /* never responds */
    })
    const verifier = createVerifier({
      issuer: ISS,
      audience: AUD,
      jwksUrl: server.url,
      timeout: 0.3,
    })
    expect(await verifier.verify('a.b.c')).toEqual({
      ok: false,
      code: 'jwks_unavailable',
      reason: 'jwks_unavailable',
    })
    // Without the timeout this call would hang until the test's own time limit.
  })

  it('a JWKS larger than maxJwksBytes is refused, declared or streamed', async () => {
    const big = JSON.stringify({ keys: [], pad: 'x'.repeat(5000) })
    for (const chunked of [false, true]) {
      const server = await serve((_req, res) => {
        if (chunked) {
          res.writeHead(200, { 'content-type': 'application/json' })
          res.write(big.slice(0, 2500))
          res.end(big.slice(2500))
        } else {
          res.writeHead(200, { 'content-length': String(big.length) }).end(big)
        }
      })
      const verifier = createVerifier({
        issuer: ISS,
        audience: AUD,
        jwksUrl: server.url,
        maxJwksBytes: 4096,
      })
      expect(await verifier.verify('a.b.c')).toMatchObject({ code: 'jwks_unavailable' })
    }
  })

  it('not JSON, HTTP errors and redirects give jwks_unavailable', async () => {
    const target = await serve((_req, res) => res.end('{"keys":[]}'))
    for (const handler of [
      ((_req, res) => res.end('<html>')) as Handler,
      ((_req, res) => res.writeHead(404).end()) as Handler,
      ((_req, res) => res.end('{"keys":"no"}')) as Handler,
      ((_req, res) => res.writeHead(302, { location: target.url }).end()) as Handler,
    ]) {
      const server = await serve(handler)
      const verifier = createVerifier({ issuer: ISS, audience: AUD, jwksUrl: server.url })
      expect(await verifier.verify('a.b.c')).toMatchObject({ code: 'jwks_unavailable' })
    }
    expect(target.hits()).toBe(0)
  })

  it('a symmetric key published in the JWKS is never used (no HS256 from a public set)', async () => {
    const secret = Buffer.alloc(32, 9)
    const server = await serve((_req, res) =>
      res.end(
        JSON.stringify({
          keys: [{ kty: 'oct', kid: 'hmac', alg: 'HS256', k: secret.toString('base64url') }],
        }),
      ),
    )
    const verifier = createVerifier({ issuer: ISS, audience: AUD, jwksUrl: server.url })
    const t = Math.floor(Date.now() / 1000)
    const token = signRaw(
      { alg: 'HS256', kid: 'hmac', typ: 'at+jwt' },
      { iss: ISS, aud: AUD, sub: 'admin', exp: t + 60 },
      'HS256',
      secret,
    )
    expect(await verifier.verify(token)).toMatchObject({ ok: false, reason: 'unknown_key' })
  })

  it('configuration is checked when the verifier is built', () => {
    expect(() => createVerifier({ issuer: ISS, audience: AUD })).toThrow(/exactly one/)
    expect(() =>
      createVerifier({ issuer: ISS, audience: AUD, jwksUrl: 'http://auth.example.com/jwks' }),
    ).toThrow(/https/)
    expect(() => createVerifier({ issuer: '', audience: AUD, jwksUrl: 'https://a/jwks' })).toThrow(
      /issuer/,
    )
    expect(() =>
      createVerifier({ issuer: ISS, audience: AUD, keys: [{ kty: 'oct', kid: 'x', k: 'AAAA' }] }),
    ).toThrow(/usable/)
  })
})

describe('maxCacheAge', () => {
  it('reads max-age and treats no-store/no-cache as 0', () => {
    expect(maxCacheAge(null)).toBeNull()
    expect(maxCacheAge('public, max-age=600')).toBe(600)
    expect(maxCacheAge('no-store')).toBe(0)
    expect(maxCacheAge('max-age=600, no-cache')).toBe(0)
    expect(maxCacheAge('max-age=abc')).toBeNull()
  })
})
