import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { normalizeEmail, parseEmail } from '../../src/auth/email.js'

describe('normalizeEmail', () => {
  it('makes case, surrounding space and fullwidth variants one address', () => {
    const variants = [
      'Alice@X.io',
      ' alice@x.io ',
      'ALICE@X.IO',
      '\u3000alice@x.io\t',
      'ａｌｉｃｅ＠ｘ．ｉｏ', // fullwidth
      'Ａｌｉｃｅ@X.io',
    ]
    for (const v of variants) expect(normalizeEmail(v), v).toBe('alice@x.io')
  })

  it('folds like Unicode full case folding where toLowerCase alone does not', () => {
    expect(normalizeEmail('STRASSE@x.de')).toBe(normalizeEmail('straße@x.de'))
    expect(normalizeEmail('ΣΟΦΟΣ@x.gr')).toBe(normalizeEmail('σοφος@x.gr'))
  })

  it('is idempotent (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        const once = normalizeEmail(s)
        expect(normalizeEmail(once)).toBe(once)
      }),
    )
  })
})

describe('parseEmail', () => {
  it('accepts plausible addresses, normalised', () => {
    expect(parseEmail(' Bob@Example.COM ')).toBe('bob@example.com')
    expect(parseEmail('root@localhost')).toBe('root@localhost')
  })

  it('refuses what is not an address', () => {
    for (const bad of [
      '',
      'bob',
      '@x.io',
      'bob@',
      'a@b@c.io',
      'bob@x',
      'bo b@x.io',
      'bob@x.io\r\nBcc: eve@y.io',
      'bob@.x.io',
      `${'a'.repeat(65)}@x.io`,
      `a@${'b'.repeat(260)}.io`,
      42,
      null,
      undefined,
      {},
    ]) {
      expect(parseEmail(bad), JSON.stringify(bad) ?? 'undefined').toBeNull()
    }
  })

  // SECURITY: an address with a lone surrogate cannot be stored as UTF-8 without changing it.
  it('refuses a lone UTF-16 surrogate and keeps a surrogate pair', () => {
    for (const bad of ['\ud800@example.com', 'bob@exa\udc00mple.com', 'bob\ud83d@x.io']) {
      expect(parseEmail(bad), JSON.stringify(bad)).toBeNull()
    }
    expect(parseEmail('b\u{1F600}b@x.io')).toBe('b\u{1F600}b@x.io')
  })

  it('never throws (property)', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const out = parseEmail(value)
        expect(out === null || typeof out === 'string').toBe(true)
      }),
    )
  })
})
