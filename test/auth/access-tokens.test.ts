import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import { describe, expect, it } from 'vitest'
import { createAccessTokens } from '../../src/auth/access-tokens.js'
import {
  createHMACKeySet,
  createKeySet,
  createMemoryKeyStorage,
  type AsymmetricAlgorithm,
  type KeySet,
  createKeyringSealer,
} from '../../src/auth/keys.js'
import { createVerifier } from '../../src/jwt/verifier.js'
import { testKeyring } from '../helpers/tokens.js'

const ISS = 'https://auth.test'
const AUD = 'api'
const START = 1_800_000_000_000

async function keySet(
  options: { now?: () => number; algorithm?: AsymmetricAlgorithm } = {},
): Promise<KeySet> {
  const keys = createKeySet({
    storage: createMemoryKeyStorage(),
    sealer: createKeyringSealer(testKeyring()),
    ...options,
  })
  await keys.load()
  return keys
}

describe('createAccessTokens', () => {
  it('issues a JWT with the claims and header of the contract', async () => {
    const keys = await keySet()
    const tokens = createAccessTokens({ keys, issuer: ISS, audience: AUD, now: () => START })
    const issued = await tokens.issue('user-1', 'session-1', {
      claims: { scope: 'read', sub: 'x', exp: 1 },
    })
    expect(issued.expiresIn).toBe(900)
    expect(decodeProtectedHeader(issued.token)).toEqual({
      alg: 'EdDSA',
      kid: keys.signingKey().kid,
      typ: 'at+jwt',
    })
    const result = await tokens.verify(issued.token)
    expect(result).toEqual({
      ok: true,
      claims: {
        iss: ISS,
        aud: AUD,
        sub: 'user-1',
        sid: 'session-1',
        iat: START / 1000,
        exp: START / 1000 + 900,
        jti: issued.jti,
        scope: 'read',
      },
    })
  })

  it('tokens verify with jose jwtVerify against the published JWKS (interoperability)', async () => {
    const keys = await keySet()
    const tokens = createAccessTokens({ keys, issuer: ISS, audience: AUD })
    const { token } = await tokens.issue('u', 's')
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(keys.jwks()), {
      issuer: ISS,
      audience: AUD,
      typ: 'at+jwt',
      algorithms: ['EdDSA'],
    })
    expect(payload.sub).toBe('u')
    expect(protectedHeader.kid).toBe(keys.signingKey().kid)
  })

  it('ES256 and RS256 tokens verify, locally and through tessera-auth/jwt with the JWKS', async () => {
    for (const algorithm of ['ES256', 'RS256'] as const) {
      const keys = await keySet({ algorithm })
      const tokens = createAccessTokens({ keys, issuer: ISS, audience: AUD })
      const { token } = await tokens.issue('u', 's')
      expect((await tokens.verify(token)).ok).toBe(true)
      const verifier = createVerifier({ issuer: ISS, audience: AUD, keys: keys.jwks().keys })
      expect((await verifier.verify(token)).ok).toBe(true)
    }
  })

  it('expires at exp + leeway (inclusive), with the default 15 minutes', async () => {
    let now = START
    const keys = await keySet({ now: () => now })
    const tokens = createAccessTokens({ keys, issuer: ISS, audience: AUD, now: () => now })
    const { token } = await tokens.issue('u', 's')
    now = START + (900 + 60) * 1000 - 1
    expect((await tokens.verify(token)).ok).toBe(true)
    now = START + (900 + 60) * 1000
    expect(await tokens.verify(token)).toEqual({
      ok: false,
      code: 'token_invalid',
      reason: 'expired',
    })
  })

  it('refuses another issuer or audience, and a leeway over 60 s', async () => {
    const keys = await keySet()
    const tokens = createAccessTokens({ keys, issuer: ISS, audience: AUD })
    const { token } = await tokens.issue('u', 's')
    const otherIssuer = createAccessTokens({ keys, issuer: 'https://other', audience: AUD })
    const otherAudience = createAccessTokens({ keys, issuer: ISS, audience: 'billing' })
    expect(otherIssuer.verifySync(token)).toMatchObject({ ok: false, reason: 'issuer_mismatch' })
    expect(otherAudience.verifySync(token)).toMatchObject({
      ok: false,
      reason: 'audience_mismatch',
    })
    expect(() => createAccessTokens({ keys, issuer: ISS, audience: AUD, leeway: 120 })).toThrow(
      /leeway/,
    )
    expect(() => createAccessTokens({ keys, issuer: '', audience: AUD })).toThrow(/issuer/)
    expect(() => createAccessTokens({ keys, issuer: ISS, audience: [] })).toThrow(/audience/)
  })

  it('a token of a rotated key verifies until its key is retired, then no longer', async () => {
    let now = START
    const keys = await keySet({ now: () => now })
    const tokens = createAccessTokens({
      keys,
      issuer: ISS,
      audience: AUD,
      now: () => now,
      leeway: 0,
    })
    const { token } = await tokens.issue('u', 's')
    const oldKid = keys.signingKey().kid
    now += 60_000
    await keys.rotate()
    expect(keys.signingKey().kid).not.toBe(oldKid)
    expect((await tokens.verify(token)).ok).toBe(true)
    const fresh = await tokens.issue('u', 's')
    expect(decodeProtectedHeader(fresh.token).kid).toBe(keys.signingKey().kid)

    // The default retention (960 s) outlives the token (900 s): it expires first.
    now += 839_000
    expect((await tokens.verify(token)).ok).toBe(true)
    now += 960_000
    await keys.rotate()
    expect(keys.verificationKey(oldKid)).toBeUndefined()
    expect(await tokens.verify(token)).toMatchObject({ ok: false, reason: 'unknown_key' })
  })

  it('strict mode rejects a token whose session is gone, and fails closed on errors', async () => {
    const keys = await keySet()
    const alive = new Set(['s1'])
    const tokens = createAccessTokens({
      keys,
      issuer: ISS,
      audience: AUD,
      isSessionAlive: (sid) => {
        if (sid === 'boom') return Promise.reject(new Error('store down'))
        return Promise.resolve(alive.has(sid))
      },
    })
    const { token } = await tokens.issue('u', 's1')
    expect((await tokens.verify(token)).ok).toBe(true)
    alive.delete('s1')
    expect(await tokens.verify(token)).toEqual({
      ok: false,
      code: 'token_invalid',
      reason: 'session_revoked',
    })
    // verifySync is the signature-and-claims check only.
    expect(tokens.verifySync(token).ok).toBe(true)
    const broken = await tokens.issue('u', 'boom')
    await expect(tokens.verify(broken.token)).rejects.toThrow('store down')
  })

  it('HS256 from the keyring: verifies here, not under another secret, nothing published', async () => {
    const keys = createHMACKeySet(testKeyring())
    const tokens = createAccessTokens({ keys, issuer: ISS, audience: AUD })
    const { token } = await tokens.issue('u', 's')
    expect(decodeProtectedHeader(token).alg).toBe('HS256')
    expect((await tokens.verify(token)).ok).toBe(true)
    const stranger = createAccessTokens({
      keys: createHMACKeySet(testKeyring()),
      issuer: ISS,
      audience: AUD,
    })
    expect((await stranger.verify(token)).ok).toBe(false)
    expect(keys.jwks().keys).toHaveLength(0)
  })

  it('an HS256 token whose kid names an Ed25519 key is refused (algorithm confusion)', async () => {
    const keys = await keySet()
    const tokens = createAccessTokens({ keys, issuer: ISS, audience: AUD })
    const hmacKeys = createHMACKeySet(testKeyring())
    const forgedKeys: KeySet = {
      ...hmacKeys,
      signingKey: () => ({ ...hmacKeys.signingKey(), kid: keys.signingKey().kid }),
    }
    const forger = createAccessTokens({ keys: forgedKeys, issuer: ISS, audience: AUD })
    const { token } = await forger.issue('admin', 's')
    expect(await tokens.verify(token)).toMatchObject({ ok: false, reason: 'algorithm_mismatch' })
  })
})

describe('several processes over one key storage', () => {
  it('a process picks up keys rotated by another when it meets their kid (after the reload interval)', async () => {
    let now = START
    const storage = createMemoryKeyStorage()
    const keyring = testKeyring()
    const options = { storage, sealer: createKeyringSealer(keyring), now: () => now }
    const a = createKeySet(options)
    const b = createKeySet(options)
    await a.load()
    await b.load()
    const issuerA = createAccessTokens({ keys: a, issuer: ISS, audience: AUD, now: () => now })
    const verifierB = createAccessTokens({ keys: b, issuer: ISS, audience: AUD, now: () => now })
    await a.rotate()
    await a.rotate()
    const { token } = await issuerA.issue('u', 's')
    // Within the reload interval B does not hit storage again: unknown for now.
    expect(await verifierB.verify(token)).toMatchObject({ ok: false, reason: 'unknown_key' })
    now += 60_000
    expect((await verifierB.verify(token)).ok).toBe(true)
  })
})
