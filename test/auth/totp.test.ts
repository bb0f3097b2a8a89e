import { describe, expect, it } from 'vitest'
import {
  generateTOTPSecret,
  isTOTPSecret,
  totpCode,
  totpQRCodeSVG,
  totpStep,
  totpURI,
  verifyTOTPCode,
} from '../../src/auth/totp.js'

// RFC 6238 Appendix B, the SHA-1 rows: the seed is the ASCII "12345678901234567890", 8 digits.
const RFC_SECRET = Buffer.from('12345678901234567890', 'ascii')
const RFC_SECRET_BASE32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'
const RFC_SHA1: ReadonlyArray<[number, string]> = [
  [59, '94287082'],
  [1111111109, '07081804'],
  [1111111111, '14050471'],
  [1234567890, '89005924'],
  [2000000000, '69279037'],
  [20000000000, '65353130'],
]

describe('TOTP (RFC 6238)', () => {
  it('the base32 secret of the Appendix B seed', () => {
    expect(RFC_SECRET.length).toBe(20)
    expect(Buffer.from('12345678901234567890').toString('hex')).toBe(RFC_SECRET.toString('hex'))
    expect(isTOTPSecret(RFC_SECRET_BASE32)).toBe(true)
  })

  it.each(RFC_SHA1)('Appendix B SHA-1 at T=%i gives %s', (seconds, expected) => {
    const now = seconds * 1000
    expect(totpCode(RFC_SECRET_BASE32, { now, digits: 8 })).toBe(expected)
    expect(verifyTOTPCode(RFC_SECRET_BASE32, expected, { now, digits: 8 })).toBe(
      Math.floor(seconds / 30),
    )
  })

  it('accepts one step of drift either way and refuses two (injected clock)', () => {
    const secret = generateTOTPSecret()
    const now = 1_700_000_000_000
    const step = totpStep(now)
    for (const drift of [-2, -1, 0, 1, 2]) {
      const code = totpCode(secret, { now: now + drift * 30_000 })
      const matched = verifyTOTPCode(secret, code, { now })
      if (Math.abs(drift) <= 1) expect(matched).toBe(step + drift)
      else expect(matched).toBeNull()
    }
  })

  it('never throws on malformed codes and refuses them before any HMAC', () => {
    const secret = generateTOTPSecret()
    const now = 1_700_000_000_000
    for (const bad of [
      '',
      '12345',
      '1234567',
      'abcdef',
      ' 123456',
      '１２３４５６',
      null,
      123456,
      {},
      'x'.repeat(1e5),
    ]) {
      expect(verifyTOTPCode(secret, bad, { now })).toBeNull()
    }
    expect(verifyTOTPCode('not base32!', '123456', { now })).toBeNull()
  })

  it('makes 160-bit secrets, the otpauth URI and an SVG QR code', async () => {
    const secret = generateTOTPSecret()
    expect(secret).toMatch(/^[A-Z2-7]{32}$/)
    expect(generateTOTPSecret()).not.toBe(secret)
    const uri = totpURI(secret, { issuer: 'tessera', label: 'ada@example.com' })
    const url = new URL(uri)
    expect(url.protocol).toBe('otpauth:')
    expect(url.searchParams.get('secret')).toBe(secret)
    expect(url.searchParams.get('algorithm')).toBe('SHA1')
    expect(url.searchParams.get('digits')).toBe('6')
    expect(url.searchParams.get('period')).toBe('30')
    const svg = await totpQRCodeSVG(uri)
    expect(svg.startsWith('<svg')).toBe(true)
    expect(svg).not.toMatch(/<script|href=/i)
  })
})
