import { randomBytes } from 'node:crypto'

let lastMs = -1
let counter = 0

/**
 * A new UUIDv7 (RFC 9562) as lowercase text: 48 bits of epoch milliseconds, a 12-bit counter
 * (RFC 9562 §6.2 method 1) and 62 random bits. Ids from one process are strictly increasing,
 * even within one millisecond or when the clock steps back, which gives the audit log a stable
 * order and keeps B-tree inserts local on PostgreSQL. An id reveals its creation time, never
 * anything secret.
 */
export function newId(now: number = Date.now()): string {
  let ms = Math.max(0, Math.floor(now))
  if (ms > lastMs) {
    lastMs = ms
    // Random start with headroom, so a burst in one millisecond rarely overflows.
    counter = randomBytes(2).readUInt16BE(0) & 0x7ff
  } else {
    ms = lastMs
    counter += 1
    if (counter > 0xfff) {
      lastMs += 1
      ms = lastMs
      counter = 0
    }
  }
  const bytes = randomBytes(16)
  const big = BigInt(ms)
  for (let i = 0; i < 6; i += 1) bytes[i] = Number((big >> BigInt(8 * (5 - i))) & 0xffn)
  bytes[6] = 0x70 | (counter >> 8)
  bytes[7] = counter & 0xff
  bytes[8] = 0x80 | ((bytes[8] ?? 0) & 0x3f)
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
