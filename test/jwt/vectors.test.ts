import { CompactSign } from 'jose'
import { createPrivateKey, createPublicKey, createSecretKey, sign } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { thumbprint } from '../../src/jwt/jwk.js'
import { checkClaims, pinKey, verifyCompactJWS, type PinnedKey } from '../../src/jwt/jws.js'
import {
  RFC7515_A1,
  RFC7515_A2,
  RFC7515_A3,
  RFC7515_A5,
  RFC7515_EXP,
  RFC8037,
} from '../vectors/jose-rfc.js'

// The vectors carry no kid, no typ and no aud: the verifier's key lookup returns the one key for
// a missing kid, `typ` is not required and the audience is not checked. Everything else (the
// pinned algorithm, the signature, `exp` with leeway, `iss`) is the verifier's own code.
function only(key: PinnedKey): (kid: string | undefined) => PinnedKey | undefined {
  return (kid) => (kid === undefined ? key : undefined)
}

function claimsAt(payload: Buffer, now: number): ReturnType<typeof checkClaims> {
  return checkClaims(payload, { issuer: 'joe', audience: null, leeway: 60, now })
}

describe('RFC 7515 Appendix A through the verifier', () => {
  const cases = [
    [
      'A.1 HS256',
      RFC7515_A1.jws,
      pinKey('a1', 'HS256', createSecretKey(Buffer.from(RFC7515_A1.key.k, 'base64url'))),
      'JWT',
    ],
    [
      'A.2 RS256',
      RFC7515_A2.jws,
      pinKey('a2', 'RS256', createPublicKey({ key: RFC7515_A2.key, format: 'jwk' })),
      null,
    ],
    [
      'A.3 ES256',
      RFC7515_A3.jws,
      pinKey('a3', 'ES256', createPublicKey({ key: RFC7515_A3.key, format: 'jwk' })),
      null,
    ],
  ] as const

  for (const [name, jws, key, typ] of cases) {
    it(`${name} verifies and its claims pass at exp - 1 s`, () => {
      const result = verifyCompactJWS(jws, { resolveKey: only(key), typ })
      expect(result.ok).toBe(true)
      if (!result.ok) return
      const checked = claimsAt(result.payload, (RFC7515_EXP - 1) * 1000)
      expect(checked).toEqual({
        ok: true,
        claims: { iss: 'joe', exp: RFC7515_EXP, 'http://example.com/is_root': true },
      })
    })

    it(`${name} is expired from exp + 60 s on, valid 1 ms before`, () => {
      const result = verifyCompactJWS(jws, { resolveKey: only(key), typ })
      if (!result.ok) throw new Error('vector did not verify')
      expect(claimsAt(result.payload, (RFC7515_EXP + 60) * 1000 - 1).ok).toBe(true)
      expect(claimsAt(result.payload, (RFC7515_EXP + 60) * 1000)).toEqual({
        ok: false,
        reason: 'expired',
      })
    })

    it(`${name} with one flipped signature bit is refused`, () => {
      const dot = jws.lastIndexOf('.')
      const signature = Buffer.from(jws.slice(dot + 1), 'base64url')
      signature[5] = (signature[5] as number) ^ 0x01
      const forged = `${jws.slice(0, dot)}.${signature.toString('base64url')}`
      expect(verifyCompactJWS(forged, { resolveKey: only(key), typ })).toEqual({
        ok: false,
        reason: 'bad_signature',
      })
    })

    it(`${name} is refused with a wrong issuer`, () => {
      const result = verifyCompactJWS(jws, { resolveKey: only(key), typ })
      if (!result.ok) throw new Error('vector did not verify')
      const checked = checkClaims(result.payload, {
        issuer: 'not-joe',
        audience: null,
        leeway: 60,
        now: RFC7515_EXP * 1000,
      })
      expect(checked).toEqual({ ok: false, reason: 'issuer_mismatch' })
    })
  }

  it('A.5 (alg none) never verifies, whatever key is configured', () => {
    for (const [, , key] of cases) {
      expect(verifyCompactJWS(RFC7515_A5.jws, { resolveKey: only(key), typ: null }).ok).toBe(false)
    }
  })
})

describe('RFC 8037 Appendix A (Ed25519)', () => {
  const publicKey = createPublicKey({ key: RFC8037.publicKey, format: 'jwk' })
  const key = pinKey('rfc8037', 'EdDSA', publicKey)

  it('A.3: our key id (RFC 7638 thumbprint) of the A.1 key is the RFC value', () => {
    expect(thumbprint(publicKey)).toBe(RFC8037.thumbprint)
  })

  it('A.4: signing the payload gives the RFC signature, with node:crypto and with jose', async () => {
    const privateKey = createPrivateKey({ key: RFC8037.privateKey, format: 'jwk' })
    const input = RFC8037.jws.slice(0, RFC8037.jws.lastIndexOf('.'))
    const signature = sign(null, Buffer.from(input), privateKey).toString('base64url')
    expect(`${input}.${signature}`).toBe(RFC8037.jws)
    const viaJose = await new CompactSign(new TextEncoder().encode(RFC8037.payload))
      .setProtectedHeader({ alg: 'EdDSA' })
      .sign(privateKey)
    expect(viaJose).toBe(RFC8037.jws)
  })

  it('A.5: the verifier accepts the RFC JWS and returns its payload', () => {
    const result = verifyCompactJWS(RFC8037.jws, { resolveKey: only(key), typ: null })
    expect(result.ok).toBe(true)
    if (result.ok) expect(result.payload.toString('utf8')).toBe(RFC8037.payload)
  })

  it('A.5 with any single signature bit flipped is refused', () => {
    const dot = RFC8037.jws.lastIndexOf('.')
    const original = Buffer.from(RFC8037.jws.slice(dot + 1), 'base64url')
    for (let bit = 0; bit < original.length * 8; bit += 1) {
      const signature = Buffer.from(original)
      signature[bit >> 3] = (signature[bit >> 3] as number) ^ (1 << (bit & 7))
      const forged = `${RFC8037.jws.slice(0, dot)}.${signature.toString('base64url')}`
      expect(verifyCompactJWS(forged, { resolveKey: only(key), typ: null }).ok).toBe(false)
    }
  })

  it('A.5 is refused under an HS256 key made from the public key bytes', () => {
    const confused = pinKey('x', 'HS256', createSecretKey(Buffer.alloc(32, 7)))
    expect(verifyCompactJWS(RFC8037.jws, { resolveKey: only(confused), typ: null })).toEqual({
      ok: false,
      reason: 'algorithm_mismatch',
    })
  })
})
