import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ERROR_CODES, TesseraError, isTesseraError } from '../../src/core/errors.js'

describe('error codes', () => {
  it('docs/errors.md lists exactly the codes of ERROR_CODES', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')
    const documented = [...doc.matchAll(/^\|\s*`([a-z_]+)`\s*\|/gm)].map((match) => match[1])
    expect([...documented].sort()).toEqual([...ERROR_CODES].sort())
    expect(new Set(documented).size).toBe(documented.length)
  })

  it('codes are snake_case', () => {
    for (const code of ERROR_CODES) expect(code).toMatch(/^[a-z]+(_[a-z]+)*$/)
  })

  it('keeps the code and the cause', () => {
    const cause = new Error('socket closed')
    const error = new TesseraError('store_unavailable', 'redis did not answer', { cause })
    expect(error.code).toBe('store_unavailable')
    expect(error.cause).toBe(cause)
    expect(isTesseraError(error, 'store_unavailable')).toBe(true)
    expect(isTesseraError(error, 'config_invalid')).toBe(false)
    expect(isTesseraError(new Error('x'))).toBe(false)
  })
})
