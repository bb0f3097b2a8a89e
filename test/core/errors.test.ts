import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  API_ERROR_CODES,
  ERROR_CODES,
  HTTP_ERRORS,
  TesseraError,
  httpErrorOf,
  httpErrorOfError,
  isTesseraError,
} from '../../src/core/errors.js'

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')

describe('error codes', () => {
  it('docs/errors.md lists exactly the codes of ERROR_CODES', () => {
    const documented = [...doc.matchAll(/^\|\s*`([a-z_]+)`\s*\|/gm)].map((match) => match[1])
    expect([...documented].sort()).toEqual([...ERROR_CODES].sort())
    expect(new Set(documented).size).toBe(documented.length)
  })

  it('docs/errors.md gives each code the HTTP answer of the table, Retry-After included', () => {
    const rows = [
      ...doc.matchAll(
        /^\|\s*`([a-z_]+)`\s*\|\s*`(\d{3}) ([a-z_]+)`(?:, Retry-After (\d+))?\s*\|/gm,
      ),
    ]
    expect(rows.length).toBe(ERROR_CODES.length)
    for (const [, code, status, body, retry] of rows) {
      const mapping = HTTP_ERRORS[code as (typeof ERROR_CODES)[number]]
      expect({
        code,
        status: Number(status),
        body,
        retry: retry === undefined ? undefined : Number(retry),
      }).toEqual({
        code,
        status: mapping.status,
        body: mapping.code,
        retry: mapping.retryAfter,
      })
    }
  })

  it('codes are snake_case, and every API code is a code answered under its own name', () => {
    for (const code of ERROR_CODES) expect(code).toMatch(/^[a-z]+(_[a-z]+)*$/)
    for (const code of API_ERROR_CODES) {
      expect(ERROR_CODES).toContain(code)
      expect(HTTP_ERRORS[code].code).toBe(code)
    }
    // API.md's list, plus the generic 500.
    expect([...API_ERROR_CODES].sort()).toEqual(
      [
        'invalid_request',
        'invalid_credentials',
        'unauthenticated',
        'forbidden',
        'csrf_failed',
        'rate_limited',
        'invalid_token',
        'token_reused',
        'not_found',
        'conflict',
        'weak_password',
        'payload_too_large',
        'unsupported_media_type',
        'unavailable',
        'reauthentication_required',
        'email_unverified',
        'internal_error',
      ].sort(),
    )
  })

  it('every 503 and 429 row carries Retry-After; every other row does not', () => {
    for (const code of ERROR_CODES) {
      const mapping = HTTP_ERRORS[code]
      const answer = httpErrorOf(code, 'm')
      if (mapping.status === 503 || mapping.status === 429) {
        expect(Number(answer.headers['Retry-After']), code).toBeGreaterThanOrEqual(1)
      } else {
        expect(answer.headers['Retry-After'], code).toBeUndefined()
      }
    }
  })

  it('answers with the error own seconds and headers, and hides a 500 message', () => {
    const limited = new TesseraError('rate_limited', 'too many', { retryAfter: 12.2 })
    expect(httpErrorOfError(limited)).toEqual({
      status: 429,
      headers: { 'Retry-After': '13' },
      body: { error: { code: 'rate_limited', message: 'too many' } },
    })
    const bug = httpErrorOf('config_invalid', 'TESSERA_SECRET is sample-secret-123')
    expect(bug.status).toBe(500)
    expect(bug.body.error).toEqual({ code: 'internal_error', message: 'internal server error' })
    const refused = httpErrorOf('token_invalid', 'bad', {
      headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
    })
    expect(refused.status).toBe(401)
    expect(refused.body.error.code).toBe('invalid_token')
    expect(refused.headers['WWW-Authenticate']).toContain('invalid_token')
    // A code the table does not know (a newer service's) is a bad request, not a crash.
    expect(httpErrorOf('no_such_code' as 'invalid_request', 'm').status).toBe(400)
    expect(httpErrorOf('__proto__' as 'invalid_request', 'm').status).toBe(400)
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
