/**
 * `tessera-auth/auth`: accounts, permissions, the sign-in pipeline, the auth service (signup,
 * login, logout, password change and reset), the audit log, mail transports and the accounts
 * database.
 */
export {
  createAccounts,
  isPermissionCodename,
  toPublicUser,
  type Accounts,
  type AccountsOptions,
  type ActionContext,
  type CreateUserInput,
  type Group,
  type GroupAccounts,
  type ListUsersOptions,
  type Permission,
  type PermissionAccounts,
  type PublicUser,
  type SessionRevoker,
  type User,
  type UserAccounts,
  type UserWithPermissions,
  userHasPermission,
} from './accounts.js'
export { createCredentials, type Credentials } from './credentials.js'
export {
  createSignIn,
  MAX_PASSWORD_INPUT,
  type AuthProof,
  type PasswordInput,
  type PasswordVerification,
  type PasswordVerified,
  type SecondFactorMethod,
  type SecondFactorRequired,
  type SignIn,
  type SignInContinuation,
  type SignInDeps,
  type SignInOptions,
  type SignInRefusal,
  type SignInResult,
  type SignInSuccess,
} from './sign-in.js'
export {
  createAuditLog,
  sanitizeAuditDetail,
  type AuditCountQuery,
  type AuditDetailValue,
  type AuditEvent,
  type AuditEventInput,
  type AuditEventType,
  type AuditLog,
  type AuditLogOptions,
  type AuditOutcome,
  type AuditQuery,
  type AuditTimeBucket,
  type RequestContext,
} from './audit.js'
export { normalizeEmail, parseEmail } from './email.js'
export {
  createConsoleMailer,
  createFileOutboxMailer,
  createSMTPMailer,
  createSmtpMailer,
  type ConsoleMailerOptions,
  type FileOutboxMailerOptions,
  type MailMessage,
  type Mailer,
  type MailerBaseOptions,
  formatPrintedMail,
  type PrintedMail,
  type SMTPMailerOptions,
  type SMTPTransportOptions,
  type SmtpMailerOptions,
} from './mailer.js'
export { RESET_TOKEN_TTL_SECONDS, hashResetToken, pruneResetTokens } from './reset.js'
export {
  createAuthService,
  type AuthFailure,
  type AuthService,
  type AuthServiceOptions,
  type AuthSuccess,
  type ChangePasswordContext,
  type ChangePasswordResult,
  type ConfirmResetResult,
  type CreateUserResult,
  type SetPasswordResult,
  type LoginResult,
  type SessionContext,
  type SignupResult,
} from './service.js'
export {
  createDatabase,
  isUniqueViolation,
  migrateToLatest,
  parseDatabaseURL,
  parseDatabaseUrl,
  type DatabaseConfig,
  type DatabaseLocation,
  type PostgresConnectionPool,
  type SqliteConnection,
  type SqliteStatement,
  type MigrationReport,
  type TesseraDB,
} from './db/database.js'
export { MIGRATIONS, migrationProvider } from './db/migrations.js'
export { loadOptionalPeer } from './db/optional-peer.js'
export { newId } from './db/ids.js'
export { toBool, toMillis, toMillisOrNull, type TesseraDatabase } from './db/schema.js'
// Login protection lives beside the passwords module; re-exported here because the auth service
// takes a limiter.
export {
  createLoginLimiter,
  createMemoryRateLimitStore,
  type LoginCheck,
  type LoginLimiter,
  type LoginLimiterOptions,
  type LoginTicket,
  type RateLimitStore,
} from './rate-limit.js'
export { createPostgresRateLimitStore, createSQLiteRateLimitStore } from './rate-limit-sql.js'
export { createRedisRateLimitStore } from './rate-limit-redis.js'
export {
  createActionLimiter,
  DEFAULT_ACTION_POLICIES,
  type ActionCheck,
  type ActionLimit,
  type ActionLimiter,
  type ActionLimiterOptions,
  type ActionPolicy,
  type ActionSubject,
  type ActionTicket,
} from './action-limiter.js'
export {
  createHMACKeySet,
  createHmacKeySet,
  createKeyringSealer,
  createKeySet,
  createMemoryKeyStorage,
  type AsymmetricAlgorithm,
  type KeyInfo,
  type KeySealer,
  type KeySet,
  type KeySetOptions,
  type KeyStatus,
  type KeyStorage,
  type SigningKey,
  type StoredSigningKey,
} from './keys.js'
export {
  createKyselyKeyStorage,
  createSigningKeyTable,
  type KyselyKeyStorage,
  type KyselyKeyStorageOptions,
  type SigningKeyTable,
} from './kysely-key-storage.js'
export {
  ACCESS_TOKEN_TYPE,
  createAccessTokens,
  type AccessTokenClaims,
  type AccessTokenOptions,
  type AccessTokenResult,
  type AccessTokens,
  type IssuedAccessToken,
  type SessionAuthClaims,
  sessionAuthClaims,
} from './access-tokens.js'
export {
  createRefreshTokens,
  type RefreshRejection,
  type RefreshResult,
  type RefreshReuseEvent,
  type RefreshTokenOptions,
  type RefreshTokens,
  type TokenPair,
} from './refresh-tokens.js'
export {
  createIdentities,
  toPublicIdentity,
  type Identities,
  type Identity,
  type LinkResult,
  type ProviderIdentity,
  type PublicIdentity,
  type UnlinkResult,
} from './identities.js'
export {
  checkIdentityProviderSettings,
  createIdentityProviders,
  IdentityProviderError,
  type AuthorizationChecks,
  type CallbackRefusalReason,
  type IdentityProvider,
  type IdentityProviderKind,
  type IdentityProviderSettings,
  type IdentityProviders,
  type IdentityProvidersOptions,
} from './identity-providers.js'
export {
  createIdentitySignIn,
  IDENTITY_CALLBACK_ACTION,
  IDENTITY_CALLBACK_POLICY,
  safeReturnTo,
  type BeginOptions,
  type CallbackRequest,
  type IdentityCallbackResult,
  type IdentityRefusal,
  type IdentityRefusalReason,
  type IdentitySignIn,
  type IdentitySignInDeps,
} from './identity-sign-in.js'
