import type { Logger } from 'pino'
import { createAccessTokens } from '../auth/access-tokens.js'
import { createAuditLog } from '../auth/audit.js'
import { createSecondStep } from '../auth/mfa-challenges.js'
import { createReauthentication } from '../auth/reauthenticate.js'
import { createSecondFactorRegistry } from '../auth/second-factor-methods.js'
import { createSecondFactors } from '../auth/second-factors.js'
import { createIdentities } from '../auth/identities.js'
import { createIdentityProviders } from '../auth/identity-providers.js'
import { createIdentitySignIn, IDENTITY_CALLBACK_ACTION } from '../auth/identity-sign-in.js'
import { createHMACKeySet, createKeyringSealer, createKeySet, type KeySet } from '../auth/keys.js'
import {
  createConsoleMailer,
  createFileOutboxMailer,
  createSMTPMailer,
  type Mailer,
} from '../auth/mailer.js'
import { createMailDelivery } from '../auth/mail-delivery.js'
import { createPasskeySecondFactor } from '../auth/passkey-second-factor.js'
import { createPasskeys, type Passkeys } from '../auth/passkeys.js'
import { createPasswordHasher, type PasswordHasher } from '../auth/passwords.js'
import { createActionLimiter, DEFAULT_ACTION_POLICIES } from '../auth/action-limiter.js'
import { createLoginLimiter } from '../auth/rate-limit.js'
import { createRefreshTokens } from '../auth/refresh-tokens.js'
import { createAuthService, type AuthService } from '../auth/service.js'
import { parseTrustedProxies } from '../core/client-ip.js'
import { createTrustedOrigins } from '../core/csrf.js'
import { isTesseraError } from '../core/errors.js'
import { createKeyring, type Keyring } from '../core/keyring.js'
import { createSessionManager, type SessionManager } from '../core/session-manager.js'
import type { ReadinessCheck, TesseraApp } from './app.js'
import { openBackends, type Backends } from './backends.js'
import { CREATE_ADMIN_COMMAND, logMail, logSetupLink } from './logger.js'
import type { ServerConfig } from './config.js'
import type { ServerMetrics } from './metrics.js'
import { authRoutes, type TokenServices } from './routes/auth.js'
import { passkeyRoutes } from './routes/passkeys.js'
import { mfaRoutes } from './routes/mfa.js'
import { oidcRoutes } from './routes/oidc.js'
import { emailPages } from './routes/email-pages.js'
import { emailRoutes } from './routes/email.js'
import { resetRoutes } from './routes/reset.js'
import {
  createAdminApp,
  createAdminSessionManager,
  createSetupLink,
  mountAdminApp,
} from './admin/index.js'

/** What the server runs on: the API routes, what `/readyz` checks, and how to close it all. */
export interface ServerServices {
  routes: ReadonlyArray<(app: TesseraApp) => void>
  readiness: readonly ReadinessCheck[]
  keyring: Keyring
  backends: Backends
  sessions: SessionManager
  auth: AuthService
  tokens: TokenServices
  passwords: PasswordHasher
  /** Passkeys (WebAuthn): relying party from the public URL, challenges in the session store. */
  passkeys: Passkeys
  /** Closes every store and client opened here (after background work such as mail). */
  close(): Promise<void>
}

/** What {@link buildServices} is given besides the configuration. */
export interface ServicesContext {
  logger: Logger
  metrics: ServerMetrics
  /**
   * Clock in epoch milliseconds, given to every part that has one: the stores, the session
   * managers (app and admin), the login limiter, the auth service (reset tokens, audit,
   * accounts), access and refresh tokens, the signing keys and the admin panel. Tests move it
   * forward to check expiry over HTTP; it is not read from the environment. @default Date.now
   */
  now?: (() => number) | undefined
  /**
   * Path prefix the routes are served under (the mountable API, `createTesseraAPI`): links the
   * services make (the reset e-mail, the setup link) and the admin panel's paths and cookie
   * include it. The routes themselves are prefixed by `createApp({ basePath })`. @default ''
   */
  basePath?: string | undefined
  /** Serve the admin panel (and log its setup link). @default true */
  admin?: boolean | undefined
  /**
   * Milliseconds between the tries of a mail that failed (three tries in all); tests pass `[0]`.
   * @default [2000, 10000]
   */
  mailRetryDelaysMs?: readonly number[] | undefined
}

/**
 * Opens the stores `config` names (migrating the database) and builds the services and routes
 * on them: the keyring, session manager, login limiter, mailer, auth service, signing keys and
 * tokens.
 *
 * @throws TesseraError `config_invalid` for a bad secret, `store_unavailable` when the database
 * cannot be opened or migrated
 */
export async function buildServices(
  config: ServerConfig,
  context: ServicesContext,
): Promise<ServerServices> {
  const { logger, metrics } = context
  const now = context.now ?? Date.now
  const base = context.basePath ?? ''
  // The routes as a browser sees them: the reset e-mail links under it. (The public URL itself
  // stays the tokens' issuer and the trusted origin.)
  const publicBase = `${config.publicUrl}${base}`
  const withAdmin = context.admin !== false
  const adminPath = `${base}/admin`
  const keyring = createKeyring(config.secret, {
    fallbacks: config.secretFallbacks,
    policy: config.keyringPolicy,
    onWarning: (message) => logger.warn(message),
  })
  const backends = await openBackends(config, logger, { now })
  try {
    const sessions = createSessionManager(backends.sessionStore, keyring, {
      secure: config.https,
      idleTimeout: config.sessionIdle,
      absoluteTimeout: config.sessionAbsolute,
      now,
    })
    const passwords = createPasswordHasher()
    const passwordPolicy = {
      minLength: config.passwordMinLength,
      maxLength: config.passwordMaxLength,
      minStrength: config.passwordMinStrength,
    }
    const mailer = createMailer(config, logger)
    // SECURITY: a mail that cannot be sent is logged (kind and error, never its content: it
    // holds a token) and counted in /metrics; it is never lost silently.
    const delivery = createMailDelivery({
      mailer,
      ...(context.mailRetryDelaysMs === undefined
        ? {}
        : { retryDelaysMs: context.mailRetryDelaysMs }),
      onOutcome: (outcome) => {
        metrics.recordMail(outcome.kind, outcome.outcome)
        if (outcome.outcome === 'failed') {
          logger.error(
            { kind: outcome.kind, attempts: outcome.attempts, err: outcome.error },
            'mail could not be sent',
          )
        }
      },
      onError: (error) => logger.error({ err: error }, 'background work failed'),
    })
    const limiter = createLoginLimiter({ store: backends.rateLimitStore, now })
    // Second factors (issue 13) live in the accounts database on every deployment, Redis too.
    const audit = createAuditLog(backends.db, { now })
    const factors = createSecondFactors(backends.db, {
      keyring,
      audit,
      issuer: new URL(config.publicUrl).host,
      now,
    })
    // SECURITY: the relying party id and the accepted origins come from the configuration
    // (TESSERA_PUBLIC_URL, TESSERA_TRUSTED_ORIGINS), never from a request's Host header.
    const passkeys = createPasskeys({
      db: backends.db,
      store: backends.sessionStore,
      publicUrl: config.publicUrl,
      origins: config.trustedOrigins,
      audit,
      now,
    })
    const passkeyFactor = createPasskeySecondFactor(passkeys)
    // The second-factor methods: TOTP and recovery codes, and passkeys (issue 14).
    const secondFactorMethods = [...factors.verifiers, passkeyFactor]
    const registry = createSecondFactorRegistry(secondFactorMethods)
    // The one action limiter of the server (reset, e-mail, passkey options, identity callbacks),
    // per account and per IP in the shared rate-limit store.
    const actionLimiter = createActionLimiter({
      store: backends.rateLimitStore,
      policies: {
        ...DEFAULT_ACTION_POLICIES,
        [IDENTITY_CALLBACK_ACTION]: { ip: { limit: config.identityCallbackLimit, window: 900 } },
      },
      now,
    })
    const auth = createAuthService(backends.db, {
      audit,
      secondFactors: (user) => registry.methodsOf(user.id),
      sessions,
      mailer,
      passwords,
      publicUrl: publicBase,
      limiter,
      // Reset mails and reset-token attempts, per account and per IP, in the same shared store
      // as the login limits (DEFAULT_ACTION_POLICIES).
      actionLimiter,
      signup: config.signup,
      passwordPolicy,
      onBackgroundError: (error) => logger.error({ err: error }, 'background work failed'),
      delivery,
      productName: config.email.productName,
      emailVerification: config.email.verification,
      now,
    })
    const secondStep = createSecondStep({
      db: backends.db,
      signIn: auth.signIn,
      registry,
      accounts: auth.accounts,
      audit,
      limiter,
      now,
    })
    const reauth = createReauthentication({
      signIn: auth.signIn,
      registry,
      sessions,
      accounts: auth.accounts,
      audit,
      limiter,
      now,
    })
    const keys = await loadKeys(config, keyring, backends, { now })
    const access = createAccessTokens({
      keys,
      issuer: config.publicUrl,
      audience: config.publicUrl,
      ttl: config.accessTtl,
      now,
    })
    const refresh = createRefreshTokens({
      store: backends.refreshStore,
      accessTokens: access,
      idle: config.sessionIdle,
      absolute: config.sessionAbsolute,
      now,
      // SECURITY: a refresh token used twice means it was copied: the family is already revoked;
      // end the session it was bound to as well (RFC 6819 5.2.2.3).
      onReuse: async (event) => {
        if (event.sessionId !== null) await sessions.revokeById(event.userId, event.sessionId)
        await auth.audit.record({
          type: 'session_revoked',
          outcome: 'denied',
          userId: event.userId,
          ip: event.meta.ip,
          userAgent: event.meta.userAgent,
          detail: { reason: 'refresh_token_reused' },
        })
      },
    })
    const tokens: TokenServices = { access, refresh, keys }
    if (backends.countSessions !== undefined) metrics.setActiveSessions(backends.countSessions)

    // The admin panel at /admin, with its own shorter sessions in the same store.
    const identities = createIdentities(backends.db, { audit: auth.audit, now })
    const adminSessions = createAdminSessionManager(backends.sessionStore, keyring, {
      secure: config.https,
      basePath: adminPath,
      now,
    })
    const admin = createAdminApp({
      db: backends.db,
      auth,
      adminSessions,
      appSessions: sessions,
      keys,
      keyring,
      publicUrl: config.publicUrl,
      trustedOrigins: config.trustedOrigins,
      trustedProxies: config.trustedProxies,
      countSessions: backends.countSessions,
      passkeys,
      identities,
      passwordPolicy,
      metrics,
      mfa: { factors, registry, secondStep, required: config.adminMFA === 'required' },
      basePath: adminPath,
      onError: (error) => logger.error({ err: error }, 'admin panel error'),
      now,
    })
    // The one first-admin mechanism (docs/decisions.md): a one-time link to /admin/setup.
    // The setup record lives in the session store, which (with Redis) need not be reachable at
    // start (docs/server.md): without it the server still starts, fails closed with 503 on what
    // needs the store, and a restart once the store is back prints the link.
    let setupUrl: string | null = null
    try {
      setupUrl = !withAdmin
        ? null
        : await createSetupLink({
            accounts: auth.accounts,
            adminSessions,
            publicUrl: config.publicUrl,
            basePath: adminPath,
          })
    } catch (error) {
      if (!isTesseraError(error, 'store_unavailable')) throw error
      logger.warn(
        { err: error },
        `no admin account yet, and the session store cannot be reached to make a setup link: restart once it is back, or run \`${CREATE_ADMIN_COMMAND}\``,
      )
    }
    if (setupUrl !== null) {
      // The one deliberate credential in the log (API.md): it can only create the first admin,
      // works once, and expires (30 minutes unused, 12 hours at most).
      logSetupLink(logger, setupUrl)
    }
    // Identity providers (docs/identity-providers.md): discovered once now; one that cannot be
    // reached is a warning, and its routes answer 503 until it can be.
    const providers = createIdentityProviders(config.identityProviders, {
      // The callback a browser follows: under the mount's prefix when mounted.
      publicUrl: publicBase,
      now,
      onWarning: (message, error) => logger.warn({ err: error }, message),
    })
    await providers.discoverAll()
    const identitySignIn = createIdentitySignIn({
      providers,
      identities,
      accounts: auth.accounts,
      signIn: auth.signIn,
      audit: auth.audit,
      keyring,
      publicUrl: config.publicUrl,
      trustedOrigins: createTrustedOrigins(config.trustedOrigins),
      signup: config.signup,
      secure: config.https,
      // A provider that vouches for the address (`email_verified: true`) verifies it.
      markEmailVerified: async (userId) => {
        await auth.email.markVerified(userId, {}, { via: 'identity_provider' })
      },
      // Each callback with a valid state makes a request to the provider: limited per IP.
      limiter: actionLimiter,
      now,
    })
    const routes = [
      ...(withAdmin ? [(app: TesseraApp): void => mountAdminApp(app, admin)] : []),
      // The page the reset e-mail links to (/reset). Before the API's routes: it answers its own
      // cross-site refusals with a page rather than the API's JSON.
      resetRoutes({
        auth,
        trustedOrigins: createTrustedOrigins(config.trustedOrigins),
        trustedProxies: parseTrustedProxies(config.trustedProxies),
        passwordMinLength: config.passwordMinLength,
      }),
      // The pages mailed links open (/verify-email, /confirm-email, /report-email-change,
      // /email-code): before the API, for the same reason as /reset.
      emailPages({
        auth,
        metrics,
        trustedOrigins: createTrustedOrigins(config.trustedOrigins),
        trustedProxies: parseTrustedProxies(config.trustedProxies),
        productName: config.email.productName,
      }),
      authRoutes({
        auth,
        sessions,
        keyring,
        tokens,
        metrics,
        trustedOrigins: createTrustedOrigins(config.trustedOrigins),
        trustedProxies: parseTrustedProxies(config.trustedProxies),
        secondStep,
        reauthMaxAge: config.reauthMaxAge,
        adminPath: withAdmin ? adminPath : null,
        now,
      }),
      mfaRoutes({
        factors,
        registry,
        secondStep,
        reauth,
        passkeys,
        sessions,
        tokens,
        metrics,
        trustedProxies: parseTrustedProxies(config.trustedProxies),
        reauthMaxAge: config.reauthMaxAge,
        now,
      }),
      // After authRoutes, whose middleware authenticates these requests too.
      oidcRoutes({
        identitySignIn,
        identities,
        trustedProxies: parseTrustedProxies(config.trustedProxies),
        metrics,
        reauthMaxAge: config.reauthMaxAge,
        now,
      }),
      emailRoutes({
        auth,
        metrics,
        trustedProxies: parseTrustedProxies(config.trustedProxies),
        reauthMaxAge: config.reauthMaxAge,
        now,
        secondStep,
      }),
      passkeyRoutes({
        auth,
        passkeys,
        metrics,
        trustedProxies: parseTrustedProxies(config.trustedProxies),
        reauthMaxAge: config.reauthMaxAge,
        secondStep,
        factor: passkeyFactor,
        limiter: actionLimiter,
        now,
      }),
    ]
    logger.info(
      { storage: backends.describe, jwtAlg: keys.algorithm, publicUrl: config.publicUrl },
      'services ready',
    )
    return {
      routes,
      readiness: backends.readiness,
      keyring,
      backends,
      sessions,
      auth,
      tokens,
      passwords,
      passkeys,
      close: async () => {
        await auth.idle()
        await mailer.close?.()
        await backends.close()
      },
    }
  } catch (error) {
    await backends.close()
    throw error
  }
}

function createMailer(config: ServerConfig, logger: Logger): Mailer {
  const from = config.mailFrom
  switch (config.mailer.kind) {
    case 'console':
      // Development only (docs/configuration.md): the message, reset link included, goes to the
      // log, decoded, with each link whole (one JSON line, or readable text on a terminal).
      return createConsoleMailer({ from, write: (_text, mail) => logMail(logger, mail) })
    case 'file':
      return createFileOutboxMailer({ from, directory: config.mailer.dir })
    case 'smtp':
      return createSMTPMailer({ from, url: config.mailer.url, ca: config.email.smtpCA })
  }
}

/**
 * The signing keys of access tokens, as the server and the CLI both open them: HS256 from the
 * keyring, else the stored key set. The CLI must open exactly these, or keys rotated by
 * `tessera keys rotate` could not be read by the server.
 */
export async function loadKeys(
  config: ServerConfig,
  keyring: Keyring,
  backends: Backends,
  options: { now?: () => number } = {},
): Promise<KeySet> {
  if (config.jwtAlg === 'HS256') return createHMACKeySet(keyring)
  // SECURITY: private signing keys are stored sealed with the keyring's `seal` key, so a
  // database dump alone does not let anyone sign tokens.
  const keys = createKeySet({
    storage: backends.keyStorage,
    sealer: createKeyringSealer(keyring),
    algorithm: config.jwtAlg,
    retainFor: config.accessTtl + 60,
    ...(options.now === undefined ? {} : { now: options.now }),
  })
  await keys.load()
  return keys
}
