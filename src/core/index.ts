export { TesseraError, isTesseraError, ERROR_CODES, type TesseraErrorCode } from './errors.js'
export { parseDuration } from './duration.js'
export {
  createKeyring,
  secretWeakness,
  MIN_SECRET_BYTES,
  type Keyring,
  type KeyringOptions,
  type KeyPurpose,
  type PurposeKey,
} from './keyring.js'
export {
  signValue,
  verifyValue,
  type SignOptions,
  type VerifyOptions,
  type VerifiedValue,
} from './signing.js'
export {
  parseCookieHeader,
  serializeCookie,
  serializeDeletedCookie,
  type CookieAttributes,
  type ParseCookieOptions,
} from './cookie.js'
export type { JSONValue, SessionMeta, SessionRecord, SessionStore } from './session-store.js'
export { clientIp, normalizeIp, parseTrustedProxies, type TrustedProxies } from './client-ip.js'
