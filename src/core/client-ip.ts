/**
 * Client address resolution behind trusted reverse proxies (pure; no I/O).
 */
import { TesseraError } from './errors.js'

type Address = { version: 4 | 6; bytes: Uint8Array }

function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split('.')
  if (parts.length !== 4) return null
  const bytes = new Uint8Array(4)
  for (let i = 0; i < 4; i++) {
    const part = parts[i] ?? ''
    // Decimal only, no leading zeros: "010.0.0.1" is octal to some parsers and refused here.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null
    const value = Number(part)
    if (value > 255) return null
    bytes[i] = value
  }
  return bytes
}

function parseIPv6(input: string): Uint8Array | null {
  let text = input
  const zone = text.indexOf('%')
  if (zone !== -1) text = text.slice(0, zone)
  if (text === '' || !/^[0-9A-Fa-f:.]+$/.test(text)) return null
  const halves = text.split('::')
  if (halves.length > 2) return null
  const groups = (half: string): number[] | null => {
    if (half === '') return []
    const out: number[] = []
    const pieces = half.split(':')
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i] ?? ''
      if (i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIPv4(piece)
        if (v4 === null) return null
        out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0))
        continue
      }
      if (!/^[0-9A-Fa-f]{1,4}$/.test(piece)) return null
      out.push(parseInt(piece, 16))
    }
    return out
  }
  const head = groups(halves[0] ?? '')
  const tail = halves.length === 2 ? groups(halves[1] ?? '') : []
  if (head === null || tail === null) return null
  let all: number[]
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length
    if (missing < 1) return null
    all = [...head, ...new Array<number>(missing).fill(0), ...tail]
  } else {
    if (head.length !== 8) return null
    all = head
  }
  const bytes = new Uint8Array(16)
  all.forEach((group, i) => {
    bytes[i * 2] = group >> 8
    bytes[i * 2 + 1] = group & 0xff
  })
  return bytes
}

function isMappedIPv4(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false
  return bytes[10] === 0xff && bytes[11] === 0xff
}

/** Parses an IPv4 or IPv6 address (IPv4-mapped IPv6 becomes IPv4; a zone id is dropped). */
function parseAddress(input: string): Address | null {
  let text = input.trim()
  // Some proxies write a port: "203.0.113.9:4711" or "[2001:db8::1]:4711".
  const withPort = /^(\[[^\]]+\]|[0-9.]+):[0-9]{1,5}$/.exec(text)
  if (withPort !== null) text = withPort[1] ?? ''
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1)
  if (text.includes(':')) {
    const bytes = parseIPv6(text)
    if (bytes === null) return null
    if (isMappedIPv4(bytes)) return { version: 4, bytes: bytes.slice(12) }
    return { version: 6, bytes }
  }
  const bytes = parseIPv4(text)
  return bytes === null ? null : { version: 4, bytes }
}

function format(address: Address): string {
  if (address.version === 4) return Array.from(address.bytes).join('.')
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2)
    groups.push(((address.bytes[i] ?? 0) << 8) | (address.bytes[i + 1] ?? 0))
  // RFC 5952: compress the longest run (length ≥ 2) of zero groups, the first if tied.
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  const hex = groups.map((group) => group.toString(16))
  if (bestStart === -1) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`
}

/**
 * The canonical text of an IP address (RFC 5952 for IPv6; IPv4-mapped IPv6 as IPv4), or `null`
 * when `input` is not an address.
 *
 * @example
 * ```ts
 * normalizeIp('::FFFF:10.0.0.1') // '10.0.0.1'
 * normalizeIp('2001:DB8:0:0:0:0:0:1') // '2001:db8::1'
 * ```
 */
export function normalizeIp(input: string): string | null {
  const address = parseAddress(input)
  return address === null ? null : format(address)
}

/**
 * The key under which an address is rate-limited: an IPv4 address as itself, an IPv6 address as
 * its network of `ipv6PrefixLength` bits (`2001:db8:1:2::/64`), because one subscriber commonly
 * holds a whole /64 and could otherwise rotate through 2^64 addresses. Text that is not an address
 * is returned unchanged.
 *
 * @example
 * ```ts
 * ipRateLimitKey('2001:db8:1:2:aaaa::1') // '2001:db8:1:2::/64'
 * ipRateLimitKey('203.0.113.9') // '203.0.113.9'
 * ```
 */
export function ipRateLimitKey(ip: string, options: { ipv6PrefixLength?: number } = {}): string {
  const address = parseAddress(ip)
  if (address === null) return ip
  if (address.version === 4) return format(address)
  const prefix = Math.max(0, Math.min(128, Math.trunc(options.ipv6PrefixLength ?? 64)))
  const bytes = new Uint8Array(16)
  for (let i = 0, bits = prefix; i < 16 && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff
    bytes[i] = (address.bytes[i] ?? 0) & mask
  }
  return `${format({ version: 6, bytes })}/${prefix}`
}

/** A parsed list of trusted proxies; build it once with {@link parseTrustedProxies}. */
export interface TrustedProxies {
  /** True when `ip` is inside one of the trusted ranges. */
  contains(ip: string): boolean
}

type Range = { version: 4 | 6; bytes: Uint8Array; prefix: number }

function inRange(range: Range, address: Address): boolean {
  if (range.version !== address.version) return false
  let bits = range.prefix
  for (let i = 0; i < range.bytes.length && bits > 0; i++) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff
    if (((range.bytes[i] ?? 0) & mask) !== ((address.bytes[i] ?? 0) & mask)) return false
    bits -= 8
  }
  return true
}

/**
 * Parses trusted proxies given as IPs or CIDR ranges (`10.0.0.0/8`, `::1`, `fd00::/8`).
 *
 * @throws TesseraError `config_invalid` when an entry is not an address or range (checked at setup).
 */
export function parseTrustedProxies(entries: readonly string[]): TrustedProxies {
  const ranges: Range[] = entries.map((entry) => {
    const [addressText = '', prefixText, extra] = entry.trim().split('/')
    const address = parseAddress(addressText)
    const max = addressText.includes(':') ? 128 : 32
    const prefix = prefixText === undefined ? max : Number(prefixText)
    if (
      address === null ||
      extra !== undefined ||
      (prefixText !== undefined && !/^[0-9]{1,3}$/.test(prefixText)) ||
      prefix > max
    ) {
      throw new TesseraError(
        'config_invalid',
        `trusted proxy "${entry}" is not an IP address or CIDR range`,
      )
    }
    // An IPv4-mapped IPv6 range (::ffff:10.0.0.0/104) is the IPv4 range it maps.
    const v4Prefix = addressText.includes(':') && address.version === 4 ? prefix - 96 : prefix
    if (v4Prefix < 0) {
      throw new TesseraError('config_invalid', `trusted proxy "${entry}" has too short a prefix`)
    }
    return { version: address.version, bytes: address.bytes, prefix: v4Prefix }
  })
  return {
    contains(ip: string): boolean {
      const address = parseAddress(ip)
      return address !== null && ranges.some((range) => inRange(range, address))
    },
  }
}

/**
 * The client's IP address. It is the socket's peer address, unless that peer is a trusted proxy:
 * then `X-Forwarded-For` is read from right to left, skipping trusted proxies, and the first
 * address that is not one is the client. Entries left of it are ignored (anyone can write them).
 * When an entry is not an IP address, the last trusted hop is returned rather than a value the
 * client chose. When every entry is trusted, the leftmost one is returned. The result is
 * canonical (see {@link normalizeIp}), or the raw socket address when that does not parse.
 *
 * @example
 * ```ts
 * const proxies = parseTrustedProxies(['10.0.0.0/8'])
 * clientIp('10.0.0.2', '203.0.113.9, 10.0.0.7', proxies) // '203.0.113.9'
 * clientIp('198.51.100.4', '203.0.113.9', proxies) // '198.51.100.4' (peer is not trusted)
 * ```
 */
export function clientIp(
  socketAddress: string,
  forwardedFor: string | readonly string[] | undefined,
  trustedProxies: TrustedProxies | readonly string[],
): string {
  const trusted =
    'contains' in trustedProxies ? trustedProxies : parseTrustedProxies(trustedProxies)
  const peer = normalizeIp(socketAddress)
  if (peer === null) return socketAddress
  // SECURITY: X-Forwarded-For is attacker-controlled unless the peer is a proxy we trust.
  if (forwardedFor === undefined || !trusted.contains(peer)) return peer
  const header = typeof forwardedFor === 'string' ? forwardedFor : forwardedFor.join(',')
  const hops = header
    .split(',')
    .map((hop) => hop.trim())
    .filter((hop) => hop !== '')
  let current = peer
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeIp(hops[i] ?? '')
    if (hop === null) return current
    current = hop
    if (!trusted.contains(hop)) return hop
  }
  return current
}
