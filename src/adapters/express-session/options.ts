/** Reading the middleware's options: secrets and their policy, durations. */
import { TesseraError } from '../../core/errors.js'
import { createKeyring, MIN_SECRET_BYTES, secretWeakness } from '../../core/keyring.js'
import type { Keyring } from '../../core/keyring.js'
import type { SecretValue } from './types.js'

export const DEFAULT_IDLE_SECONDS = 86_400
/** "No absolute limit" for the session manager, which needs one: 100 years. */
export const NO_ABSOLUTE_SECONDS = 100 * 365 * 86_400
export const MAX_ID_LENGTH = 512

/** What the `secretPolicy` option takes: the keyring's two policies. */
export type SecretPolicy = 'strict' | 'weak'

export function isSessionId(sid: string): boolean {
  return sid.length > 0 && sid.length <= MAX_ID_LENGTH
}

/**
 * The default of the `secretPolicy` option: `'weak'` when `NODE_ENV` is `development` or
 * `test`, else `'strict'`. The only place the drop-in reads the environment, at its edge.
 */
export function secretPolicyFromEnv(env: string | undefined = process.env.NODE_ENV): SecretPolicy {
  return env === 'development' || env === 'test' ? 'weak' : 'strict'
}

/**
 * The `secret` option as a list, current first, or `undefined` when it is not set (then each
 * request's `req.secret` is used, as in express-session).
 *
 * @throws TesseraError `config_invalid` for an empty array or an entry that is neither a
 *   non-empty string nor a non-empty Buffer
 */
export function readSecrets(secret: unknown): SecretValue[] | undefined {
  if (secret === undefined || secret === null || secret === '' || secret === false) return undefined
  const list: unknown[] = Array.isArray(secret) ? [...(secret as unknown[])] : [secret]
  if (list.length === 0) {
    throw new TesseraError(
      'config_invalid',
      'express-session: secret option array must contain one or more strings',
    )
  }
  for (const item of list) {
    const usable =
      (typeof item === 'string' && item.length > 0) || (Buffer.isBuffer(item) && item.length > 0)
    if (!usable) {
      throw new TesseraError(
        'config_invalid',
        'express-session: option "secret" must be a non-empty string or Buffer, or an array of them (the first signs, all verify)',
      )
    }
  }
  return list as SecretValue[]
}

/**
 * A secret as the keyring's text. A Buffer maps byte for byte (latin1), so every byte counts
 * and two different Buffers never give one key.
 */
function secretText(secret: SecretValue): string {
  return typeof secret === 'string' ? secret : secret.toString('latin1')
}

/** Why a secret is weak, or `null`: the keyring's rule, and for a Buffer its length in bytes. */
function weaknessOf(secret: SecretValue): string | null {
  if (typeof secret === 'string') return secretWeakness(secret)
  if (secret.length < MIN_SECRET_BYTES) {
    return `is ${secret.length} bytes long; at least ${MIN_SECRET_BYTES} are needed`
  }
  return secretWeakness(secretText(secret))
}

/**
 * The keyring of the drop-in's cookie signatures (purpose `express-session`).
 *
 * @throws TesseraError `config_invalid` for a weak secret under the `strict` policy, or an
 *   unknown policy
 */
export function buildKeyring(secrets: readonly SecretValue[], policy: SecretPolicy): Keyring {
  if (policy !== 'strict' && policy !== 'weak') {
    throw new TesseraError(
      'config_invalid',
      'express-session: option "secretPolicy" must be "strict" or "weak"',
    )
  }
  const fix =
    '(a weak secret is accepted only with secretPolicy "weak", the default when NODE_ENV is development or test)'
  // SECURITY: a guessable secret lets anyone forge session cookies (OWASP ASVS 6.4.1);
  // express-session accepts "keyboard cat", tessera only under the `weak` policy, which is the
  // default only in development and tests.
  let weak = false
  secrets.forEach((secret, index) => {
    const weakness = weaknessOf(secret)
    if (weakness === null) return
    weak = true
    if (policy === 'strict') {
      const label = index === 0 ? 'the secret' : `fallback secret #${index}`
      throw new TesseraError(
        'config_invalid',
        `express-session: option "secret": ${label} ${weakness}; generate one with \`npx tessera-auth secret\` ${fix}`,
      )
    }
  })
  const texts = secrets.map(secretText)
  try {
    return createKeyring(texts[0] as string, {
      fallbacks: texts.slice(1),
      policy: weak ? 'weak' : 'strict',
      onWarning: (message) => console.warn(`express-session: ${message}`),
    })
  } catch (error) {
    if (error instanceof TesseraError) {
      throw new TesseraError(
        'config_invalid',
        `express-session: option "secret": ${error.message} ${fix}`,
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
