import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { TesseraError } from '../../src/core/errors.js'
import { createKeyring } from '../../src/core/keyring.js'
import { sealValue, unsealValue } from '../../src/core/sealing.js'
import { signValue } from '../../src/core/signing.js'

const GOOD = 'n9K2vQ7xLp4RtY8wZs3FhJ6mC1bD5gE0aUoIiTeWqVr'
const OTHER = 'Xc7Pq2Lm9Rt4Vb8Nz1Hs6Kd3Fg5Jw0YaQeUiOoTyPpA'
const THIRD = 'Tq8Wm3Rz6Yb1Nc4Vx7Kp0Ls2Df5Gh9Jk-Ae_Io-Uu_Ey'
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

describe('sealValue / unsealValue', () => {
  it('round-trips strings, empty and non-ASCII included', () => {
    const keyring = createKeyring(GOOD)
    for (const value of ['', 'a', '{"userId":"u1"}', 'ünïcødé ✓ 🍪', 'x'.repeat(5000)]) {
      const sealed = sealValue(keyring, 'session', value)
      expect(sealed).toMatch(/^s1\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]+$/)
      expect(unsealValue(keyring, 'session', sealed)).toEqual({
        value,
        expiresAt: null,
        kid: keyring.currentKid,
        needsReseal: false,
      })
    }
  })

  it('hides the value and never repeats itself (fresh nonce per seal)', () => {
    const keyring = createKeyring(GOOD)
    const a = sealValue(keyring, 'session', 'user-123-secret-data')
    const b = sealValue(keyring, 'session', 'user-123-secret-data')
    expect(a).not.toBe(b)
    expect(a.slice(12, 28)).not.toBe(b.slice(12, 28))
    expect(Buffer.from(a.slice(12), 'base64url').toString('latin1')).not.toContain('user-123')
  })

  it('enforces the ttl with an injected clock', () => {
    const keyring = createKeyring(GOOD)
    let now = 1_700_000_000_000
    const clock = (): number => now
    const sealed = sealValue(keyring, 'session', 'v', { ttl: 60, now: clock })
    expect(unsealValue(keyring, 'session', sealed, { now: clock })).toMatchObject({
      value: 'v',
      expiresAt: 1_700_000_060_000,
    })
    now += 59_999
    expect(unsealValue(keyring, 'session', sealed, { now: clock })).not.toBeNull()
    now += 1
    expect(unsealValue(keyring, 'session', sealed, { now: clock })).toBeNull()
  })

  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY, 1e20])('refuses ttl %d', (ttl) => {
    const keyring = createKeyring(GOOD)
    expect(() => sealValue(keyring, 'session', 'v', { ttl })).toThrow(TesseraError)
  })

  it('refuses a lone surrogate rather than sealing something else', () => {
    const keyring = createKeyring(GOOD)
    expect(() => sealValue(keyring, 'session', 'a\uD800b')).toThrow(/well-formed/)
    expect(() => sealValue(keyring, '', 'a')).toThrow(TesseraError)
  })

  it('opens a fallback-sealed value and asks for a reseal, until the fallback is removed', () => {
    const old = createKeyring(OTHER)
    const rotated = createKeyring(GOOD, { fallbacks: [OTHER] })
    const sealed = sealValue(old, 'session', 'v')
    expect(unsealValue(rotated, 'session', sealed)).toEqual({
      value: 'v',
      expiresAt: null,
      kid: old.currentKid,
      needsReseal: true,
    })
    expect(unsealValue(rotated, 'session', sealValue(rotated, 'session', 'v'))).toMatchObject({
      needsReseal: false,
      kid: rotated.currentKid,
    })
    expect(unsealValue(createKeyring(GOOD), 'session', sealed)).toBeNull()
  })

  it('returns null for junk, never throws', () => {
    const keyring = createKeyring(GOOD)
    const sealed = sealValue(keyring, 'session', 'v')
    const junk: unknown[] = [
      undefined,
      null,
      42,
      {},
      [],
      '',
      's1.',
      `s1.${keyring.currentKid}.`,
      `s1.${keyring.currentKid}.${'A'.repeat(38)}`,
      `s2${sealed.slice(2)}`,
      `${sealed}=`,
      `${sealed}.`,
      sealed.replace('s1.', 's1,'),
      sealed.slice(0, 11) + '!' + sealed.slice(12),
      sealed.toUpperCase(),
      'x'.repeat(100_000),
    ]
    for (const value of junk) expect(unsealValue(keyring, 'session', value)).toBeNull()
  })

  // SECURITY invariant: the key id is authenticated. Rewriting it to name another key of the
  // keyring must not open (kid is in the associated data).
  it('rejects a value whose key id was rewritten to another key of the keyring', () => {
    const both = createKeyring(GOOD, { fallbacks: [OTHER] })
    const sealed = sealValue(both, 'session', 'v')
    const otherKid = createKeyring(OTHER).currentKid
    expect(unsealValue(both, 'session', `s1.${otherKid}${sealed.slice(11)}`)).toBeNull()
  })

  // SECURITY invariant: one sealed value, one accepted spelling. Node's base64url decoder ignores
  // the spare bits of the last character; without the canonical check some of these would open.
  it('accepts only the canonical last character', () => {
    const keyring = createKeyring(GOOD)
    for (const value of ['', 'a', 'ab']) {
      const sealed = sealValue(keyring, 'session', value)
      const opened = [...BASE64URL].filter(
        (char) => unsealValue(keyring, 'session', sealed.slice(0, -1) + char) !== null,
      )
      expect(opened).toEqual([sealed.slice(-1)])
    }
  })

  // SECURITY invariant: the sealing key is only ever an AES key; signValue cannot use it.
  it('never lets signValue use the sealing key', () => {
    const keyring = createKeyring(GOOD)
    expect(() => signValue(keyring, 'seal', 'x')).toThrow(/reserved/)
  })
})

describe('sealing properties', () => {
  const keyring = createKeyring(GOOD, { fallbacks: [OTHER] })

  it('round-trips any well-formed string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (value) => {
        expect(unsealValue(keyring, 'p', sealValue(keyring, 'p', value))?.value).toBe(value)
      }),
      { numRuns: 200 },
    )
  })

  it('rejects every single-character mutation', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 40 }),
        fc.nat(),
        fc.constantFrom(...BASE64URL, '.', '=', '+', '/', ' ', 'é'),
        (value, position, replacement) => {
          const sealed = sealValue(keyring, 'p', value)
          const index = position % sealed.length
          fc.pre(sealed[index] !== replacement)
          const mutated = sealed.slice(0, index) + replacement + sealed.slice(index + 1)
          expect(unsealValue(keyring, 'p', mutated)).toBeNull()
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
          const sealed = sealValue(keyring, 'p', value)
          expect(unsealValue(keyring, 'p', sealed.slice(0, cut % sealed.length))).toBeNull()
          expect(unsealValue(keyring, 'p', sealed + suffix)).toBeNull()
          expect(unsealValue(keyring, 'p', suffix + sealed)).toBeNull()
        },
      ),
      { numRuns: 300 },
    )
  })

  it('purposes never cross', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 20 }),
        fc.string({ minLength: 1, maxLength: 20 }),
        fc.string({ maxLength: 20 }),
        (purposeA, purposeB, value) => {
          fc.pre(purposeA !== purposeB)
          expect(unsealValue(keyring, purposeB, sealValue(keyring, purposeA, value))).toBeNull()
        },
      ),
      { numRuns: 200 },
    )
  })

  it('a fallback-sealed value opens until its key is removed', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (value) => {
        const sealed = sealValue(createKeyring(OTHER), 'p', value)
        expect(unsealValue(createKeyring(GOOD, { fallbacks: [OTHER] }), 'p', sealed)).toMatchObject(
          {
            value,
            needsReseal: true,
          },
        )
        expect(unsealValue(createKeyring(GOOD, { fallbacks: [THIRD] }), 'p', sealed)).toBeNull()
      }),
      { numRuns: 50 },
    )
  })

  it('no input makes unsealValue throw', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.anything()), (input) => {
        const prefixed = typeof input === 'string' ? `s1.${keyring.currentKid}.${input}` : input
        expect(unsealValue(keyring, 'p', prefixed)).toBeNull()
      }),
      { numRuns: 300 },
    )
  })
})
