import { describe, expect, it } from 'vitest'
import { createKeyring, secretWeakness } from '../../src/core/keyring.js'
import { TesseraError } from '../../src/core/errors.js'

const GOOD = 'n9K2vQ7xLp4RtY8wZs3FhJ6mC1bD5gE0aUoIiTeWqVr'
const OTHER = 'Xc7Pq2Lm9Rt4Vb8Nz1Hs6Kd3Fg5Jw0YaQeUiOoTyPpA'

describe('createKeyring', () => {
  it.each([
    'keyboard cat',
    'change-this-secret-key',
    'secret',
    'changeme',
    'Keyboard Cat',
    'a'.repeat(64),
    'short-but-random-Zq8',
    'your-super-secret-jwt-token-with-at-least-32-characters-long',
    '',
    '   ',
  ])('refuses %j under the default policy and says how to make one', (secret) => {
    expect(() => createKeyring(secret)).toThrow(TesseraError)
    expect(() => createKeyring(secret)).toThrow(/tessera-auth secret/)
  })

  it('never echoes the secret in its message', () => {
    const secret = 'my-app-secret-xyz'
    try {
      createKeyring(secret)
      expect.unreachable()
    } catch (error) {
      expect((error as TesseraError).code).toBe('config_invalid')
      expect((error as Error).message).not.toContain(secret)
    }
  })

  it('refuses a weak fallback too', () => {
    expect(() => createKeyring(GOOD, { fallbacks: ['keyboard cat'] })).toThrow(/fallback secret #1/)
  })

  it('accepts a weak secret under the weak policy, with a warning', () => {
    const warnings: string[] = []
    const keyring = createKeyring('keyboard cat', {
      policy: 'weak',
      onWarning: (message) => warnings.push(message),
    })
    expect(keyring.key('session').bytes).toHaveLength(32)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).not.toContain('keyboard cat')
  })

  it('refuses an empty secret even under the weak policy', () => {
    expect(() => createKeyring('', { policy: 'weak', onWarning: () => {} })).toThrow(TesseraError)
  })

  it('derives a different key per purpose and a stable one per secret', () => {
    const a = createKeyring(GOOD)
    const b = createKeyring(GOOD)
    expect(Buffer.from(a.key('session').bytes)).toEqual(Buffer.from(b.key('session').bytes))
    expect(Buffer.from(a.key('session').bytes)).not.toEqual(Buffer.from(a.key('csrf').bytes))
    expect(a.key('session').kid).toBe(a.key('csrf').kid)
    expect(a.currentKid).toMatch(/^[A-Za-z0-9_-]{8}$/)
  })

  it('lists fallbacks after the current key and finds each by id', () => {
    const keyring = createKeyring(GOOD, { fallbacks: [OTHER] })
    const keys = keyring.keys('session')
    expect(keys.map((key) => key.current)).toEqual([true, false])
    expect(keyring.find('session', keys[1]!.kid)).toBe(keys[1])
    expect(keyring.find('session', 'AAAAAAAA')).toBeUndefined()
    expect(keyring.kids).toEqual([createKeyring(GOOD).currentKid, createKeyring(OTHER).currentKid])
  })

  // Issue 12, item 8: `change-this-secret-key` was refused only for its length, so a padded or
  // repeated variant of 32 bytes or more passed.
  it('refuses published samples in disguise: case, padding, repetition, separators', () => {
    const variants = [
      'change-this-secret-key-change-this-secret-key',
      'CHANGE-THIS-SECRET-KEY-0000000000000000',
      'change_this_secret_key_1234567890123456',
      'Change This Secret Key !!!!!!!!!!!!!!!!!!',
      '--------change-this-secret-key--------',
      'changethissecretkeychangethissecretkey',
      'keyboard cat keyboard cat keyboard cat',
      'Keyboard-Cat-Keyboard-Cat-Keyboard-Cat-2024',
      'xxxxxxxxxxxxkeyboardcatxxxxxxxxxxxxxxxx',
      'your-256-bit-secret your-256-bit-secret',
      'ｃｈａｎｇｅ－ｔｈｉｓ－ｓｅｃｒｅｔ－ｋｅｙ－ｃｈａｎｇｅ',
    ]
    for (const secret of variants) {
      expect(Buffer.byteLength(secret)).toBeGreaterThanOrEqual(32)
      expect(secretWeakness(secret), secret).toMatch(/sample/)
      expect(() => createKeyring(secret), secret).toThrow(/sample/)
    }
  })

  it('refuses a short pattern repeated to length, and keeps strong secrets that contain a word', () => {
    expect(secretWeakness('abcd1234abcd1234abcd1234abcd1234')).toMatch(/repeated/)
    expect(secretWeakness('0123456789'.repeat(4))).toMatch(/repeated/)
    for (const strong of [
      GOOD,
      `test${GOOD}`,
      `${OTHER}-secret`,
      'correct horse battery staple for tessera in 2026',
      'f3a9c2e81b7d4065a9e2c4b1d8f70e3a6b5c9d2e1f0a4b7c8d9e0f1a2b3c4d5',
    ]) {
      expect(secretWeakness(strong), strong).toBeNull()
    }
  })

  it('explains weaknesses', () => {
    expect(secretWeakness(GOOD)).toBeNull()
    expect(secretWeakness('abc')).toMatch(/3 bytes/)
  })
})
