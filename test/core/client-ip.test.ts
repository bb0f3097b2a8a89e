import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  clientIp,
  ipRateLimitKey,
  normalizeIp,
  parseTrustedProxies,
} from '../../src/core/client-ip.js'

describe('normalizeIp', () => {
  it('canonicalises IPv4 and IPv6 (RFC 5952), and unwraps IPv4-mapped IPv6', () => {
    expect(normalizeIp('203.0.113.9')).toBe('203.0.113.9')
    expect(normalizeIp('::ffff:10.0.0.1')).toBe('10.0.0.1')
    expect(normalizeIp('::FFFF:a00:1')).toBe('10.0.0.1')
    expect(normalizeIp('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1')
    expect(normalizeIp('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1')
    expect(normalizeIp('::1')).toBe('::1')
    expect(normalizeIp('::')).toBe('::')
    expect(normalizeIp('fe80::1%eth0')).toBe('fe80::1')
    expect(normalizeIp('[2001:db8::7]:443')).toBe('2001:db8::7')
    expect(normalizeIp('203.0.113.9:8080')).toBe('203.0.113.9')
  })

  it('refuses what is not an address', () => {
    for (const bad of [
      '',
      'unknown',
      '1.2.3',
      '1.2.3.256',
      '010.0.0.1',
      '1::2::3',
      '1:2:3:4:5:6:7:8:9',
      'g::1',
      '1.2.3.4.5',
    ]) {
      expect(normalizeIp(bad)).toBeNull()
    }
  })

  it('property: never throws, and is idempotent', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.ipV4(), fc.ipV6()), (text) => {
        const once = normalizeIp(text)
        if (once !== null) expect(normalizeIp(once)).toBe(once)
      }),
    )
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        expect(normalizeIp(ip)).not.toBeNull()
      }),
    )
  })
})

describe('clientIp', () => {
  const proxies = ['10.0.0.0/8', '2001:db8:ffff::/48', '127.0.0.1']

  it('uses the socket address when the peer is not a trusted proxy (X-Forwarded-For ignored)', () => {
    expect(clientIp('198.51.100.4', '203.0.113.9', proxies)).toBe('198.51.100.4')
    expect(clientIp('::ffff:198.51.100.4', undefined, proxies)).toBe('198.51.100.4')
  })

  it('walks X-Forwarded-For right to left past trusted proxies', () => {
    expect(clientIp('10.0.0.2', '203.0.113.9', proxies)).toBe('203.0.113.9')
    expect(clientIp('10.0.0.2', '203.0.113.9, 10.1.2.3', proxies)).toBe('203.0.113.9')
    // A client can prepend anything; only the hop a trusted proxy saw counts.
    expect(clientIp('10.0.0.2', '1.1.1.1, 203.0.113.9, 10.1.2.3', proxies)).toBe('203.0.113.9')
    expect(clientIp('127.0.0.1', ['1.1.1.1', '2001:db8:1::5'], proxies)).toBe('2001:db8:1::5')
    expect(clientIp('2001:db8:ffff::1', '2001:DB8:1:0:0:0:0:5', proxies)).toBe('2001:db8:1::5')
  })

  it('returns the last trusted hop rather than a malformed entry', () => {
    expect(clientIp('10.0.0.2', 'evil, 10.0.0.9', proxies)).toBe('10.0.0.9')
    expect(clientIp('10.0.0.2', 'unknown', proxies)).toBe('10.0.0.2')
  })

  it('returns the leftmost hop when every hop is trusted, and the peer when the header is empty', () => {
    expect(clientIp('10.0.0.2', '10.9.9.9, 10.0.0.3', proxies)).toBe('10.9.9.9')
    expect(clientIp('10.0.0.2', '', proxies)).toBe('10.0.0.2')
    expect(clientIp('10.0.0.2', undefined, proxies)).toBe('10.0.0.2')
  })

  it('trusts nobody by default and takes a pre-parsed list', () => {
    expect(clientIp('10.0.0.2', '203.0.113.9', [])).toBe('10.0.0.2')
    const parsed = parseTrustedProxies(['::ffff:10.0.0.0/104'])
    expect(parsed.contains('10.200.0.1')).toBe(true)
    expect(clientIp('10.0.0.2', '203.0.113.9', parsed)).toBe('203.0.113.9')
  })

  it('refuses a malformed trusted-proxy list at setup', () => {
    for (const bad of ['10.0.0.0/33', 'nonsense', '10.0.0.0/8/8', '::/129', '10.0.0.0/x']) {
      expect(() => parseTrustedProxies([bad])).toThrow(/trusted proxy/)
    }
  })

  it('property: without trusted proxies the result is the socket address', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.string(), (peer, header) => {
        expect(clientIp(peer, header, [])).toBe(normalizeIp(peer))
      }),
    )
  })
})

describe('ipRateLimitKey', () => {
  it('groups IPv6 by /64 (or the given prefix) and keeps IPv4 addresses apart', () => {
    expect(ipRateLimitKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64')
    expect(ipRateLimitKey('2001:DB8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64')
    expect(ipRateLimitKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64')
    expect(ipRateLimitKey('2001:db8:1:2:aaaa::1', { ipv6PrefixLength: 48 })).toBe('2001:db8:1::/48')
    expect(ipRateLimitKey('2001:db8::1', { ipv6PrefixLength: 128 })).toBe('2001:db8::1/128')
    expect(ipRateLimitKey('::ffff:203.0.113.9')).toBe('203.0.113.9')
    expect(ipRateLimitKey('203.0.113.9')).toBe('203.0.113.9')
    expect(ipRateLimitKey('not-an-ip')).toBe('not-an-ip')
  })
})
