import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { exportPublicJWK } from '../../src/jwt/jwk.js'
import { createVerifier, type Verifier } from '../../src/jwt/verifier.js'
import { b64, signRaw } from '../helpers/jws.js'
import { RFC7515_A2 } from '../vectors/jose-rfc.js'

const ISS = 'https://auth.test'
const AUD = 'api'
const NOW = 1_800_000_000_000
const T = NOW / 1000

interface Fixture {
  verifier: Verifier
  privateKey: KeyObject
  publicKey: KeyObject
  header: Record<string, unknown>
  claims: Record<string, unknown>
  sign: (header?: object, claims?: object) => string
}

function fixture(options: { now?: () => number } = {}): Fixture {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const verifier = createVerifier({
    issuer: ISS,
    audience: AUD,
    keys: [exportPublicJWK('k1', 'EdDSA', publicKey)],
    now: options.now ?? (() => NOW),
  })
  const header = { alg: 'EdDSA', kid: 'k1', typ: 'at+jwt' }
  const claims = { iss: ISS, aud: AUD, sub: 'u1', sid: 's1', iat: T, exp: T + 900, jti: 'j1' }
  return {
    verifier,
    privateKey,
    publicKey,
    header,
    claims,
    sign: (h = header, c = claims) => signRaw(h, c, 'EdDSA', privateKey),
  }
}

async function reason(verifier: Verifier, token: string): Promise<string> {
  const result = await verifier.verify(token)
  return result.ok ? 'accepted' : result.reason
}

describe('a well-formed token', () => {
  it('is accepted (so every refusal below is caused by the trick it tests)', async () => {
    const f = fixture()
    const result = await f.verifier.verify(f.sign())
    expect(result.ok).toBe(true)
    if (result.ok) expect(result.claims.sub).toBe('u1')
  })
})

describe('header tricks', () => {
  it('alg none in any spelling, with or without a signature, is refused', async () => {
    const f = fixture()
    for (const alg of ['none', 'None', 'NONE', 'nOnE', 'none ', '']) {
      const unsigned = `${b64({ ...f.header, alg })}.${b64(f.claims)}.`
      expect(await reason(f.verifier, unsigned)).not.toBe('accepted')
      const withSig = `${b64({ ...f.header, alg })}.${b64(f.claims)}.${f.sign().split('.')[2]}`
      expect(await reason(f.verifier, withSig)).not.toBe('accepted')
    }
  })

  it('HS256 signed with the public key (PEM, DER, JWK, raw) is refused', async () => {
    const f = fixture()
    const secrets = [
      Buffer.from(f.publicKey.export({ format: 'pem', type: 'spki' }) as string),
      f.publicKey.export({ format: 'der', type: 'spki' }),
      Buffer.from(JSON.stringify(f.publicKey.export({ format: 'jwk' }))),
      Buffer.from(String(f.publicKey.export({ format: 'jwk' }).x), 'base64url'),
    ]
    for (const secret of secrets) {
      const token = signRaw({ ...f.header, alg: 'HS256' }, f.claims, 'HS256', secret)
      expect(await reason(f.verifier, token)).toBe('algorithm_mismatch')
    }
  })

  it('HS256 signed with an RS256 public key (RFC 7515 A.2 key) is refused', async () => {
    const publicKey = createPublicKey({ key: RFC7515_A2.key, format: 'jwk' })
    const verifier = createVerifier({
      issuer: ISS,
      audience: AUD,
      keys: [{ ...RFC7515_A2.key, kid: 'rsa' }],
      now: () => NOW,
    })
    const claims = { iss: ISS, aud: AUD, sub: 'u', iat: T, exp: T + 60 }
    const pem = Buffer.from(publicKey.export({ format: 'pem', type: 'spki' }) as string)
    const token = signRaw({ alg: 'HS256', kid: 'rsa', typ: 'at+jwt' }, claims, 'HS256', pem)
    expect(await reason(verifier, token)).toBe('algorithm_mismatch')
  })

  it('a token naming another asymmetric algorithm (ES256, RS256) for an Ed25519 kid is refused', async () => {
    const f = fixture()
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    const token = signRaw({ ...f.header, alg: 'ES256' }, f.claims, 'ES256', ec.privateKey)
    expect(await reason(f.verifier, token)).toBe('algorithm_mismatch')
  })

  it('an embedded jwk (the attacker key) is refused, with or without a kid', async () => {
    const f = fixture()
    const attacker = generateKeyPairSync('ed25519')
    const jwk = attacker.publicKey.export({ format: 'jwk' })
    for (const header of [
      { ...f.header, jwk },
      { alg: 'EdDSA', typ: 'at+jwt', jwk },
    ]) {
      const token = signRaw(header, f.claims, 'EdDSA', attacker.privateKey)
      expect(await reason(f.verifier, token)).toBe('header_rejected')
    }
    // Even signed with the right key, a header carrying jwk is refused.
    expect(await reason(f.verifier, f.sign({ ...f.header, jwk }))).toBe('header_rejected')
  })

  describe('jku and x5u are refused and never fetched', () => {
    let server: Server | undefined
    afterEach(async () => {
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
      server = undefined
    })

    it('no request reaches the URL the header names', async () => {
      let hits = 0
      server = createServer((_req, res) => {
        hits += 1
        res.end('{"keys":[]}')
      })
      await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`
      const f = fixture()
      const attacker = generateKeyPairSync('ed25519')
      for (const name of ['jku', 'x5u']) {
        const forged = signRaw({ ...f.header, [name]: url }, f.claims, 'EdDSA', attacker.privateKey)
        expect(await reason(f.verifier, forged)).toBe('header_rejected')
        expect(await reason(f.verifier, f.sign({ ...f.header, [name]: url }))).toBe(
          'header_rejected',
        )
      }
      expect(await reason(f.verifier, f.sign({ ...f.header, x5c: ['MIIB'] }))).toBe(
        'header_rejected',
      )
      expect(hits).toBe(0)
    })
  })

  it('an unknown crit, or b64, is refused', async () => {
    const f = fixture()
    expect(await reason(f.verifier, f.sign({ ...f.header, crit: ['exp'], exp: 1 }))).toBe(
      'header_rejected',
    )
    expect(await reason(f.verifier, f.sign({ ...f.header, crit: ['b64'], b64: false }))).toBe(
      'header_rejected',
    )
    expect(await reason(f.verifier, f.sign({ ...f.header, crit: [] }))).toBe('header_rejected')
  })

  it('an unknown kid or a missing kid finds no key', async () => {
    const f = fixture()
    expect(await reason(f.verifier, f.sign({ ...f.header, kid: 'k2' }))).toBe('unknown_key')
    expect(await reason(f.verifier, f.sign({ alg: 'EdDSA', typ: 'at+jwt' }))).toBe('unknown_key')
    expect(await reason(f.verifier, f.sign({ ...f.header, kid: 7 }))).toBe('malformed')
  })

  it('typ must be at+jwt (application/ prefix and case tolerated)', async () => {
    const f = fixture()
    expect(await reason(f.verifier, f.sign({ ...f.header, typ: 'JWT' }))).toBe('type_mismatch')
    expect(await reason(f.verifier, f.sign({ alg: 'EdDSA', kid: 'k1' }))).toBe('type_mismatch')
    expect(await reason(f.verifier, f.sign({ ...f.header, typ: 'application/AT+JWT' }))).toBe(
      'accepted',
    )
  })

  it('a header that is not a JSON object is malformed', async () => {
    const f = fixture()
    const [, payload, signature] = f.sign().split('.')
    for (const header of ['[]', 'null', '"x"', '{', '{"alg":1,"kid":"k1"}']) {
      expect(await reason(f.verifier, `${b64(header)}.${payload}.${signature}`)).toBe('malformed')
    }
  })
})

describe('claims', () => {
  it('a token without exp is refused', async () => {
    const f = fixture()
    const { exp: _exp, ...claims } = f.claims
    expect(await reason(f.verifier, f.sign(f.header, claims))).toBe('claims_invalid')
    expect(await reason(f.verifier, f.sign(f.header, { ...f.claims, exp: '9999999999' }))).toBe(
      'claims_invalid',
    )
  })

  it('a wrong issuer or audience is refused; an audience list containing ours passes', async () => {
    const f = fixture()
    expect(await reason(f.verifier, f.sign(f.header, { ...f.claims, iss: 'https://evil' }))).toBe(
      'issuer_mismatch',
    )
    const { iss: _iss, ...noIss } = f.claims
    expect(await reason(f.verifier, f.sign(f.header, noIss))).toBe('issuer_mismatch')
    expect(await reason(f.verifier, f.sign(f.header, { ...f.claims, aud: 'other' }))).toBe(
      'audience_mismatch',
    )
    const { aud: _aud, ...noAud } = f.claims
    expect(await reason(f.verifier, f.sign(f.header, noAud))).toBe('audience_mismatch')
    expect(await reason(f.verifier, f.sign(f.header, { ...f.claims, aud: ['x', AUD] }))).toBe(
      'accepted',
    )
  })

  it('expiry at the 60 s leeway boundary (injected clock)', async () => {
    let now = NOW
    const f = fixture({ now: () => now })
    const token = f.sign(f.header, { ...f.claims, exp: T + 10 })
    now = (T + 10 + 60) * 1000 - 1
    expect(await reason(f.verifier, token)).toBe('accepted')
    now = (T + 10 + 60) * 1000
    expect(await reason(f.verifier, token)).toBe('expired')
  })

  it('not-yet-valid (nbf, and iat in the future) at the leeway boundary', async () => {
    let now = NOW
    const f = fixture({ now: () => now })
    const nbfToken = f.sign(f.header, { ...f.claims, nbf: T + 100, exp: T + 900 })
    now = (T + 100 - 60) * 1000 - 1
    expect(await reason(f.verifier, nbfToken)).toBe('not_yet_valid')
    now = (T + 100 - 60) * 1000
    expect(await reason(f.verifier, nbfToken)).toBe('accepted')
    const iatToken = f.sign(f.header, { ...f.claims, iat: T + 100, exp: T + 900 })
    now = (T + 100 - 60) * 1000 - 1
    expect(await reason(f.verifier, iatToken)).toBe('not_yet_valid')
  })

  it('a leeway over 60 s is a configuration error', () => {
    const { publicKey } = generateKeyPairSync('ed25519')
    expect(() =>
      createVerifier({
        issuer: ISS,
        audience: AUD,
        keys: [exportPublicJWK('k', 'EdDSA', publicKey)],
        leeway: 61,
      }),
    ).toThrow(/leeway/)
  })
})

describe('signature tampering', () => {
  it('every single bit flip of the signature is refused', async () => {
    const f = fixture()
    const token = f.sign()
    const dot = token.lastIndexOf('.')
    const original = Buffer.from(token.slice(dot + 1), 'base64url')
    for (let bit = 0; bit < original.length * 8; bit += 1) {
      const signature = Buffer.from(original)
      signature[bit >> 3] = (signature[bit >> 3] as number) ^ (1 << (bit & 7))
      const forged = `${token.slice(0, dot)}.${signature.toString('base64url')}`
      expect(await reason(f.verifier, forged)).toBe('bad_signature')
    }
  })

  it('a flipped character in header or payload is refused', async () => {
    const f = fixture()
    const token = f.sign()
    const dot = token.lastIndexOf('.')
    for (let index = 0; index < dot; index += 1) {
      const char = token[index] as string
      if (char === '.') continue
      const replacement = char === 'A' ? 'B' : 'A'
      const forged = token.slice(0, index) + replacement + token.slice(index + 1)
      expect(await reason(f.verifier, forged)).not.toBe('accepted')
    }
  })

  it('truncated and extended signatures are refused', async () => {
    const f = fixture()
    const token = f.sign()
    const dot = token.lastIndexOf('.')
    const signature = Buffer.from(token.slice(dot + 1), 'base64url')
    const head = token.slice(0, dot + 1)
    for (const bytes of [
      signature.subarray(0, 63),
      signature.subarray(0, 32),
      Buffer.alloc(0),
      Buffer.concat([signature, Buffer.from([0])]),
      Buffer.concat([signature, signature]),
    ]) {
      expect(await reason(f.verifier, head + bytes.toString('base64url'))).not.toBe('accepted')
    }
    expect(await reason(f.verifier, token.slice(0, -1))).not.toBe('accepted')
    expect(await reason(f.verifier, `${token}A`)).not.toBe('accepted')
    expect(await reason(f.verifier, `${token}=`)).not.toBe('accepted')
    expect(await reason(f.verifier, `${token}.`)).toBe('malformed')
  })

  it('a non-canonical spelling of the signature (spare low bits set) is refused', async () => {
    const f = fixture()
    const token = f.sign()
    const last = token.at(-1) as string
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    // 64 bytes -> 86 characters: the last one carries 2 bits, the low 4 are spare.
    const index = alphabet.indexOf(last)
    const sibling = alphabet[(index & ~0xf) | ((index + 1) & 0xf)] as string
    const forged = token.slice(0, -1) + sibling
    expect(Buffer.from(forged.split('.')[2] as string, 'base64url')).toEqual(
      Buffer.from(token.split('.')[2] as string, 'base64url'),
    )
    expect(await reason(f.verifier, forged)).toBe('bad_signature')
  })

  it('payload swapped between two valid tokens is refused', async () => {
    const f = fixture()
    const a = f.sign(f.header, { ...f.claims, sub: 'alice' }).split('.')
    const b = f.sign(f.header, { ...f.claims, sub: 'admin' }).split('.')
    expect(await reason(f.verifier, `${a[0]}.${b[1]}.${a[2]}`)).toBe('bad_signature')
    expect(await reason(f.verifier, `${b[0]}.${a[1]}.${b[2]}`)).toBe('bad_signature')
  })

  it('wrong segment counts, JWE shape, oversized tokens and non-strings are malformed', async () => {
    const f = fixture()
    const token = f.sign()
    const [h, p, s] = token.split('.')
    for (const bad of [
      `${h}.${p}`,
      `${h}.${p}.${s}.${s}`,
      `${h}.${p}.${s}.${s}.${s}`,
      `.${p}.${s}`,
      `${h}..${s}`,
      `${h}.${p}!.${s}`,
      'a'.repeat(9000),
      '',
    ]) {
      expect(await reason(f.verifier, bad)).not.toBe('accepted')
    }
    for (const value of [null, undefined, 42, {}, ['a']]) {
      expect(await reason(f.verifier, value as string)).toBe('malformed')
    }
  })
})

describe('property: no input throws or is accepted', () => {
  it('random strings and random mutations of a valid token', async () => {
    const f = fixture()
    const token = f.sign()
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc
            .tuple(fc.nat(token.length - 1), fc.string({ minLength: 1, maxLength: 3 }))
            .map(([at, insert]) => token.slice(0, at) + insert + token.slice(at + 1)),
          fc
            .tuple(fc.json(), fc.json())
            .map(([h, p]) => `${b64(h)}.${b64(p)}.${token.split('.')[2]}`),
        ),
        async (input) => {
          fc.pre(input !== token)
          const result = await f.verifier.verify(input)
          expect(result.ok).toBe(false)
        },
      ),
      { numRuns: 400 },
    )
  })
})
