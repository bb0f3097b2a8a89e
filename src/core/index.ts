export {
  TesseraError,
  isTesseraError,
  httpErrorOf,
  httpErrorOfError,
  ERROR_CODES,
  API_ERROR_CODES,
  HTTP_ERRORS,
  type TesseraErrorCode,
  type TesseraErrorOptions,
  type APIErrorCode,
  type ErrorBody,
  type HTTPErrorAnswer,
  type HTTPErrorMapping,
  type HTTPErrorStatus,
} from './errors.js'
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
  readCookie,
  serializeCookie,
  serializeDeletedCookie,
  type CookieAttributes,
  type ParseCookieOptions,
} from './cookie.js'
export type { JSONValue, SessionMeta, SessionRecord, SessionStore } from './session-store.js'
export {
  sealValue,
  unsealValue,
  type SealOptions,
  type UnsealOptions,
  type UnsealedValue,
} from './sealing.js'
export {
  serializeChunkedCookie,
  serializeDeletedChunkedCookie,
  joinCookieChunks,
  MAX_COOKIE_SIZE,
  DEFAULT_COOKIE_BUDGET,
  DEFAULT_MAX_CHUNKS,
  type ChunkedCookieOptions,
  type JoinCookieOptions,
} from './cookie.js'
export {
  checkCrossSite,
  createTrustedOrigins,
  createCSRFToken,
  verifyCSRFToken,
  isJSONContentType,
  isSafeMethod,
  type CrossSiteRequest,
  type CrossSiteDecision,
  type CrossSiteAllowedReason,
  type CrossSiteRefusedReason,
  type TrustedOrigins,
} from './csrf.js'
export {
  createSessionManager,
  toPublicSession,
  hashToken,
  AUTH_METHODS,
  type AuthMethod,
  type SessionAuth,
  type Session,
  type SessionManager,
  type SessionManagerOptions,
  type SessionDataChanges,
  type IssuedSession,
  type ValidatedSession,
  type PublicSession,
} from './session-manager.js'
export { clientIp, normalizeIp, parseTrustedProxies, type TrustedProxies } from './client-ip.js'
export {
  createRequestAuth,
  refusalBody,
  refusalOfError,
  checkPermissionName,
  checkMaxAge,
  checkAALLevel,
  parseBearerToken,
  freshnessRefusal,
  assuranceRefusal,
  unauthenticatedRefusal,
  type BearerOptions,
  type CSRFOptions,
  type LoadedUser,
  type RequestAuth,
  type RequestAuthOptions,
  type RequestAuthState,
  type RequestDescription,
  type AuthenticateResult,
  type AuthRefusal,
  type AuthUser,
  type BearerVerifier,
  type PermissionSource,
  type SignInOptions,
} from './request-auth.js'
export {
  createCookieSessions,
  type CookieSession,
  type CookieSessions,
  type CookieSessionOptions,
  type CookieSessionResult,
} from './cookie-session.js'
export {
  createMemoryGenerationStore,
  createStoreGenerationStore,
  type SessionGenerationStore,
  type StoreGenerationOptions,
} from './session-generations.js'
