/** Reading the middleware's options: secrets and their policy, durations, cookie options. */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { serializeCookie } from '../../core/cookie.js'
import { TesseraError } from '../../core/errors.js'
import { createKeyring, secretWeakness } from '../../core/keyring.js'
import type { Keyring } from '../../core/keyring.js'
import { Cookie, toAttributes } from './cookie.js'
import type { CookieOptions } from './types.js'

export const DEFAULT_IDLE_SECONDS = 86_400
/** "No absolute limit" for the session manager, which needs one: 100 years. */
export const NO_ABSOLUTE_SECONDS = 100 * 365 * 86_400
export const MAX_ID_LENGTH = 512

export function isSessionId(sid: string): boolean {
  return sid.length > 0 && sid.length <= MAX_ID_LENGTH
}

export function readSecrets(secret: unknown): string[] {
  const list =
    typeof secret === 'string' ? [secret] : Array.isArray(secret) ? [...(secret as unknown[])] : []
  if (list.length === 0 || !list.every((item) => typeof item === 'string' && item.length > 0)) {
    throw new TesseraError(
      'config_invalid',
      'express-session: option "secret" is required: a string, or an array of strings (the first signs, all verify)',
    )
  }
  return list as string[]
}

/**
 * The default of the `secretPolicy` option: `'weak'` when `NODE_ENV` is `development` or
 * `test`, else `'strict'`. The only place the drop-in reads the environment, at its edge.
 */
export function secretPolicyFromEnv(env: string | undefined = process.env.NODE_ENV): SecretPolicy {
  return env === 'development' || env === 'test' ? 'weak' : 'strict'
}

export type SecretPolicy = 'strict' | 'weak'

export function buildKeyring(secrets: readonly string[], policy: SecretPolicy): Keyring {
  if (policy !== 'strict' && policy !== 'weak') {
    throw new TesseraError(
      'config_invalid',
      'express-session: option "secretPolicy" must be "strict" or "weak"',
    )
  }
  const weak = secrets.some((secret) => secretWeakness(secret) !== null)
  try {
    return createKeyring(secrets[0] as string, {
      fallbacks: secrets.slice(1),
      // SECURITY: a guessable secret lets anyone forge session cookies; express-session accepts
      // "keyboard cat", tessera accepts a weak secret only under the `weak` policy, which is the
      // default only in development and tests.
      policy: weak && policy === 'weak' ? 'weak' : 'strict',
      onWarning: (message) => console.warn(`express-session: ${message}`),
    })
  } catch (error) {
    if (error instanceof TesseraError) {
      throw new TesseraError(
        'config_invalid',
        `express-session: option "secret": ${error.message} (a weak secret is accepted only with secretPolicy "weak", the default when NODE_ENV is development or test)`,
        { cause: error },
      )
    }
    throw error
  }
}

export function optionalSeconds(value: unknown, option: string): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TesseraError(
      'config_invalid',
      `express-session: ${option} must be a positive number of seconds`,
    )
  }
  return value
}

export function checkCookieOptions(options: CookieOptions): void {
  try {
    const probe = new Cookie(options)
    if (options.secure === 'auto') probe.secure = true
    if (options.sameSite === 'auto') probe.sameSite = 'none'
    serializeCookie('probe', 'x', toAttributes(probe))
  } catch (error) {
    throw new TesseraError(
      'config_invalid',
      `express-session: cookie options are unusable: ${(error as Error).message}`,
      { cause: error },
    )
  }
}

/** cookie-signature's `unsign`, for express-session's `s:` cookies (legacyIds only). */
export function unsignLegacy(value: string, secrets: readonly string[]): string | null {
  const dot = value.lastIndexOf('.')
  if (dot <= 0) return null
  const sid = value.slice(0, dot)
  const given = Buffer.from(value)
  for (const secret of secrets) {
    const expected = Buffer.from(
      `${sid}.${createHmac('sha256', secret).update(sid).digest('base64').replace(/=+$/, '')}`,
    )
    // SECURITY: constant-time comparison of the whole signed value.
    if (expected.length === given.length && timingSafeEqual(expected, given)) return sid
  }
  return null
}
