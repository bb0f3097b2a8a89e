import { TesseraError } from './errors.js'

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }
const DURATION = /^(\d{1,12})\s*([smhdw]?)$/

/**
 * Parses a duration such as `"90s"`, `"15m"`, `"12h"`, `"7d"`, `"2w"` or plain seconds (`"3600"`
 * or `3600`) into whole seconds. Used only at the configuration edge; the API takes seconds.
 *
 * @param value the configured value
 * @param key the name of the setting, used in the error message (the value itself is not echoed)
 * @throws TesseraError `config_invalid` when the value is not a positive whole duration
 * @example
 * ```ts
 * parseDuration(process.env.TESSERA_SESSION_IDLE ?? '7d', 'TESSERA_SESSION_IDLE') // 604800
 * ```
 */
export function parseDuration(value: string | number, key: string): number {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value > 0) return value
    throw invalidDuration(key)
  }
  const match = DURATION.exec(value.trim().toLowerCase())
  if (match === null) throw invalidDuration(key)
  const amount = Number(match[1])
  const seconds = amount * (UNIT_SECONDS[match[2] || 's'] ?? 1)
  if (!Number.isSafeInteger(seconds) || seconds <= 0) throw invalidDuration(key)
  return seconds
}

function invalidDuration(key: string): TesseraError {
  return new TesseraError(
    'config_invalid',
    `${key} must be a positive duration such as "90s", "15m", "12h", "7d" or a number of seconds`,
  )
}
