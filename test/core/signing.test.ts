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
