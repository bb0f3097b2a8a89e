import { describe, expect, it } from 'vitest'
import {
  checkPasswordPolicy,
  isCommonPassword,
  normalizePassword,
} from '../../src/auth/password-policy.js'
import {
  COMMON_PASSWORDS_COUNT,
  COMMON_PASSWORDS_TEXT,
} from '../../src/auth/data/common-passwords.js'

describe('checkPasswordPolicy: length', () => {
  it('12 to 128 code points by default, boundaries included', () => {
    expect(checkPasswordPolicy('k7#Vq2!mZp9x')).toEqual({ ok: true }) // 12
    expect(checkPasswordPolicy('k7#Vq2!mZp9')).toMatchObject({ ok: false, reason: 'too_short' })
    expect(checkPasswordPolicy('Zq8!'.repeat(32))).toEqual({ ok: true }) // 128
    expect(checkPasswordPolicy(`${'Zq8!'.repeat(32)}x`)).toMatchObject({
      ok: false,
      reason: 'too_long',
    })
  })

  it('counts code points, not UTF-16 units or bytes: an emoji is one character', () => {
    const twelve = '🦊🐙🌵🎻🚲🧭🪁🍋🦉🌋🎲🪐'
    expect(twelve.length).toBe(24)
    expect(checkPasswordPolicy(twelve)).toEqual({ ok: true })
    expect(checkPasswordPolicy(twelve.slice(0, 22))).toMatchObject({ reason: 'too_short' })
    const long = '密'.repeat(128) // 384 UTF-8 bytes, 128 characters: accepted, never truncated
    expect(checkPasswordPolicy(long)).toEqual({ ok: true })
    expect(checkPasswordPolicy(`${long}密`)).toMatchObject({ reason: 'too_long' })
  })

  it('measures the NFKC form, which is what gets hashed', () => {
    // U+FB00 (ﬀ) is one code point that NFKC turns into "ff": six of them are twelve characters.
    expect(normalizePassword('ﬀ'.repeat(6))).toBe('f'.repeat(12))
    expect(checkPasswordPolicy('ﬀﬁ9ﬀ!ﬂﬀ')).toEqual({ ok: true }) // 7 typed, 12 normalised
    expect(checkPasswordPolicy('ﬀﬁ9ﬀ!ﬂ')).toMatchObject({ reason: 'too_short' }) // 10
    // Composed and decomposed é are the same character.
    expect(checkPasswordPolicy('e\u0301'.repeat(11) + 'x')).toEqual({ ok: true })
    expect(checkPasswordPolicy('e\u0301'.repeat(11))).toMatchObject({ reason: 'too_short' })
  })

  it('accepts any well-formed Unicode, spaces and control characters included', () => {
    expect(checkPasswordPolicy('  leading and trailing  ')).toEqual({ ok: true })
    expect(checkPasswordPolicy('tab\there\u0000nul inside')).toEqual({ ok: true })
    expect(checkPasswordPolicy('Ωμέγα παράδειγμα')).toEqual({ ok: true })
  })

  it('refuses lone surrogates as malformed', () => {
    expect(checkPasswordPolicy('abcdefghijkl\uD800')).toMatchObject({ reason: 'malformed' })
    expect(checkPasswordPolicy('\uDC00abcdefghijkl')).toMatchObject({ reason: 'malformed' })
  })

  it('takes other limits, and refuses impossible ones', () => {
    expect(checkPasswordPolicy('zq8!mv', { minLength: 6 })).toEqual({ ok: true })
    expect(checkPasswordPolicy('zq8!mv7', { minLength: 6, maxLength: 6 })).toMatchObject({
      reason: 'too_long',
    })
    expect(() => checkPasswordPolicy('x', { minLength: 10, maxLength: 5 })).toThrow(/minLength/)
    expect(() => checkPasswordPolicy('x', { minLength: 0 })).toThrow(/minLength/)
  })
})

describe('checkPasswordPolicy: common passwords', () => {
  it('ships at least 10,000 entries', () => {
    expect(COMMON_PASSWORDS_COUNT).toBeGreaterThanOrEqual(10_000)
    expect(new Set(COMMON_PASSWORDS_TEXT.split('\n')).size).toBe(COMMON_PASSWORDS_COUNT)
  })

  it('refuses list entries case-insensitively and after NFKC', () => {
    expect(checkPasswordPolicy('masturbation')).toMatchObject({ ok: false, reason: 'common' })
    expect(checkPasswordPolicy('ContortioNist')).toMatchObject({ reason: 'common' })
    expect(checkPasswordPolicy('PASSWORD', { minLength: 8 })).toMatchObject({ reason: 'common' })
    expect(checkPasswordPolicy('ｐａｓｓｗｏｒｄ', { minLength: 8 })).toMatchObject({
      reason: 'common',
    })
    expect(isCommonPassword('qwerty')).toBe(true)
    expect(isCommonPassword('qwerty-but-longer-and-mine')).toBe(false)
  })

  it('can be turned off, and takes extra words', () => {
    expect(checkPasswordPolicy('masturbation', { commonList: false })).toEqual({ ok: true })
    expect(checkPasswordPolicy('TesseraAdmin', { extraWords: ['tesseraadmin'] })).toMatchObject({
      reason: 'common',
    })
  })

  it('never repeats the password in its message', () => {
    const result = checkPasswordPolicy('contortionist')
    expect(result.ok).toBe(false)
    if (!result.ok) expect(result.message).not.toContain('contortionist')
  })
})
