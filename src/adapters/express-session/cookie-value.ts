/**
 * The session cookie's value: `t:<sid>.<token>.<kid>.<mac>`.
 *
 * - `token` is the session's bearer secret (what `genid` made), signed with the keyring
 *   (`signValue`, purpose `express-session`, key id for rotation);
 * - `sid` is SHA-256 of the token (base64url): `req.sessionID` and the store key. It stands
 *   where express-session's cookie has its id (`s:<id>.<mac>`), so code that reads the id out
 *   of the cookie finds the stored session; it is checked against the token, never trusted.
 *
 * Also read: tessera's earlier `<token>.<kid>.<mac>` (re-sent in the current form), and with
 * `legacyIds` express-session's own `s:<id>.<mac>` (cookie-signature).
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import type { Keyring } from '../../core/keyring.js'
import { hashToken } from '../../core/session-manager.js'
import { signValue, verifyValue } from '../../core/signing.js'
import { isSessionId } from './options.js'
import type { SecretValue } from './types.js'

/** The keyring purpose of the drop-in's cookie signatures. */
export const PURPOSE = 'express-session'

const PREFIX = 't:'

/** A session id read from a cookie. */
export interface CookieId {
  /** SHA-256 of the token: `req.sessionID`, the store key. */
  sid: string
  /** The bearer secret the cookie carries. */
  token: string
  /** Read from express-session's format: the store holds it under the raw id. */
  legacy: boolean
  /** Signed by an older secret or in an older format: send the cookie again. */
  resign: boolean
}

/** The cookie value for a token, signed by the current secret. */
export function writeCookieValue(keyring: Keyring, token: string): string {
  return `${PREFIX}${hashToken(token)}.${signValue(keyring, PURPOSE, token)}`
}

/**
 * The id in a cookie value, or `undefined` when it is not one of ours (never throws).
 * `legacySecrets` (with `legacyIds` only) also accepts express-session's `s:` cookies.
 */
export function readCookieValue(
  raw: string,
  keyring: Keyring,
  legacySecrets: readonly SecretValue[] | undefined,
): CookieId | undefined {
  if (raw.startsWith(PREFIX)) {
    const dot = raw.indexOf('.', PREFIX.length)
    if (dot !== -1) {
      // SECURITY: the signature is checked before the store is asked (no lookups for forged
      // ids), and the id in front must be the token's own hash, so a cookie cannot pair a valid
      // token with another session's key.
      const verified = verifyValue(keyring, PURPOSE, raw.slice(dot + 1))
      if (verified !== null && isSessionId(verified.value)) {
        const sid = hashToken(verified.value)
        if (sid !== raw.slice(PREFIX.length, dot)) return undefined
        return { sid, token: verified.value, legacy: false, resign: verified.needsResign }
      }
    }
  }
  if (raw.startsWith('s:')) {
    if (legacySecrets === undefined) return undefined
    const token = unsignLegacy(raw.slice(2), legacySecrets)
    return token === null ? undefined : legacyId(token)
  }
  const verified = verifyValue(keyring, PURPOSE, raw)
  if (verified === null || !isSessionId(verified.value)) return undefined
  return { sid: hashToken(verified.value), token: verified.value, legacy: false, resign: true }
}

/** An express-session id (already verified) as a legacy cookie id. */
export function legacyId(token: string): CookieId | undefined {
  if (!isSessionId(token)) return undefined
  return { sid: hashToken(token), token, legacy: true, resign: true }
}

/** cookie-signature's `unsign`, for express-session's `s:` cookies (legacyIds only). */
function unsignLegacy(value: string, secrets: readonly SecretValue[]): string | null {
  const dot = value.lastIndexOf('.')
  if (dot <= 0) return null
  const id = value.slice(0, dot)
  const given = Buffer.from(value)
  for (const secret of secrets) {
    const mac = createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, '')
    const expected = Buffer.from(`${id}.${mac}`)
    // SECURITY: constant-time comparison of the whole signed value.
    if (expected.length === given.length && timingSafeEqual(expected, given)) return id
  }
  return null
}
