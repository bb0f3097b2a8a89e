// Known-answer vectors: they freeze the wire formats. A format change logs every user out, so a
// vector changes only with a breaking-change entry in CHANGELOG.md. Each format is also checked
// against an independent implementation of its spec (node:crypto only), not just our round trip.
import { createDecipheriv, createHmac, hkdfSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  joinCookieChunks,
  parseCookieHeader,
  serializeChunkedCookie,
} from '../../src/core/cookie.js'
import type { CookieAttributes, ChunkedCookieOptions } from '../../src/core/cookie.js'
import { createCSRFToken, verifyCSRFToken } from '../../src/core/csrf.js'
import { createKeyring } from '../../src/core/keyring.js'
import { sealValue, unsealValue } from '../../src/core/sealing.js'
import { signValue, verifyValue } from '../../src/core/signing.js'

function load<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../vectors/${name}.json`, import.meta.url), 'utf8')) as T
}

/** The spec of key derivation: HKDF-SHA256(secret, salt "tessera/v1", info "purpose:<p>"). */
function specKey(secret: string, purpose: string): Buffer {
  return Buffer.from(
    hkdfSync('sha256', Buffer.from(secret), 'tessera/v1', `purpose:${purpose}`, 32),
  )
}

interface SigningVectors {
  secret: string
  fallbackSecret: string
  kids: { secret: string; fallbackSecret: string }
  cases: {
    purpose: string
    value: string
    timestamp?: number
    signedWith?: 'fallbackSecret'
    signed: string
  }[]
}

describe('signing vectors', () => {
  const vectors = load<SigningVectors>('signing')
  const keyring = createKeyring(vectors.secret, { fallbacks: [vectors.fallbackSecret] })

  it('keeps the key ids', () => {
    expect(keyring.kids).toEqual([vectors.kids.secret, vectors.kids.fallbackSecret])
  })

  it.each(vectors.cases)('$purpose $value', (vector) => {
    const verified = verifyValue(keyring, vector.purpose, vector.signed)
    expect(verified).toEqual({
      value: vector.value,
      timestamp: vector.timestamp ?? null,
      kid: vector.signedWith === undefined ? vectors.kids.secret : vectors.kids.fallbackSecret,
      needsResign: vector.signedWith !== undefined,
    })
    const secret = vector.signedWith === undefined ? vectors.secret : vectors.fallbackSecret
    // Signing is deterministic: the same input gives the frozen string.
    const signer = createKeyring(secret)
    const options =
      vector.timestamp === undefined
        ? {}
        : { timestamp: true, now: (): number => (vector.timestamp as number) * 1000 }
    expect(signValue(signer, vector.purpose, vector.value, options)).toBe(vector.signed)
    // Independent implementation of the format.
    const tagDot = vector.signed.lastIndexOf('.')
    const tag = createHmac('sha256', specKey(secret, vector.purpose))
      .update(vector.signed.slice(0, tagDot))
      .digest('base64url')
    expect(vector.signed.slice(tagDot + 1)).toBe(tag)
  })
})

interface SealingVectors {
  secret: string
  fallbackSecret: string
  cases: {
    purpose: string
    value: string
    expiresAt: number | null
    sealedWith?: 'fallbackSecret'
    sealed: string
  }[]
}

describe('sealing vectors', () => {
  const vectors = load<SealingVectors>('sealing')
  const keyring = createKeyring(vectors.secret, { fallbacks: [vectors.fallbackSecret] })
  const before = (): number => 1_700_000_000_000

  it.each(vectors.cases)('$purpose $value', (vector) => {
    const opened = unsealValue(keyring, vector.purpose, vector.sealed, { now: before })
    expect(opened).toEqual({
      value: vector.value,
      expiresAt: vector.expiresAt,
      kid: createKeyring(vector.sealedWith === undefined ? vectors.secret : vectors.fallbackSecret)
        .currentKid,
      needsReseal: vector.sealedWith !== undefined,
    })
    // Independent implementation of the format.
    const secret = vector.sealedWith === undefined ? vectors.secret : vectors.fallbackSecret
    const kid = vector.sealed.slice(3, 11)
    expect(vector.sealed.slice(0, 3)).toBe('s1.')
    const blob = Buffer.from(vector.sealed.slice(12), 'base64url')
    const decipher = createDecipheriv('aes-256-gcm', specKey(secret, 'seal'), blob.subarray(0, 12))
    decipher.setAAD(Buffer.from(`tessera-seal/v1.${kid}.${vector.purpose}`))
    decipher.setAuthTag(blob.subarray(blob.length - 16))
    const plain = Buffer.concat([
      decipher.update(blob.subarray(12, blob.length - 16)),
      decipher.final(),
    ])
    if (vector.expiresAt === null) {
      expect(plain[0]).toBe(0)
      expect(plain.subarray(1).toString('utf8')).toBe(vector.value)
    } else {
      expect(plain[0]).toBe(1)
      expect(plain.readUIntBE(1, 6)).toBe(vector.expiresAt)
      expect(plain.subarray(7).toString('utf8')).toBe(vector.value)
    }
  })

  it('an expiring vector stops opening at its expiry', () => {
    const vector = vectors.cases.find((candidate) => candidate.expiresAt !== null)!
    const at = (ms: number) => (): number => ms
    const expiresAt = vector.expiresAt as number
    expect(
      unsealValue(keyring, vector.purpose, vector.sealed, { now: at(expiresAt - 1) }),
    ).not.toBeNull()
    expect(unsealValue(keyring, vector.purpose, vector.sealed, { now: at(expiresAt) })).toBeNull()
  })

  it('today’s sealValue output has the same shape', () => {
    const sealed = sealValue(keyring, 'session', 'x')
    expect(sealed).toMatch(/^s1\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]+$/)
    // nonce 12 + flags 1 + value 1 + tag 16 = 30 bytes = 40 base64url characters
    expect(sealed.length).toBe(12 + 40)
  })
})

interface CSRFVectors {
  secret: string
  cases: { sessionId: string; token: string }[]
}

describe('CSRF token vectors', () => {
  const vectors = load<CSRFVectors>('csrf')
  const keyring = createKeyring(vectors.secret)

  it.each(vectors.cases)('$sessionId', (vector) => {
    expect(verifyCSRFToken(keyring, vector.sessionId, vector.token)).toBe(true)
    expect(verifyCSRFToken(keyring, `${vector.sessionId}x`, vector.token)).toBe(false)
    // Independent implementation: unmask and compare with the HMAC of the spec.
    const bytes = Buffer.from(vector.token.slice(9), 'base64url')
    const unmasked = Buffer.alloc(32)
    for (let index = 0; index < 32; index++) unmasked[index] = bytes[index]! ^ bytes[32 + index]!
    const expected = createHmac('sha256', specKey(vectors.secret, 'csrf'))
      .update(`tessera-csrf/v1\0${vector.sessionId}`)
      .digest()
    expect(unmasked.equals(expected)).toBe(true)
    expect(createCSRFToken(keyring, vector.sessionId)).toHaveLength(vector.token.length)
  })
})

interface ChunkingVectors {
  cases: {
    name: string
    value: string
    attributes: CookieAttributes
    options: ChunkedCookieOptions
    setCookie: string[]
  }[]
}

describe('chunking vectors', () => {
  const vectors = load<ChunkingVectors>('chunking')

  it.each(vectors.cases)('$name, $value.length characters', (vector) => {
    expect(
      serializeChunkedCookie(vector.name, vector.value, vector.attributes, vector.options),
    ).toEqual(vector.setCookie)
    // What the browser sends back (the cookies set, not the deletions) joins to the value.
    const header = vector.setCookie
      .filter((line) => !line.includes('Max-Age=0'))
      .map((line) => line.slice(0, line.indexOf(';')))
      .join('; ')
    expect(joinCookieChunks(parseCookieHeader(header), vector.name)).toBe(vector.value)
  })
})
