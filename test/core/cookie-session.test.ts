import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createCookieSessions, type CookieSessionOptions } from '../../src/core/cookie-session.js'
import { TesseraError } from '../../src/core/errors.js'
import { createKeyring } from '../../src/core/keyring.js'
import { sealValue } from '../../src/core/sealing.js'
import {
  createMemoryGenerationStore,
  createStoreGenerationStore,
  type SessionGenerationStore,
} from '../../src/core/session-generations.js'
import { createMemoryStore } from '../../src/stores/memory.js'

const SECRET = 'n9K2vQ7xLp4RtY8wZs3FhJ6mC1bD5gE0aUoIiTeWqVr'
const OLD_SECRET = 'Xc7Pq2Lm9Rt4Vb8Nz1Hs6Kd3Fg5Jw0YaQeUiOoTyPpA'
const DAY = 86_400_000

function setup(options: CookieSessionOptions = {}, secret = SECRET) {
  let time = Date.UTC(2026, 0, 1)
  const now = (): number => time
  const keyring = createKeyring(secret)
  return {
    sessions: createCookieSessions(keyring, { now, ...options }),
    keyring,
    now,
    advance: (ms: number) => void (time += ms),
  }
}

/** The `Cookie` header a browser sends after applying `Set-Cookie` lines to `jar`. */
function browser(): { apply(lines: string[]): void; header(): string } {
  const jar = new Map<string, string>()
  return {
    apply(lines) {
      for (const line of lines) {
        const [pair] = line.split(';')
        const eq = pair!.indexOf('=')
        const name = pair!.slice(0, eq)
        if (/Max-Age=0(;|$)/.test(line)) jar.delete(name)
        else jar.set(name, pair!.slice(eq + 1))
      }
    },
    header: () => [...jar].map(([n, v]) => `${n}=${v}`).join('; '),
  }
}

function randomText(length: number): string {
  let out = ''
  while (out.length < length) out += Math.random().toString(36).slice(2)
  return out.slice(0, length)
}

describe('createCookieSessions', () => {
  it('seals a session into one HttpOnly cookie that lives until the absolute expiry', async () => {
    const { sessions } = setup()
    const { setCookie, session } = await sessions.create('u1', { data: { theme: 'dark' } })
    expect(setCookie).toHaveLength(1)
    expect(setCookie[0]).toMatch(
      /^tessera_state=s1\.[^;]+; Max-Age=2592000; Path=\/; HttpOnly; SameSite=Lax$/,
    )
    expect(setCookie[0]).not.toContain('dark')
    const b = browser()
    b.apply(setCookie)
    const found = await sessions.validate(`x=1; ${b.header()}`)
    expect(found).toEqual({ session })
    expect(session.data).toEqual({ theme: 'dark' })
    expect(session.absoluteExpiresAt - session.createdAt).toBe(30 * DAY)
  })

  it('uses __Host- with secure: true', async () => {
    const { sessions } = setup({ secure: true })
    expect(sessions.cookieName).toBe('__Host-tessera_state')
    const { setCookie } = await sessions.create(null)
    expect(setCookie[0]).toContain('; Secure; HttpOnly')
  })

  it('SECURITY: a tampered, re-purposed or foreign cookie opens as null and never throws', async () => {
    const { sessions, keyring } = setup()
    const { setCookie } = await sessions.create('u1')
    const value = setCookie[0]!.split(';')[0]!.split('=')[1]!
    const flipped = value.slice(0, -3) + (value.at(-3) === 'A' ? 'B' : 'A') + value.slice(-2)
    const otherPurpose = sealValue(keyring, 'other', JSON.stringify({ v: 1 }))
    const foreign = (await setup({}, OLD_SECRET).sessions.create('u1')).setCookie[0]!.split(';')[0]!
    for (const header of [
      `tessera_state=${flipped}`,
      `tessera_state=${otherPurpose}`,
      foreign,
      `tessera_state=${value.slice(0, 40)}`,
      'tessera_state=',
      'tessera_state.0=abc',
    ]) {
      expect(await sessions.validate(header)).toBeNull()
    }
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), async (text) => {
        expect(await sessions.validate(text)).toBeNull()
        expect(await sessions.validate(`tessera_state=${text}`)).toBeNull()
      }),
      { numRuns: 300 },
    )
  })

  it('rejects a well-sealed payload of the wrong shape', async () => {
    const { sessions, keyring } = setup()
    for (const text of ['null', '[]', '{"v":2}', 'not json', '{"v":1,"u":1}']) {
      const sealed = sealValue(keyring, 'cookie-session', text)
      expect(await sessions.validate(`tessera_state=${sealed}`)).toBeNull()
    }
  })

  it('SECURITY: ends at the idle limit, slides with activity, and ends an active user at the absolute limit', async () => {
    const idle = setup()
    const first = browser()
    first.apply((await idle.sessions.create('u1')).setCookie)
    idle.advance(7 * DAY)
    expect(await idle.sessions.validate(first.header())).toBeNull()

    const { sessions, advance } = setup()
    const b = browser()
    b.apply((await sessions.create('u1')).setCookie)
    for (let day = 1; day < 30; day++) {
      advance(DAY)
      const found = await sessions.validate(b.header())
      expect(found).not.toBeNull()
      // A day is past a tenth of the idle window: the idle expiry moves, in a new cookie.
      expect(found!.setCookie).toBeDefined()
      b.apply(found!.setCookie!)
    }
    advance(DAY)
    expect(await sessions.validate(b.header())).toBeNull()
  })

  it('re-seals at most once per tenth of the idle window', async () => {
    const { sessions, advance } = setup()
    const b = browser()
    b.apply((await sessions.create('u1')).setCookie)
    const tenth = (7 * DAY) / 10
    advance(tenth - 1)
    expect((await sessions.validate(b.header()))!.setCookie).toBeUndefined()
    advance(1)
    const touched = await sessions.validate(b.header())
    expect(touched!.setCookie).toHaveLength(1)
    b.apply(touched!.setCookie!)
    advance(tenth / 2)
    expect((await sessions.validate(b.header()))!.setCookie).toBeUndefined()
  })

  it('re-seals a cookie sealed under a fallback secret', async () => {
    const before = setup({}, OLD_SECRET)
    const b = browser()
    b.apply((await before.sessions.create('u1', { data: { a: 1 } })).setCookie)
    const rotated = createCookieSessions(createKeyring(SECRET, { fallbacks: [OLD_SECRET] }), {
      now: before.now,
    })
    const found = await rotated.validate(b.header())
    expect(found!.setCookie).toHaveLength(1)
    b.apply(found!.setCookie!)
    const current = createCookieSessions(createKeyring(SECRET), { now: before.now })
    expect((await current.validate(b.header()))!.session.data).toEqual({ a: 1 })
  })

  it('splits a large session into chunks, joins them, and deletes stale chunks when it shrinks', async () => {
    const { sessions } = setup()
    const b = browser()
    const big = await sessions.create('u1', { data: { blob: randomText(4500) } })
    expect(big.setCookie.map((line) => line.split('=')[0])).toEqual([
      'tessera_state.0',
      'tessera_state.1',
    ])
    b.apply(big.setCookie)
    const found = await sessions.validate(b.header())
    expect(found!.session.data.blob).toHaveLength(4500)
    const small = sessions.update(found!.session, { blob: undefined }, { cookieHeader: b.header() })
    b.apply(small.setCookie)
    expect(b.header()).toMatch(/^tessera_state=s1\./)
    expect((await sessions.validate(b.header()))!.session.data).toEqual({})
    expect(sessions.clearCookie(big.setCookie.map((l) => l.split(';')[0]).join('; '))).toHaveLength(
      3,
    )
  })

  it('throws cookie_too_large before the cookies pass the budget', async () => {
    const { sessions } = setup()
    await expect(sessions.create('u1', { data: { blob: randomText(9000) } })).rejects.toMatchObject(
      { code: 'cookie_too_large' },
    )
    const tight = setup({ maxTotalSize: 1000 }).sessions
    const { session } = await tight.create('u1', { data: { a: randomText(100) } })
    expect(() => tight.update(session, { b: randomText(1000) })).toThrow(TesseraError)
    expect(() => tight.update(session, { b: randomText(1000) })).toThrow(
      /maxTotalSize|budget|bytes/,
    )
  })

  it('merges updates key by key; undefined removes a key', async () => {
    const { sessions } = setup()
    const { session } = await sessions.create('u1', { data: { a: 1, b: 2 } })
    const updated = sessions.update(session, { b: undefined, c: [1] })
    expect(updated.session.data).toEqual({ a: 1, c: [1] })
    const b = browser()
    b.apply(updated.setCookie)
    expect((await sessions.validate(b.header()))!.session.data).toEqual({ a: 1, c: [1] })
  })

  it('cannot revoke without generations, and says so', async () => {
    const { sessions } = setup()
    await expect(sessions.revokeAll('u1')).rejects.toMatchObject({ code: 'config_invalid' })
  })

  const generationStores: [string, (now: () => number) => SessionGenerationStore][] = [
    ['memory generations', () => createMemoryGenerationStore()],
    [
      'SessionStore-backed generations',
      (now) => createStoreGenerationStore(createMemoryStore({ now, sweepInterval: 0 }), { now }),
    ],
  ]
  for (const [name, make] of generationStores) {
    it(`SECURITY: "log out everywhere" bumps the generation and kills older cookies (${name})`, async () => {
      let time = Date.UTC(2026, 0, 1)
      const now = (): number => time
      const generations = make(now)
      const sessions = createCookieSessions(createKeyring(SECRET), { now, generations })
      const phone = browser()
      const laptop = browser()
      const other = browser()
      phone.apply((await sessions.create('u1')).setCookie)
      laptop.apply((await sessions.create('u1')).setCookie)
      other.apply((await sessions.create('u2')).setCookie)
      time += 1000
      expect(await sessions.revokeAll('u1')).toBe(1)
      expect(await sessions.validate(phone.header())).toBeNull()
      expect(await sessions.validate(laptop.header())).toBeNull()
      expect(await sessions.validate(other.header())).not.toBeNull()
      const fresh = browser()
      fresh.apply((await sessions.create('u1')).setCookie)
      expect((await sessions.validate(fresh.header()))!.session.generation).toBe(1)
      expect(await sessions.revokeAll('u1')).toBe(2)
      expect(await sessions.validate(fresh.header())).toBeNull()
    })
  }

  it('a generation store that lost its record signs users out rather than reviving cookies', async () => {
    let lost = false
    const real = createMemoryGenerationStore()
    const forgetful: SessionGenerationStore = {
      get: async (userId) => (lost ? 0 : real.get(userId)),
      bump: (userId) => real.bump(userId),
    }
    const { keyring, now } = setup()
    const sessions = createCookieSessions(keyring, { now, generations: forgetful })
    await sessions.revokeAll('u1')
    const b = browser()
    b.apply((await sessions.create('u1')).setCookie)
    expect(await sessions.validate(b.header())).not.toBeNull()
    lost = true
    expect(await sessions.validate(b.header())).toBeNull()
  })

  it('propagates generation store failures instead of returning null', async () => {
    const down = new TesseraError('store_unavailable', 'down')
    const broken: SessionGenerationStore = {
      get: () => Promise.reject(down),
      bump: () => Promise.reject(down),
    }
    const plain = setup()
    const b = browser()
    b.apply((await plain.sessions.create('u1')).setCookie)
    const sessions = createCookieSessions(plain.keyring, { now: plain.now, generations: broken })
    await expect(sessions.validate(b.header())).rejects.toMatchObject({ code: 'store_unavailable' })
    await expect(sessions.revokeAll('u1')).rejects.toMatchObject({ code: 'store_unavailable' })
  })
})

describe('cookie sessions: sliding off, and cookies sent twice', () => {
  it('sliding: false re-seals on reads only to retire a fallback secret', async () => {
    const { sessions, advance } = setup({
      idleTimeout: 3600,
      absoluteTimeout: 3600,
      sliding: false,
    })
    const jar = browser()
    jar.apply((await sessions.create('u1', { data: { a: 1 } })).setCookie)
    advance(3000_000)
    const read = await sessions.validate(jar.header())
    expect(read?.setCookie).toBeUndefined()
    expect(read?.session.data).toEqual({ a: 1 })
    advance(700_000)
    expect(await sessions.validate(jar.header())).toBeNull()
    // Under a rotated secret the read re-seals, without moving the expiry.
    const old = setup({ idleTimeout: 3600, absoluteTimeout: 3600, sliding: false }, OLD_SECRET)
    const oldJar = browser()
    oldJar.apply((await old.sessions.create('u2')).setCookie)
    const rotated = createCookieSessions(createKeyring(SECRET, { fallbacks: [OLD_SECRET] }), {
      idleTimeout: 3600,
      absoluteTimeout: 3600,
      sliding: false,
      now: old.now,
    })
    const resealed = await rotated.validate(oldJar.header())
    expect(resealed?.setCookie?.length).toBeGreaterThan(0)
    expect(resealed?.session.expiresAt).toBe(resealed?.session.absoluteExpiresAt)
  })

  it('reads a cookie or a chunk sent twice as no session (cookie tossing)', async () => {
    const { sessions } = setup()
    const mine = browser()
    mine.apply((await sessions.create('me')).setCookie)
    const theirs = browser()
    theirs.apply((await sessions.create('them')).setCookie)
    expect((await sessions.validate(mine.header()))?.session.userId).toBe('me')
    expect(await sessions.validate(`${mine.header()}; ${theirs.header()}`)).toBeNull()
    const big = browser()
    big.apply((await sessions.create('me', { data: { text: randomText(5000) } })).setCookie)
    const bigOther = browser()
    bigOther.apply((await sessions.create('them', { data: { text: randomText(5000) } })).setCookie)
    expect((await sessions.validate(big.header()))?.session.userId).toBe('me')
    expect(big.header()).toContain(`${sessions.cookieName}.1=`)
    expect(await sessions.validate(`${bigOther.header()}; ${big.header()}`)).toBeNull()
  })
})
