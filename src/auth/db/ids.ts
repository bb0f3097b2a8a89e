import { randomBytes } from 'node:crypto'

/**
 * A new UUIDv7 (RFC 9562) as lowercase text: 48 bits of epoch milliseconds, then 74 random bits.
 * Ids sort by creation time, which keeps B-tree inserts local on PostgreSQL and gives the audit
 * log a stable order; they reveal the creation time, never anything secret.
 */
export function newId(now: number = Date.now()): string {
  const bytes = randomBytes(16)
  const ms = BigInt(Math.max(0, Math.floor(now)))
  for (let i = 0; i < 6; i += 1) bytes[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn)
  bytes[6] = 0x70 | ((bytes[6] ?? 0) & 0x0f)
  bytes[8] = 0x80 | ((bytes[8] ?? 0) & 0x3f)
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
