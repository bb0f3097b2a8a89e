import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createKeyring } from '../../src/core/keyring.js'
import { signValue, verifyValue } from '../../src/core/signing.js'

const GOOD = 'n9K2vQ7xLp4RtY8wZs3FhJ6mC1bD5gE0aUoIiTeWqVr'
const OTHER = 'Xc7Pq2Lm9Rt4Vb8Nz1Hs6Kd3Fg5Jw0YaQeUiOoTyPpA'

describe('signValue / verifyValue', () => {
  it('round-trips values, dots included', () => {
    const keyring = createKeyring(GOOD)
    for (const value of ['', 'abc', 'a.b.c', 'ünïcødé ✓', '.']) {
      const verified = verifyValue(keyring, 'session', signValue(keyring, 'session', value))
      expect(verified).toEqual({
        value,
        timestamp: null,
        kid: keyring.currentKid,
        needsResign: false,
      })
    }
  })

  it('never verifies for another purpose', () => {
    const keyring = createKeyring(GOOD)
    expect(verifyValue(keyring, 'csrf', signValue(keyring, 'session', 'x'))).toBeNull()
  })

  it('rejects a changed value, tag or key id', () => {
    const keyring = createKeyring(GOOD)
    const signed = signValue(keyring, 'session', 'token')
    expect(verifyValue(keyring, 'session', `x${signed}`)).toBeNull()
    expect(
      verifyValue(keyring, 'session', signed.slice(0, -1) + (signed.endsWith('A') ? 'B' : 'A')),
    ).toBeNull()
    expect(
      verifyValue(keyring, 'session', signed.replace(keyring.currentKid, 'AAAAAAAA')),
    ).toBeNull()
    for (const junk of [undefined, null, 42, '', '.', 'a.b.c', signed + '.']) {
      expect(verifyValue(keyring, 'session', junk)).toBeNull()
    }
  })

  it('verifies a fallback-signed value and asks for a re-sign; the current key signs', () => {
    const old = createKeyring(OTHER)
    const rotated = createKeyring(GOOD, { fallbacks: [OTHER] })
    const signed = signValue(old, 'session', 'v')
    expect(verifyValue(rotated, 'session', signed)).toMatchObject({ value: 'v', needsResign: true })
    expect(verifyValue(rotated, 'session', signValue(rotated, 'session', 'v'))).toMatchObject({
      needsResign: false,
    })
    expect(verifyValue(createKeyring(GOOD), 'session', signed)).toBeNull()
  })

  it('enforces maxAge with an injected clock', () => {
    const keyring = createKeyring(GOOD)
    let now = 1_700_000_000_000
    const clock = (): number => now
    const signed = signValue(keyring, 'reset', 'u1', { timestamp: true, now: clock })
    expect(verifyValue(keyring, 'reset', signed, { maxAge: 60, now: clock })).toMatchObject({
      value: 'u1',
      timestamp: 1_700_000_000,
    })
    now += 60_000
    expect(verifyValue(keyring, 'reset', signed, { maxAge: 60, now: clock })).not.toBeNull()
    now += 1000
    expect(verifyValue(keyring, 'reset', signed, { maxAge: 60, now: clock })).toBeNull()
    const untimed = signValue(keyring, 'reset', 'u1')
    expect(verifyValue(keyring, 'reset', untimed, { maxAge: 60, now: clock })).toBeNull()
  })
})

describe('signing properties', () => {
  const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const THIRD = 'Tq8Wm3Rz6Yb1Nc4Vx7Kp0Ls2Df5Gh9Jk-Ae_Io-Uu_Ey'
  const keyring = createKeyring(GOOD, { fallbacks: [OTHER] })
  const timed = { timestamp: true, now: (): number => 1_700_000_000_000 }

  // SECURITY invariant: the tag comparison accepts only the exact canonical tag; a decoder that
  // ignores the last character's spare bits, or a comparison that stops early, fails this.
  it('accepts only the exact last character of the tag', () => {
    for (const value of ['', 'token', 'a.b']) {
      const signed = signValue(keyring, 'session', value)
      const accepted = [...BASE64URL, '+', '/', '='].filter(
        (char) => verifyValue(keyring, 'session', signed.slice(0, -1) + char) !== null,
      )
      expect(accepted).toEqual([signed.slice(-1)])
    }
  })

  it('rejects every single-character mutation', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 40 }),
        fc.boolean(),
        fc.nat(),
        fc.constantFrom(...BASE64URL, '.', '=', '+', '/', ' ', 'é'),
        (value, withTimestamp, position, replacement) => {
          const signed = signValue(keyring, 'p', value, withTimestamp ? timed : {})
          const index = position % signed.length
          fc.pre(signed[index] !== replacement)
          const mutated = signed.slice(0, index) + replacement + signed.slice(index + 1)
          expect(verifyValue(keyring, 'p', mutated)).toBeNull()
        },
      ),
      { numRuns: 500 },
    )
  })

  it('rejects every truncation and extension', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 40 }),
        fc.nat(),
        fc.string({ minLength: 1, maxLength: 8 }),
        (value, cut, suffix) => {
          const signed = signValue(keyring, 'p', value)
          expect(verifyValue(keyring, 'p', signed.slice(0, cut % signed.length))).toBeNull()
          expect(verifyValue(keyring, 'p', signed + suffix)).toBeNull()
        },
      ),
      { numRuns: 300 },
    )
  })

  it('purposes never cross', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 20 }).filter((p) => p !== 'seal' && p !== 'csrf'),
        fc.string({ minLength: 1, maxLength: 20 }),
        fc.string({ maxLength: 20 }),
        (purposeA, purposeB, value) => {
          fc.pre(purposeA !== purposeB)
          expect(verifyValue(keyring, purposeB, signValue(keyring, purposeA, value))).toBeNull()
        },
      ),
      { numRuns: 300 },
    )
  })

  it('a fallback-signed value verifies until its key is removed', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (value) => {
        const signed = signValue(createKeyring(OTHER), 'p', value)
        expect(verifyValue(createKeyring(GOOD, { fallbacks: [OTHER] }), 'p', signed)).toMatchObject(
          { value, needsResign: true },
        )
        expect(verifyValue(createKeyring(GOOD, { fallbacks: [THIRD] }), 'p', signed)).toBeNull()
      }),
      { numRuns: 50 },
    )
  })

  it('no input makes verifyValue throw', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.anything()), (input) => {
        expect(verifyValue(keyring, 'p', input)).toBeNull()
        if (typeof input === 'string') {
          expect(
            verifyValue(keyring, 'p', `${input}.${keyring.currentKid}.${'A'.repeat(43)}`),
          ).toBeNull()
        }
      }),
      { numRuns: 300 },
    )
  })

  // SECURITY invariant: CSRF keys and sealing keys never sign through signValue.
  it('refuses the reserved purposes', () => {
    expect(() => signValue(keyring, 'csrf', 'x')).toThrow(/reserved/)
    expect(() => signValue(keyring, 'seal', 'x')).toThrow(/reserved/)
    const forged = signValue(keyring, 'session', 'x').replace(/\.[^.]+$/, '')
    expect(verifyValue(keyring, 'csrf', forged)).toBeNull()
  })
})
