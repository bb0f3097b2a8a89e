import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  DEFAULT_COOKIE_BUDGET,
  joinCookieChunks,
  parseCookieHeader,
  readCookie,
  serializeChunkedCookie,
  serializeCookie,
  serializeDeletedChunkedCookie,
  serializeDeletedCookie,
} from '../../src/core/cookie.js'
import { TesseraError } from '../../src/core/errors.js'

/** What a browser sends back after receiving `lines`: the set cookies, not the deletions. */
function browserCookieHeader(lines: readonly string[], jar: Record<string, string> = {}): string {
  const cookies = { ...jar }
  for (const line of lines) {
    const pair = line.slice(0, line.indexOf(';'))
    const name = pair.slice(0, pair.indexOf('='))
    if (line.includes('; Max-Age=0')) delete cookies[name]
    else cookies[name] = pair.slice(pair.indexOf('=') + 1)
  }
  return Object.entries(cookies)
    .map(([name, value]) => `${name}=${value}`)
    .join('; ')
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
function pattern(length: number): string {
  let out = ''
  for (let index = 0; index < length; index++) out += ALPHABET[(index * 13 + 5) % 64]
  return out
}

describe('parseCookieHeader', () => {
  it('parses pairs, trims, unquotes, decodes and keeps the first of a name', () => {
    const cookies = parseCookieHeader(' a=1; b = two ;c="q v";d=%E2%9C%93;a=ignored; e=%ZZ; =x; f')
    expect({ ...cookies }).toEqual({ a: '1', b: 'two', c: 'q v', d: '✓', e: '%ZZ' })
  })

  it('returns an empty null-prototype record for nothing', () => {
    for (const header of [undefined, null, '', ';;;', 'novalue']) {
      const cookies = parseCookieHeader(header)
      expect(Object.keys(cookies)).toEqual([])
      expect(Object.getPrototypeOf(cookies)).toBeNull()
    }
  })

  it('keeps __proto__ and constructor as plain data', () => {
    const cookies = parseCookieHeader('__proto__=x; constructor=y; toString=z')
    expect(cookies['__proto__']).toBe('x')
    expect(cookies.constructor).toBe('y')
    expect(({} as Record<string, unknown>).x).toBeUndefined()
  })

  it('stops at maxPairs and maxLength', () => {
    const header = Array.from({ length: 5000 }, (_, index) => `c${index}=${index}`).join('; ')
    expect(Object.keys(parseCookieHeader(header))).toHaveLength(256)
    expect(Object.keys(parseCookieHeader(header, { maxPairs: 10 }))).toHaveLength(10)
    expect(Object.keys(parseCookieHeader('a=1; b=2; c=3', { maxLength: 9 }))).toEqual(['a', 'b'])
  })

  // SECURITY invariant: linear time. Searching for '=' from every segment rescans the '='-less
  // tail each time: with 2 million ';' that is ~2e12 character steps (about a minute) and this test times out; linear
  // parsing takes milliseconds. (No timing assertion: the suite's timeout is the bound.)
  it('stays linear on a long run of separators without "="', () => {
    const header = ';'.repeat(2_000_000) + 'a=1'
    expect(parseCookieHeader(header, { maxLength: 5_000_000 }).a).toBe('1')
    const spaces = 'x'.repeat(2_000_000) + ';' + ' ;'.repeat(1_000_000) + 'b=2'
    expect(parseCookieHeader(spaces, { maxLength: 5_000_000 }).b).toBe('2')
  })

  it('no generated header makes it throw, and the result stays bounded', () => {
    const header = fc.oneof(
      fc.string({ maxLength: 400 }),
      fc.string({ unit: 'binary', maxLength: 400 }),
      fc
        .array(
          fc.tuple(
            fc.string({ maxLength: 12 }),
            fc.constantFrom('=', '==', '', ' = '),
            fc.string({ maxLength: 20 }),
          ),
          { maxLength: 40 },
        )
        .map((pairs) => pairs.map(([k, eq, v]) => `${k}${eq}${v}`).join(';')),
      fc
        .array(fc.constantFrom(';', '=', '"', '%', ' ', 'a', '%E2', '%80', '\u0000'), {
          maxLength: 300,
        })
        .map((parts) => parts.join('')),
    )
    fc.assert(
      fc.property(header, fc.integer({ min: 1, max: 300 }), (text, maxPairs) => {
        const cookies = parseCookieHeader(text, { maxPairs })
        expect(Object.keys(cookies).length).toBeLessThanOrEqual(maxPairs)
        for (const value of Object.values(cookies)) expect(typeof value).toBe('string')
      }),
      { numRuns: 1000 },
    )
  })

  it('bounds huge headers', () => {
    const huge = `a=${'x'.repeat(10_000_000)}`
    expect(parseCookieHeader(huge).a).toHaveLength(65_536 - 2)
    const many = 'k=v;'.repeat(1_000_000)
    expect(Object.keys(parseCookieHeader(many, { maxLength: 4_000_000 }))).toEqual(['k'])
  })
})

describe('readCookie', () => {
  const names = ['tessera_session', 'a', 'xtessera_session', 'tessera_session2']
  const header = fc
    .array(
      fc.tuple(
        fc.oneof(fc.constantFrom(...names), fc.string({ maxLength: 6 })),
        fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('"q"', '%41', '%E0%A4%A', ' v ')),
        fc.constantFrom(';', '; ', ' ;', ';;'),
      ),
      { maxLength: 8 },
    )
    .map((pairs) => pairs.map(([n, v, sep]) => `${n}=${v}${sep}`).join(''))

  it('reads one cookie as parseCookieHeader reads it, a name sent twice as none', () => {
    fc.assert(
      fc.property(header, fc.constantFrom(...names), (text, name) => {
        expect(readCookie(text, name)).toBe(parseCookieHeader(text, { duplicates: 'none' })[name])
        const once = parseCookieHeader(text)[name]
        const count = text
          .split(';')
          .filter(
            (pair) => pair.includes('=') && pair.slice(0, pair.indexOf('=')).trim() === name,
          ).length
        expect(readCookie(text, name)).toBe(count === 1 ? once : undefined)
      }),
      { numRuns: 1000 },
    )
  })

  it('treats a tossed duplicate as none wherever it is, also past the pairs a record keeps', () => {
    // SECURITY: cookie tossing (API.md, issue 12.4): a sibling host adds a second cookie of the
    // same name; the first one would win in a first-wins reader, whichever of the two it is.
    expect(readCookie('tessera_session=a; tessera_session=b', 'tessera_session')).toBeUndefined()
    expect(
      readCookie('tessera_session=a;x=1; tessera_session =a', 'tessera_session'),
    ).toBeUndefined()
    const padding = Array.from({ length: 400 }, (_, index) => `p${index}=v`).join('; ')
    expect(readCookie(`tessera_session=a; ${padding}`, 'tessera_session')).toBe('a')
    expect(
      readCookie(`tessera_session=a; ${padding}; tessera_session=b`, 'tessera_session'),
    ).toBeUndefined()
    expect(readCookie('x=1; tessera_session="v%41"', 'tessera_session')).toBe('vA')
    expect(readCookie('', 'a')).toBeUndefined()
    expect(readCookie(undefined, 'a')).toBeUndefined()
    expect(readCookie('tessera_session2=a', 'tessera_session')).toBeUndefined()
  })

  it('reads a header of separators without an "=" in linear time', () => {
    // The scan keeps the position of the next "=" (as parseCookieHeader does); searching again
    // from every ";" made 64 KiB of ";;;;" cost seconds.
    const text = `${';'.repeat(200_000)}tessera_session=v`
    expect(readCookie(text, 'tessera_session')).toBe('v')
    expect(readCookie(`${'tessera_session;'.repeat(20_000)}=v`, 'tessera_session')).toBeUndefined()
  })

  it('parseCookieHeader with duplicates: none leaves a name sent twice out', () => {
    expect(parseCookieHeader('a=1; b=2; a=3', { duplicates: 'none' })).toEqual({ b: '2' })
    expect(parseCookieHeader('a=1; b=2; a=3')).toEqual({ a: '1', b: '2' })
  })
})

describe('serializeCookie', () => {
  it('writes defaults and attributes', () => {
    expect(serializeCookie('sid', 'abc')).toBe('sid=abc; Path=/; HttpOnly; SameSite=Lax')
    expect(
      serializeCookie('__Host-sid', 'v', { secure: true, maxAge: 60, sameSite: 'Strict' }),
    ).toBe('__Host-sid=v; Max-Age=60; Path=/; Secure; HttpOnly; SameSite=Strict')
    expect(serializeDeletedCookie('sid')).toBe(
      'sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Lax',
    )
  })

  it.each([
    ['bad name', (): string => serializeCookie('a b', 'v')],
    ['bad value', (): string => serializeCookie('a', 'v;x')],
    ['__Host- without secure', (): string => serializeCookie('__Host-a', 'v')],
    [
      '__Host- with domain',
      (): string => serializeCookie('__Host-a', 'v', { secure: true, domain: 'x.com' }),
    ],
    ['__Secure- without secure', (): string => serializeCookie('__Secure-a', 'v')],
    ['SameSite=None without secure', (): string => serializeCookie('a', 'v', { sameSite: 'None' })],
  ])('refuses %s', (_, call) => {
    expect(call).toThrow(TesseraError)
  })
})

describe('serializeChunkedCookie / joinCookieChunks', () => {
  it('keeps a value that fits under its own name', () => {
    const lines = serializeChunkedCookie('app', 'small')
    expect(lines).toEqual(['app=small; Path=/; HttpOnly; SameSite=Lax'])
    expect(joinCookieChunks(parseCookieHeader(browserCookieHeader(lines)), 'app')).toBe('small')
  })

  it('splits a long value into name.0, name.1, … each within 4096 bytes, and joins it back', () => {
    const value = pattern(7000)
    const lines = serializeChunkedCookie('app', value, { secure: true })
    expect(lines.map((line) => line.slice(0, line.indexOf('=')))).toEqual(['app.0', 'app.1'])
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(4096)
    expect(lines[0]).toHaveLength(4096)
    const cookies = parseCookieHeader(browserCookieHeader(lines))
    expect(joinCookieChunks(cookies, 'app')).toBe(value)
  })

  it('a value exactly at the limit stays one cookie; one more byte makes two chunks', () => {
    const overhead = serializeCookie('app', '').length
    const fits = pattern(4096 - overhead)
    expect(serializeChunkedCookie('app', fits)).toHaveLength(1)
    expect(serializeChunkedCookie('app', fits + 'A')).toHaveLength(2)
  })

  it('deletes stale chunks when the value shrinks, and the plain cookie when it grows', () => {
    const long = pattern(12_000)
    const first = serializeChunkedCookie('app', long, {}, { maxTotalSize: 16_384 })
    expect(first).toHaveLength(3)
    const jar = parseCookieHeader(browserCookieHeader(first))

    const shorter = serializeChunkedCookie('app', pattern(5000), {}, { existing: jar })
    expect(shorter.map((line) => line.slice(0, line.indexOf(';')))).toEqual([
      expect.stringMatching(/^app\.0=/),
      expect.stringMatching(/^app\.1=/),
      'app.2=',
    ])
    const afterShrink = parseCookieHeader(browserCookieHeader(shorter, { ...jar }))
    expect(joinCookieChunks(afterShrink, 'app')).toBe(pattern(5000))

    const tiny = serializeChunkedCookie('app', 'x', {}, { existing: afterShrink })
    expect(tiny).toHaveLength(3)
    const afterTiny = parseCookieHeader(browserCookieHeader(tiny, { ...afterShrink }))
    expect({ ...afterTiny }).toEqual({ app: 'x' })

    const grown = serializeChunkedCookie(
      'app',
      long,
      {},
      { existing: afterTiny, maxTotalSize: 16_384 },
    )
    expect(grown.at(-1)).toMatch(/^app=; Max-Age=0/)
    const afterGrow = parseCookieHeader(browserCookieHeader(grown, { ...afterTiny }))
    expect(joinCookieChunks(afterGrow, 'app')).toBe(long)
  })

  it('deletes with the same path, domain and secure it set', () => {
    const lines = serializeChunkedCookie(
      '__Secure-app',
      'x',
      { secure: true, path: '/api', domain: 'example.com' },
      { existing: { '__Secure-app.0': 'a' } },
    )
    expect(lines[1]).toBe(
      '__Secure-app.0=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Domain=example.com; Path=/api; Secure; HttpOnly; SameSite=Lax',
    )
  })

  it('keeps __Host- chunks valid __Host- cookies', () => {
    const lines = serializeChunkedCookie('__Host-s', pattern(6000), { secure: true })
    expect(lines.map((line) => line.slice(0, 10))).toEqual(['__Host-s.0', '__Host-s.1'])
    expect(() => serializeChunkedCookie('__Host-s', pattern(6000))).toThrow(/__Host-/)
  })

  it('refuses a set over the header budget with sizes, never the value', () => {
    const value = pattern(9000)
    try {
      serializeChunkedCookie('app', value)
      expect.unreachable()
    } catch (error) {
      expect(error).toBeInstanceOf(TesseraError)
      expect((error as TesseraError).code).toBe('cookie_too_large')
      expect((error as Error).message).toContain(String(DEFAULT_COOKIE_BUDGET))
      expect((error as Error).message).toContain('9004')
      expect((error as Error).message).not.toContain(value.slice(0, 16))
    }
    // Chunk names and separators count too: 8180 bytes of value take 8202 bytes in three chunks (each line also holds attributes).
    expect(() => serializeChunkedCookie('app', pattern(8180))).toThrow(/needs 8202 bytes/)
    expect(serializeChunkedCookie('app', pattern(8180), {}, { maxTotalSize: 9000 })).toHaveLength(3)
    expect(() => serializeChunkedCookie('app', pattern(300), {}, { maxTotalSize: 100 })).toThrow(
      /cookie "app" needs at least 304 bytes/,
    )
  })

  it('refuses more chunks than maxChunks, and attributes that leave no room', () => {
    expect(() =>
      serializeChunkedCookie('app', pattern(5000), {}, { maxCookieSize: 1000, maxChunks: 4 }),
    ).toThrow(/maxChunks \(4\)/)
    expect(() =>
      serializeChunkedCookie(
        'app',
        pattern(5000),
        { path: `/${'p'.repeat(200)}` },
        { maxCookieSize: 200 },
      ),
    ).toThrow(/no room/)
    expect(() => serializeChunkedCookie('app', 'x', {}, { maxTotalSize: 0 })).toThrow(
      /maxTotalSize/,
    )
  })

  it('joins only a complete, canonical, bounded set of chunks', () => {
    const join = (header: string): string | null =>
      joinCookieChunks(parseCookieHeader(header), 'app')
    expect(join('app.0=a; app.1=b; app.2=c')).toBe('abc')
    expect(join('app.1=b; app.0=a')).toBe('ab')
    expect(join('other=1')).toBeNull()
    expect(join('app.0=a; app.2=c')).toBeNull() // gap
    expect(join('app.1=b')).toBeNull() // no first chunk
    expect(join('app.0=a; app.1=')).toBeNull() // empty chunk
    expect(join('app.0=a; app.01=b')).toBeNull() // non-canonical number
    expect(join('app.0=a; app.10=b')).toBeNull() // at or above maxChunks
    expect(join('app.0=a; app.99999999999999999999=b')).toBeNull()
    expect(join('app=x; app.0=a')).toBeNull() // both forms at once
    expect(join('app=x; app.sig=s')).toBe('x') // not chunks
    expect(join('app.0=a; app.sig=s')).toBe('a')
    expect(
      joinCookieChunks(parseCookieHeader('app.0=a; app.1=b'), 'app', { maxChunks: 1 }),
    ).toBeNull()
  })

  it('bounds the join on a forged header of many chunks', () => {
    const header = Array.from({ length: 5000 }, (_, index) => `app.${index}=x`).join('; ')
    expect(joinCookieChunks(parseCookieHeader(header), 'app')).toBeNull()
    const ten = Array.from({ length: 10 }, (_, index) => `app.${index}=x`).join('; ')
    expect(joinCookieChunks(parseCookieHeader(ten), 'app')).toBe('x'.repeat(10))
  })

  it('deletes every form on logout', () => {
    const lines = serializeDeletedChunkedCookie('app', parseCookieHeader('app.0=a; app.1=b; x=1'))
    expect(lines.map((line) => line.slice(0, line.indexOf('=')))).toEqual(['app', 'app.0', 'app.1'])
    for (const line of lines) expect(line).toContain('Max-Age=0')
  })

  it('round-trips any cookie-safe value within the budget', () => {
    fc.assert(
      fc.property(
        fc.string({
          unit: fc.constantFrom(...ALPHABET, '.', '~', '!'),
          minLength: 1,
          maxLength: 15_000,
        }),
        fc.integer({ min: 300, max: 4096 }),
        (value, maxCookieSize) => {
          const lines = serializeChunkedCookie(
            's',
            value,
            {},
            { maxCookieSize, maxTotalSize: 20_000, maxChunks: 60 },
          )
          for (const line of lines) expect(line.length).toBeLessThanOrEqual(maxCookieSize)
          const cookies = parseCookieHeader(browserCookieHeader(lines), { maxLength: 100_000 })
          expect(joinCookieChunks(cookies, 's', { maxChunks: 60 })).toBe(value)
        },
      ),
      { numRuns: 100 },
    )
  })
})
