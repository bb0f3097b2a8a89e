import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  checkCrossSite,
  createCSRFToken,
  createTrustedOrigins,
  isJSONContentType,
  isSafeMethod,
  verifyCSRFToken,
  type CrossSiteRequest,
} from '../../src/core/csrf.js'
import { TesseraError } from '../../src/core/errors.js'
import { createKeyring } from '../../src/core/keyring.js'
import { signValue } from '../../src/core/signing.js'

const GOOD = 'n9K2vQ7xLp4RtY8wZs3FhJ6mC1bD5gE0aUoIiTeWqVr'
const OTHER = 'Xc7Pq2Lm9Rt4Vb8Nz1Hs6Kd3Fg5Jw0YaQeUiOoTyPpA'
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

function check(overrides: Partial<CrossSiteRequest> & { headers?: CrossSiteRequest['headers'] }) {
  return checkCrossSite({
    method: 'POST',
    headers: {},
    trustedOrigins: createTrustedOrigins(['https://app.example.com', 'http://localhost:3000']),
    hasSessionCookie: false,
    ...overrides,
  })
}

describe('checkCrossSite', () => {
  it.each(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'get', 'Head'])(
    'lets the safe method %s through',
    (method) => {
      expect(
        check({
          method,
          headers: { secFetchSite: 'cross-site', origin: 'https://evil.example' },
          hasSessionCookie: true,
        }),
      ).toEqual({ allowed: true, reason: 'safe_method' })
    },
  )

  it.each(['POST', 'PUT', 'PATCH', 'DELETE', 'post', 'Delete', 'PROPFIND', 'FOO'])(
    'checks the unsafe method %s',
    (method) => {
      expect(check({ method, headers: { secFetchSite: 'cross-site' } })).toMatchObject({
        allowed: false,
        reason: 'cross_site',
      })
    },
  )

  it.each(['cross-site', 'same-site', 'CROSS-SITE', ' same-site ', 'bogus'])(
    'refuses Sec-Fetch-Site %j with or without a session (login CSRF)',
    (secFetchSite) => {
      for (const hasSessionCookie of [false, true]) {
        const decision = check({
          headers: { secFetchSite },
          hasSessionCookie,
          csrfTokenValid: true,
        })
        expect(decision).toMatchObject({ allowed: false, reason: 'cross_site' })
        if (!decision.allowed) expect(decision.message).toMatch(/Sec-Fetch-Site/)
      }
    },
  )

  it.each([
    'https://evil.example',
    'null',
    'NULL',
    'https://app.example.com.evil.example',
    'https://evil.example/https://app.example.com',
    'http://app.example.com', // scheme differs
    'https://app.example.com:8443', // port differs
    'http://localhost:3001',
    'http://localhost', // port 80, not 3000
    'https://user@app.example.com',
    'https://app.example.com/path',
    'https://app.example.com?x',
    'app.example.com',
    'file://',
    'x'.repeat(5000),
  ])('refuses the untrusted Origin %j with or without a session', (origin) => {
    for (const hasSessionCookie of [false, true]) {
      const decision = check({
        headers: { origin, secFetchSite: 'same-origin' },
        hasSessionCookie,
        csrfTokenValid: true,
      })
      expect(decision).toMatchObject({ allowed: false, reason: 'untrusted_origin' })
    }
  })

  it.each([
    'https://app.example.com',
    'https://APP.Example.COM',
    'HTTPS://app.example.com',
    'https://app.example.com:443',
    'https://app.example.com/',
    'http://localhost:3000',
    'http://LOCALHOST:3000/',
  ])('trusts the Origin %j (case, default port and trailing slash normalized)', (origin) => {
    expect(check({ headers: { origin }, hasSessionCookie: true })).toEqual({
      allowed: true,
      reason: 'trusted_origin',
    })
  })

  it('normalizes configured origins the same way', () => {
    const trustedOrigins = createTrustedOrigins([
      'HTTPS://Admin.Example.com:443/',
      ' http://127.0.0.1:8080 ',
    ])
    expect(
      check({
        trustedOrigins,
        headers: { origin: 'https://admin.example.com' },
        hasSessionCookie: true,
      }),
    ).toMatchObject({ allowed: true })
    expect(
      check({
        trustedOrigins,
        headers: { origin: 'http://127.0.0.1:8080' },
        hasSessionCookie: true,
      }),
    ).toMatchObject({ allowed: true })
    expect(
      check({
        trustedOrigins,
        headers: { origin: 'https://app.example.com' },
        hasSessionCookie: true,
      }),
    ).toMatchObject({ allowed: false })
  })

  it('accepts a plain array of trusted origins', () => {
    expect(
      check({
        trustedOrigins: ['https://app.example.com/'],
        headers: { origin: 'https://app.example.com' },
        hasSessionCookie: true,
      }),
    ).toMatchObject({ allowed: true, reason: 'trusted_origin' })
  })

  it.each([
    'null',
    '*',
    'https://app.example.com/path',
    'app.example.com',
    'ftp://files.example.com',
    '',
    'https://a.com?x',
  ])('refuses to trust %j at setup', (origin) => {
    expect(() => createTrustedOrigins([origin])).toThrow(TesseraError)
    try {
      createTrustedOrigins([origin])
    } catch (error) {
      expect((error as TesseraError).code).toBe('config_invalid')
    }
  })

  it('serves a request without cookies and without these headers (CLI, another service)', () => {
    expect(check({})).toEqual({ allowed: true, reason: 'no_session' })
    expect(check({ headers: { secFetchSite: null, origin: null } })).toEqual({
      allowed: true,
      reason: 'no_session',
    })
    expect(check({ headers: { secFetchSite: '', origin: '  ' } })).toEqual({
      allowed: true,
      reason: 'no_session',
    })
  })

  it('serves a login from the site itself', () => {
    expect(
      check({ headers: { secFetchSite: 'same-origin', origin: 'https://app.example.com' } }),
    ).toEqual({
      allowed: true,
      reason: 'no_session',
    })
    expect(check({ headers: { secFetchSite: 'none' } })).toEqual({
      allowed: true,
      reason: 'no_session',
    })
  })

  it('needs proof from a cookie-authenticated request', () => {
    expect(check({ hasSessionCookie: true })).toMatchObject({
      allowed: false,
      reason: 'missing_proof',
    })
    expect(check({ hasSessionCookie: true, headers: { secFetchSite: 'none' } })).toMatchObject({
      allowed: false,
      reason: 'missing_proof',
    })
    expect(check({ hasSessionCookie: true, csrfTokenValid: false })).toMatchObject({
      allowed: false,
    })
    const refused = check({ hasSessionCookie: true })
    if (!refused.allowed) expect(refused.message).toMatch(/X-CSRF-Token/)
  })

  it('fails closed when a JavaScript caller passes non-booleans', () => {
    const loose = {
      hasSessionCookie: 'abc' as unknown as boolean,
      csrfTokenValid: 1 as unknown as boolean,
    }
    expect(check(loose)).toMatchObject({ allowed: false, reason: 'missing_proof' })
  })

  it('accepts each proof for a cookie-authenticated request', () => {
    expect(check({ hasSessionCookie: true, headers: { secFetchSite: 'same-origin' } })).toEqual({
      allowed: true,
      reason: 'same_origin',
    })
    expect(
      check({ hasSessionCookie: true, headers: { secFetchSite: 'Same-Origin' } }),
    ).toMatchObject({
      allowed: true,
    })
    expect(
      check({ hasSessionCookie: true, headers: { origin: 'https://app.example.com' } }),
    ).toEqual({
      allowed: true,
      reason: 'trusted_origin',
    })
    expect(check({ hasSessionCookie: true, csrfTokenValid: true })).toEqual({
      allowed: true,
      reason: 'valid_token',
    })
    expect(
      check({ hasSessionCookie: true, headers: { secFetchSite: 'none' }, csrfTokenValid: true }),
    ).toEqual({
      allowed: true,
      reason: 'valid_token',
    })
  })

  it('a valid token does not excuse a cross-site or untrusted-origin request', () => {
    expect(
      check({
        hasSessionCookie: true,
        csrfTokenValid: true,
        headers: { secFetchSite: 'cross-site' },
      }),
    ).toMatchObject({ allowed: false })
    expect(
      check({ hasSessionCookie: true, csrfTokenValid: true, headers: { origin: 'null' } }),
    ).toMatchObject({ allowed: false })
  })

  it('never lets an unsafe request through without one of the rules saying so (property)', () => {
    const trustedOrigins = createTrustedOrigins(['https://app.example.com'])
    fc.assert(
      fc.property(
        fc.constantFrom('POST', 'PUT', 'PATCH', 'DELETE', 'post'),
        fc.option(
          fc.oneof(
            fc.constantFrom('same-origin', 'same-site', 'cross-site', 'none', ''),
            fc.string(),
          ),
          { nil: undefined },
        ),
        fc.option(
          fc.oneof(
            fc.constantFrom('https://app.example.com', 'null', 'https://evil.example'),
            fc.string(),
          ),
          { nil: undefined },
        ),
        fc.boolean(),
        fc.boolean(),
        (method, secFetchSite, origin, hasSessionCookie, csrfTokenValid) => {
          const decision = checkCrossSite({
            method,
            headers: { secFetchSite, origin },
            trustedOrigins,
            hasSessionCookie,
            csrfTokenValid,
          })
          const site = secFetchSite?.trim().toLowerCase() ?? ''
          const givenOrigin = origin?.trim() ?? ''
          const siteOk = site === '' || site === 'same-origin' || site === 'none'
          const originOk = givenOrigin === '' || givenOrigin === 'https://app.example.com'
          if (decision.allowed) {
            expect(siteOk).toBe(true)
            if (givenOrigin !== '' && givenOrigin !== 'https://app.example.com') {
              // only other spellings of the trusted origin pass
              expect(givenOrigin.toLowerCase().replace(/(:443)?\/?$/, '')).toBe(
                'https://app.example.com',
              )
            }
            if (hasSessionCookie)
              expect(site === 'same-origin' || givenOrigin !== '' || csrfTokenValid).toBe(true)
          } else {
            expect(
              siteOk &&
                originOk &&
                (!hasSessionCookie ||
                  site === 'same-origin' ||
                  givenOrigin !== '' ||
                  csrfTokenValid),
            ).toBe(false)
          }
        },
      ),
      { numRuns: 1000 },
    )
  })
})

describe('isJSONContentType / isSafeMethod', () => {
  it.each([
    'application/json',
    'Application/JSON',
    'application/json; charset=utf-8',
    'APPLICATION/JSON;CHARSET=UTF-8',
    ' application/json ',
    'application/json ; charset="utf-8"',
  ])('accepts %j', (contentType) => {
    expect(isJSONContentType(contentType)).toBe(true)
  })

  it.each([
    undefined,
    null,
    '',
    'text/plain',
    'text/plain; application/json',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/jsonp',
    'application/json-patch+json',
    'application/vnd.api+json',
    'application/json, text/plain',
    'json',
    'application/ json',
  ])('refuses %j', (contentType) => {
    expect(isJSONContentType(contentType)).toBe(false)
  })

  it('knows the safe methods', () => {
    expect(['GET', 'head', 'OPTIONS', 'TRACE'].every(isSafeMethod)).toBe(true)
    expect(['POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'X'].some(isSafeMethod)).toBe(false)
  })
})

describe('createCSRFToken / verifyCSRFToken', () => {
  it('verifies for its session only', () => {
    const keyring = createKeyring(GOOD)
    const token = createCSRFToken(keyring, 'session-a')
    expect(token).toMatch(/^[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{86}$/)
    expect(verifyCSRFToken(keyring, 'session-a', token)).toBe(true)
    expect(verifyCSRFToken(keyring, 'session-b', token)).toBe(false)
    expect(verifyCSRFToken(createKeyring(OTHER), 'session-a', token)).toBe(false)
  })

  // SECURITY invariant (BREACH): the token differs on every call, yet each verifies.
  it('is masked afresh every time', () => {
    const keyring = createKeyring(GOOD)
    const tokens = new Set(Array.from({ length: 50 }, () => createCSRFToken(keyring, 'sid')))
    expect(tokens.size).toBe(50)
    for (const token of tokens) expect(verifyCSRFToken(keyring, 'sid', token)).toBe(true)
    // The random mask hides the HMAC: no 8-character run of the masked half repeats.
    const halves = [...tokens].map((token) => token.slice(52, 60))
    expect(new Set(halves).size).toBe(50)
  })

  it('verifies fallback tokens until the fallback is removed', () => {
    const token = createCSRFToken(createKeyring(OTHER), 'sid')
    expect(verifyCSRFToken(createKeyring(GOOD, { fallbacks: [OTHER] }), 'sid', token)).toBe(true)
    expect(verifyCSRFToken(createKeyring(GOOD), 'sid', token)).toBe(false)
  })

  it('is not a signValue signature and cannot be made by one', () => {
    const keyring = createKeyring(GOOD)
    expect(() => signValue(keyring, 'csrf', 'sid')).toThrow(/reserved/)
    const signed = signValue(keyring, 'session', 'sid')
    expect(verifyCSRFToken(keyring, 'sid', signed)).toBe(false)
  })

  // SECURITY invariant: one token, one accepted spelling (the decoder ignores spare bits).
  it('accepts only the canonical last character', () => {
    const keyring = createKeyring(GOOD)
    const token = createCSRFToken(keyring, 'sid')
    const accepted = [...BASE64URL, '+', '/'].filter((char) =>
      verifyCSRFToken(keyring, 'sid', token.slice(0, -1) + char),
    )
    expect(accepted).toEqual([token.slice(-1)])
  })

  it('refuses to make a token without a session id', () => {
    const keyring = createKeyring(GOOD)
    expect(() => createCSRFToken(keyring, '')).toThrow(TesseraError)
    expect(verifyCSRFToken(keyring, '', createCSRFToken(keyring, 'x'))).toBe(false)
  })

  it('rejects every single-character mutation, truncation and extension, and never throws', () => {
    const keyring = createKeyring(GOOD)
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 30 }),
        fc.nat(),
        fc.constantFrom(...BASE64URL, '.', '=', '+', '/'),
        fc.string({ minLength: 1, maxLength: 4 }),
        (sessionId, position, replacement, suffix) => {
          const token = createCSRFToken(keyring, sessionId)
          const index = position % token.length
          if (token[index] !== replacement) {
            const mutated = token.slice(0, index) + replacement + token.slice(index + 1)
            expect(verifyCSRFToken(keyring, sessionId, mutated)).toBe(false)
          }
          expect(verifyCSRFToken(keyring, sessionId, token.slice(0, index))).toBe(false)
          expect(verifyCSRFToken(keyring, sessionId, token + suffix)).toBe(false)
        },
      ),
      { numRuns: 500 },
    )
    fc.assert(
      fc.property(fc.anything(), (input) => {
        expect(verifyCSRFToken(keyring, 'sid', input)).toBe(false)
      }),
      { numRuns: 200 },
    )
  })
})
