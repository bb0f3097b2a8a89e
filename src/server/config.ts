import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { isAbsolute, join, resolve } from 'node:path'
import { parseEnv } from 'node:util'
import type { DatabaseLocation } from '../auth/db/database.js'
import {
  checkIdentityProviderSettings,
  type IdentityProviderSettings,
} from '../auth/identity-providers.js'
import { parseDuration } from '../core/duration.js'
import { TesseraError } from '../core/errors.js'
import { secretWeakness } from '../core/keyring.js'

/** The environment the server runs in; anything but `development` or `test` is production. */
export type RuntimeMode = 'development' | 'test' | 'production'

/** How password-reset and setup e-mails leave the server. */
export type MailerConfig =
  | { kind: 'console' }
  | { kind: 'file'; /** absolute directory */ dir: string }
  | { kind: 'smtp'; url: string }

/** The e-mail settings (docs/email.md). */
export interface EmailConfig {
  /** `TESSERA_PRODUCT_NAME`: the name in every mail. @default 'tessera' */
  productName: string
  /** PEM of `TESSERA_SMTP_CA_FILE`: the CA of an SMTP relay with a private certificate. */
  smtpCA: string | undefined
  /** `TESSERA_EMAIL_VERIFICATION`: `required` refuses sign-in until verified. @default 'optional' */
  verification: 'optional' | 'required'
}

/** The JWT signing algorithms the server can issue access tokens with. */
export type JWTAlgorithm = 'EdDSA' | 'ES256' | 'RS256' | 'HS256'

/** `LOG_FORMAT`: `auto` is readable lines on a terminal and JSON lines otherwise. */
export type LogFormat = 'auto' | 'json' | 'pretty'

/** pino log levels accepted in `LOG_LEVEL`. */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

/** Where the current secret came from (never the secret itself). */
export type SecretSource = 'TESSERA_SECRET' | 'SESSION_SECRET' | 'JWT_SECRET' | 'file' | 'generated'

/** The validated server configuration; see docs/configuration.md. */
export interface ServerConfig {
  mode: RuntimeMode
  /** TCP port; 0 picks a free one. @default 3000 */
  port: number
  /** Interface to bind; `undefined` binds every interface. */
  host: string | undefined
  /** The current server secret. */
  secret: string
  /** Older secrets that still verify. */
  secretFallbacks: string[]
  secretSource: SecretSource
  /** The file the development secret was read from or written to, when it came from one. */
  secretFile: string | undefined
  /** `weak` only in development and test. */
  keyringPolicy: 'strict' | 'weak'
  /** Public URL without a trailing slash, e.g. `https://auth.example.com`. */
  publicUrl: string
  /** Origin of {@link publicUrl}. */
  publicOrigin: string
  /** True when the public URL is https: `Secure` cookies, `__Host-` prefix, HSTS. */
  https: boolean
  /** Origins trusted for unsafe requests, the public origin first. */
  trustedOrigins: string[]
  /** Proxy addresses or CIDR ranges whose `X-Forwarded-For` is believed. */
  trustedProxies: string[]
  /**
   * Where accounts (and, without Redis, sessions) live, from `DATABASE_URL`: the same type as
   * `tessera-auth/auth`'s, so `createDatabase(config.database)` opens it. A SQLite `filename`
   * is absolute (or `:memory:`).
   */
  database: DatabaseLocation
  /** Redis URL for sessions, refresh tokens and rate limits, or `null`. */
  redisUrl: string | null
  /** Prefix of every Redis key, so apps (and tests) can share a server. @default 'tessera:' */
  redisPrefix: string
  /**
   * The near-cache of sessions (docs/scaling.md), on only with Redis and
   * `TESSERA_NEAR_CACHE=on`. Off by default: measured, it cost the server more CPU per
   * request than the Redis read it saves (docs/decisions.md).
   */
  nearCache: boolean
  /**
   * `TESSERA_REDIS_ASSUME_NOEVICTION=1`: the operator vouches that Redis runs with
   * `maxmemory-policy noeviction` where the server cannot read it (a managed Redis that hides
   * `CONFIG`); the start then logs a loud warning instead of refusing in production.
   */
  redisAssumeNoeviction: boolean
  /** Seconds. @default 604800 (7 days) */
  sessionIdle: number
  /** Seconds. @default 2592000 (30 days) */
  sessionAbsolute: number
  /** Seconds. @default 900 (15 minutes) */
  accessTtl: number
  signup: 'open' | 'closed'
  mailer: MailerConfig
  /** `From` of the mails the server sends. @default `tessera <no-reply@<public host>>` */
  mailFrom: string
  /** E-mail (issue 16): the product name in mails, the SMTP CA, verification. */
  email: EmailConfig
  /** Fewest characters of a new password. @default 12 */
  passwordMinLength: number
  /** Most characters of a new password. @default 128 */
  passwordMaxLength: number
  /**
   * Lowest strength score (0 to 4) of the zxcvbn estimator a new password needs, from
   * `TESSERA_PASSWORD_MIN_STRENGTH`; 0 turns the estimator off. @default 3
   */
  passwordMinStrength: number
  jwtAlg: JWTAlgorithm
  logLevel: LogLevel
  /** @default 'auto' (readable on a terminal, JSON lines otherwise) */
  logFormat: LogFormat
  /** Second factors (issue 13): seconds within which a sensitive change needs a sign-in. @default 600 */
  reauthMaxAge: number
  /** Whether administrators must have a second factor. @default 'required' in production, else 'optional' */
  adminMFA: 'required' | 'optional'
  /**
   * Seconds a stop keeps serving with readiness at 503 before the listener closes, from
   * `TESSERA_SHUTDOWN_DRAIN` (0 to 300, decimals allowed). @default 5
   */
  shutdownDrain: number
  /**
   * Identity providers, from `TESSERA_OIDC_PROVIDERS` and `TESSERA_OIDC_<NAME>_*`
   * (docs/identity-providers.md). @default []
   */
  identityProviders: IdentityProviderSettings[]
  /**
   * Identity-provider callbacks admitted per client IP per 15 minutes
   * (`TESSERA_OIDC_CALLBACK_LIMIT`). @default 30
   */
  identityCallbackLimit: number
}

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /** Directory that holds `.env`, `.env.local`, relative paths and the development secret. */
  cwd: string
  /** Read `.env` and `.env.local` from `cwd`. @default true */
  envFiles?: boolean
  /** Receives one-line notices (secret generated, weak secret accepted, ...). @default no-op */
  onNotice?: (message: string) => void
}

const DEFAULT_DATABASE_URL = 'sqlite:./data/tessera.db'
/** Where the development secret is kept, relative to the working directory (git-ignored). */
export const DEV_SECRET_FILE = join('data', '.tessera-secret')
const JWT_ALGORITHMS: readonly JWTAlgorithm[] = ['EdDSA', 'ES256', 'RS256', 'HS256']
const LOG_LEVELS: readonly LogLevel[] = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
]
const SECRET_VARIABLES = ['TESSERA_SECRET', 'SESSION_SECRET', 'JWT_SECRET'] as const

/**
 * Reads `.env` then `.env.local` from `cwd` (later files win); missing files are skipped.
 * Parsed with Node's own `util.parseEnv`, so the syntax is Node's `--env-file` syntax.
 *
 * @throws TesseraError `config_invalid` when a file exists but cannot be read
 */
export function readEnvFiles(cwd: string): Record<string, string> {
  const merged: Record<string, string> = {}
  for (const name of ['.env', '.env.local']) {
    let text: string
    try {
      text = readFileSync(join(cwd, name), 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw new TesseraError('config_invalid', `${name} in ${cwd} cannot be read`, {
        cause: error,
      })
    }
    for (const [key, value] of Object.entries(parseEnv(text))) {
      if (value !== undefined) merged[key] = value
    }
  }
  return merged
}

/**
 * Builds the server configuration from an environment (normally `process.env`) plus `.env` and
 * `.env.local` in `cwd`; variables of the real environment win over the files.
 *
 * In development and test, with no secret set, a random one is generated once into
 * `data/.tessera-secret` (mode 0600, git-ignored) and reused on later starts, so restarts keep
 * sessions. In production a missing or weak secret stops the start.
 *
 * @throws TesseraError `config_invalid` naming the variable that is wrong and what was expected
 * @example
 * ```ts
 * const config = loadConfig(process.env, { cwd: process.cwd(), onNotice: (m) => logger.info(m) })
 * ```
 */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>>,
  options: LoadConfigOptions,
): ServerConfig {
  const cwd = options.cwd
  const notice = options.onNotice ?? ((): void => {})
  const fileEnv = options.envFiles === false ? {} : readEnvFiles(cwd)
  const get = (key: string): string | undefined => {
    const value = env[key] ?? fileEnv[key]
    return value === undefined || value.trim() === '' ? undefined : value.trim()
  }

  const mode = parseMode(get('NODE_ENV'))
  const port = parsePort(get('PORT'))
  const host = get('HOST')
  const publicUrl = parsePublicUrl(get('TESSERA_PUBLIC_URL'), port)
  const publicOrigin = new URL(publicUrl).origin
  const https = publicUrl.startsWith('https:')
  if (mode === 'production' && !https && !isLoopbackUrl(publicUrl)) {
    notice(
      `TESSERA_PUBLIC_URL is ${publicOrigin} (plain http) in production: cookies are sent without Secure; serve it over https`,
    )
  }

  const secret = resolveSecret(get, mode, cwd, notice)
  const secretFallbacks = splitList(get('TESSERA_SECRET_FALLBACKS'))
  secretFallbacks.forEach((fallback, index) => {
    const weakness = secretWeakness(fallback)
    if (weakness === null) return
    if (mode === 'production') {
      throw new TesseraError(
        'config_invalid',
        `TESSERA_SECRET_FALLBACKS entry ${index + 1} ${weakness}; remove it or replace it (make new secrets with \`npx tessera-auth secret\`)`,
      )
    }
    notice(`TESSERA_SECRET_FALLBACKS entry ${index + 1} ${weakness}; accepted in ${mode} only`)
  })

  const trustedOrigins = [publicOrigin]
  for (const entry of splitList(get('TESSERA_TRUSTED_ORIGINS'))) {
    const origin = parseOrigin(entry)
    if (!trustedOrigins.includes(origin)) trustedOrigins.push(origin)
  }

  const trustedProxies = splitList(get('TESSERA_TRUSTED_PROXIES')).map(parseProxyEntry)
  const database = parseDatabaseURL(get('DATABASE_URL') ?? DEFAULT_DATABASE_URL, cwd)
  const redisUrl = parseRedisUrl(get('REDIS_URL'))
  const redisPrefix = get('TESSERA_REDIS_PREFIX') ?? 'tessera:'
  if (!/^[A-Za-z0-9:_.-]{1,64}$/.test(redisPrefix)) {
    throw invalid('TESSERA_REDIS_PREFIX must be 1 to 64 letters, digits, ":", "_", "." or "-"')
  }
  // Issue 18: the near-cache of Redis sessions (docs/scaling.md), on unless turned off; the
  // value is checked even without Redis, so a typo fails at start.
  const nearCacheSetting = parseChoice(
    (get('TESSERA_NEAR_CACHE') ?? 'off').toLowerCase(),
    'TESSERA_NEAR_CACHE',
    ['on', 'off'] as const,
  )
  const nearCache = redisUrl !== null && nearCacheSetting === 'on'
  const assume = (get('TESSERA_REDIS_ASSUME_NOEVICTION') ?? '0').toLowerCase()
  if (!['0', '1', 'true', 'false', ''].includes(assume)) {
    throw invalid('TESSERA_REDIS_ASSUME_NOEVICTION must be 1 or 0')
  }
  const redisAssumeNoeviction = assume === '1' || assume === 'true'
  const sessionIdle = parseDuration(get('TESSERA_SESSION_IDLE') ?? '7d', 'TESSERA_SESSION_IDLE')
  const sessionAbsolute = parseDuration(
    get('TESSERA_SESSION_ABSOLUTE') ?? '30d',
    'TESSERA_SESSION_ABSOLUTE',
  )
  const accessTtl = parseDuration(get('TESSERA_ACCESS_TTL') ?? '15m', 'TESSERA_ACCESS_TTL')
  const signup = parseChoice(get('TESSERA_SIGNUP') ?? 'open', 'TESSERA_SIGNUP', [
    'open',
    'closed',
  ] as const)
  const mailer = parseMailer(get('TESSERA_MAILER'), cwd, mode, notice)
  const mailFrom = get('TESSERA_MAIL_FROM') ?? `tessera <no-reply@${new URL(publicUrl).hostname}>`
  if (/[\r\n]/.test(mailFrom)) throw invalid('TESSERA_MAIL_FROM must be one line')
  const email = parseEmailConfig(get, cwd)
  const passwordMinLength = parseCount(
    get('TESSERA_PASSWORD_MIN_LENGTH'),
    'TESSERA_PASSWORD_MIN_LENGTH',
    12,
  )
  const passwordMaxLength = parseCount(
    get('TESSERA_PASSWORD_MAX_LENGTH'),
    'TESSERA_PASSWORD_MAX_LENGTH',
    128,
  )
  if (passwordMinLength > passwordMaxLength) {
    throw invalid('TESSERA_PASSWORD_MIN_LENGTH must not be larger than TESSERA_PASSWORD_MAX_LENGTH')
  }
  if (passwordMaxLength > 1024) throw invalid('TESSERA_PASSWORD_MAX_LENGTH must be at most 1024')
  const strength = get('TESSERA_PASSWORD_MIN_STRENGTH') ?? '3'
  if (!/^[0-4]$/.test(strength.trim())) {
    throw invalid('TESSERA_PASSWORD_MIN_STRENGTH must be 0 to 4 (3: safely unguessable; 0: off)')
  }
  const passwordMinStrength = Number(strength.trim())
  const jwtAlg = parseChoice(get('TESSERA_JWT_ALG') ?? 'EdDSA', 'TESSERA_JWT_ALG', JWT_ALGORITHMS)
  const logLevel = parseChoice((get('LOG_LEVEL') ?? 'info').toLowerCase(), 'LOG_LEVEL', LOG_LEVELS)
  const logFormat = parseChoice((get('LOG_FORMAT') ?? 'auto').toLowerCase(), 'LOG_FORMAT', [
    'auto',
    'json',
    'pretty',
  ] as const)
  // Second factors (issue 13).
  const reauthMaxAge = parseDuration(
    get('TESSERA_REAUTH_MAX_AGE') ?? '10m',
    'TESSERA_REAUTH_MAX_AGE',
  )
  const adminMFA = parseChoice(
    get('TESSERA_ADMIN_MFA') ?? (mode === 'production' ? 'required' : 'optional'),
    'TESSERA_ADMIN_MFA',
    ['required', 'optional'] as const,
  )
  const identityProviders = parseIdentityProviders(get)
  const identityCallbackLimit = parseCount(
    get('TESSERA_OIDC_CALLBACK_LIMIT'),
    'TESSERA_OIDC_CALLBACK_LIMIT',
    30,
  )

  const shutdownDrain = parseDrain(get('TESSERA_SHUTDOWN_DRAIN'))

  return {
    mode,
    port,
    host,
    secret: secret.value,
    secretFallbacks,
    secretSource: secret.source,
    secretFile: secret.file,
    keyringPolicy: mode === 'production' ? 'strict' : 'weak',
    publicUrl,
    publicOrigin,
    https,
    trustedOrigins,
    trustedProxies,
    database,
    redisUrl,
    redisPrefix,
    nearCache,
    redisAssumeNoeviction,
    sessionIdle,
    sessionAbsolute,
    accessTtl,
    signup,
    mailer,
    mailFrom,
    email,
    passwordMinLength,
    passwordMaxLength,
    passwordMinStrength,
    jwtAlg,
    logLevel,
    logFormat,
    reauthMaxAge,
    adminMFA,
    shutdownDrain,
    identityProviders,
    identityCallbackLimit,
  }
}

/**
 * `TESSERA_OIDC_PROVIDERS=google,github` and, per name, `TESSERA_OIDC_<NAME>_ISSUER`,
 * `_CLIENT_ID`, `_CLIENT_SECRET`, `_SCOPES`; `_PRESET=github` (implied by the name `github`
 * without an issuer) with `_GITHUB_URL` and `_GITHUB_API_URL` for GitHub Enterprise Server.
 * Only checked here; nothing is fetched until the server starts.
 */
function parseIdentityProviders(
  get: (key: string) => string | undefined,
): IdentityProviderSettings[] {
  const names = splitList(get('TESSERA_OIDC_PROVIDERS')).map((name) => name.toLowerCase())
  const seen = new Set<string>()
  for (const name of names) {
    if (!/^[a-z][a-z0-9_-]{0,31}$/.test(name)) {
      throw invalid(
        `TESSERA_OIDC_PROVIDERS entries must be names of 1 to 32 letters, digits, "_" or "-", starting with a letter (got "${name}")`,
      )
    }
    // `my-idp` and `my_idp` would read the same variables.
    const key = name.replace(/-/g, '_')
    if (seen.has(key)) throw invalid(`TESSERA_OIDC_PROVIDERS names ${name} twice`)
    seen.add(key)
  }
  return names.map((name) => {
    const prefix = `TESSERA_OIDC_${name.toUpperCase().replace(/-/g, '_')}_`
    const issuer = get(`${prefix}ISSUER`)
    const preset =
      get(`${prefix}PRESET`) ?? (name === 'github' && issuer === undefined ? 'github' : undefined)
    if (preset !== undefined && preset !== 'github') throw invalid(`${prefix}PRESET must be github`)
    const clientId = get(`${prefix}CLIENT_ID`)
    if (clientId === undefined) {
      throw invalid(`${prefix}CLIENT_ID is required: the client id ${name} gave this application`)
    }
    const clientSecret = get(`${prefix}CLIENT_SECRET`)
    const scopes = get(`${prefix}SCOPES`)
      ?.split(/[\s,]+/)
      .filter((scope) => scope !== '')
    const settings: IdentityProviderSettings = {
      name,
      kind: preset === 'github' ? 'github' : 'oidc',
      clientId,
      ...(clientSecret === undefined ? {} : { clientSecret }),
      ...(scopes === undefined ? {} : { scopes }),
    }
    if (preset === 'github') {
      if (issuer !== undefined)
        throw invalid(`${prefix}ISSUER is not used with the github preset; remove it`)
      if (clientSecret === undefined) throw invalid(`${prefix}CLIENT_SECRET is required for GitHub`)
      const webUrl = get(`${prefix}GITHUB_URL`)
      const apiUrl = get(`${prefix}GITHUB_API_URL`)
      if (webUrl !== undefined) checkProviderURL(webUrl, `${prefix}GITHUB_URL`)
      if (apiUrl !== undefined) checkProviderURL(apiUrl, `${prefix}GITHUB_API_URL`)
      settings.github = {
        ...(webUrl === undefined ? {} : { webUrl }),
        ...(apiUrl === undefined ? {} : { apiUrl }),
      }
    } else {
      if (issuer === undefined) {
        throw invalid(
          `${prefix}ISSUER is required: the provider's issuer URL, e.g. https://accounts.google.com (or set ${prefix}PRESET=github)`,
        )
      }
      checkProviderURL(issuer, `${prefix}ISSUER`)
      settings.issuer = issuer
    }
    try {
      checkIdentityProviderSettings(settings)
    } catch (error) {
      throw invalid(`${prefix}*: ${(error as Error).message}`, error)
    }
    return settings
  })
}

function checkProviderURL(value: string, key: string): void {
  let url: URL
  try {
    url = new URL(value)
  } catch (error) {
    throw invalid(`${key} must be an absolute https URL`, error)
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw invalid(`${key} must be an https URL (http only for 127.0.0.1 or localhost)`)
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw invalid(`${key} must not contain credentials, a query or a fragment`)
  }
}

function invalid(message: string, cause?: unknown): TesseraError {
  return new TesseraError('config_invalid', message, cause === undefined ? {} : { cause })
}

function parseMode(value: string | undefined): RuntimeMode {
  // SECURITY: fail closed. Only the two explicit names relax the secret policy; an unset
  // NODE_ENV is development (a fresh clone's `npm start`), any other value is production.
  if (value === undefined || value === 'development') return 'development'
  if (value === 'test') return 'test'
  return 'production'
}

function parsePort(value: string | undefined): number {
  if (value === undefined) return 3000
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65_535) {
    throw invalid('PORT must be a whole number from 0 to 65535')
  }
  return Number(value)
}

function parsePublicUrl(value: string | undefined, port: number): string {
  if (value === undefined) return `http://localhost:${port}`
  let url: URL
  try {
    url = new URL(value)
  } catch (error) {
    throw invalid(
      'TESSERA_PUBLIC_URL must be an absolute http(s) URL such as https://auth.example.com',
      error,
    )
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid('TESSERA_PUBLIC_URL must start with http:// or https://')
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw invalid('TESSERA_PUBLIC_URL must not contain credentials, a query or a fragment')
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`
}

function isLoopbackUrl(value: string): boolean {
  const host = new URL(value).hostname
  return host === 'localhost' || host === '127.0.0.1' || host === '[::1]'
}

function parseOrigin(entry: string): string {
  let url: URL
  try {
    url = new URL(entry)
  } catch (error) {
    throw invalid(
      `TESSERA_TRUSTED_ORIGINS entries must be origins such as https://app.example.com (got "${entry}")`,
      error,
    )
  }
  if (
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.origin !== entry.replace(/\/$/, '')
  ) {
    throw invalid(
      `TESSERA_TRUSTED_ORIGINS entries must be origins (scheme://host[:port], no path) such as https://app.example.com (got "${entry}")`,
    )
  }
  return url.origin
}

function parseProxyEntry(entry: string): string {
  const [address, prefix, ...rest] = entry.split('/')
  const family = isIP(address ?? '')
  const maxPrefix = family === 4 ? 32 : 128
  const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= maxPrefix)
  if (family === 0 || rest.length > 0 || !prefixOk) {
    throw invalid(
      `TESSERA_TRUSTED_PROXIES entries must be IP addresses or CIDR ranges such as 10.0.0.0/8 (got "${entry}")`,
    )
  }
  return entry
}

function parseDatabaseURL(value: string, cwd: string): DatabaseLocation {
  if (value.startsWith('sqlite:')) {
    let path = value.slice('sqlite:'.length)
    if (path.startsWith('//')) path = path.slice(2)
    if (path === '')
      throw invalid('DATABASE_URL sqlite: needs a file path, e.g. sqlite:./data/tessera.db')
    if (path === ':memory:') return { dialect: 'sqlite', filename: path }
    return { dialect: 'sqlite', filename: isAbsolute(path) ? path : resolve(cwd, path) }
  }
  if (value.startsWith('postgres://') || value.startsWith('postgresql://')) {
    try {
      new URL(value)
    } catch (error) {
      throw invalid('DATABASE_URL is not a valid postgres:// URL', error)
    }
    return { dialect: 'postgres', connectionString: value }
  }
  throw invalid(
    'DATABASE_URL must start with sqlite: (e.g. sqlite:./data/tessera.db) or postgres:// (e.g. postgres://user@host:5432/db)',
  )
}

function parseRedisUrl(value: string | undefined): string | null {
  if (value === undefined) return null
  let url: URL
  try {
    url = new URL(value)
  } catch (error) {
    throw invalid('REDIS_URL must be a redis:// or rediss:// URL', error)
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw invalid('REDIS_URL must be a redis:// or rediss:// URL')
  }
  return value
}

function parseMailer(
  value: string | undefined,
  cwd: string,
  mode: RuntimeMode,
  notice: (message: string) => void,
): MailerConfig {
  if (value === undefined) {
    if (mode === 'production') {
      notice(
        'TESSERA_MAILER is not set: password-reset links are written to the server log; set TESSERA_MAILER=smtp://... in production',
      )
    }
    return { kind: 'console' }
  }
  if (value === 'console') return { kind: 'console' }
  if (value.startsWith('file:')) {
    const dir = value.slice('file:'.length)
    if (dir === '') throw invalid('TESSERA_MAILER file: needs a directory, e.g. file:./data/outbox')
    return { kind: 'file', dir: isAbsolute(dir) ? dir : resolve(cwd, dir) }
  }
  if (value.startsWith('smtp://') || value.startsWith('smtps://')) {
    try {
      new URL(value)
    } catch (error) {
      throw invalid('TESSERA_MAILER is not a valid smtp:// URL', error)
    }
    return { kind: 'smtp', url: value }
  }
  throw invalid('TESSERA_MAILER must be console, file:<directory> or smtp://user:pass@host:port')
}

function parseDrain(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return 5
  const match = /^(\d{1,3}(?:\.\d{1,3})?)\s*s?$/.exec(value.trim().toLowerCase())
  const seconds = match === null ? Number.NaN : Number(match[1])
  if (!(seconds >= 0 && seconds <= 300)) {
    throw invalid(
      'TESSERA_SHUTDOWN_DRAIN must be a number of seconds from 0 to 300, e.g. 5 or 0.5 (0: close at once)',
    )
  }
  return seconds
}

function parseEmailConfig(get: (key: string) => string | undefined, cwd: string): EmailConfig {
  const productName = get('TESSERA_PRODUCT_NAME') ?? 'tessera'
  if (/[\r\n]/.test(productName) || productName.length > 100) {
    throw invalid('TESSERA_PRODUCT_NAME must be one line of at most 100 characters')
  }
  const caFile = get('TESSERA_SMTP_CA_FILE')
  let smtpCA: string | undefined
  if (caFile !== undefined) {
    try {
      smtpCA = readFileSync(resolve(cwd, caFile), 'utf8')
    } catch (error) {
      throw invalid(`TESSERA_SMTP_CA_FILE ${caFile} cannot be read`, error)
    }
    if (!smtpCA.includes('-----BEGIN CERTIFICATE-----')) {
      throw invalid('TESSERA_SMTP_CA_FILE must hold PEM certificates (-----BEGIN CERTIFICATE-----)')
    }
  }
  const verification = parseChoice(
    get('TESSERA_EMAIL_VERIFICATION') ?? 'optional',
    'TESSERA_EMAIL_VERIFICATION',
    ['optional', 'required'] as const,
  )
  return { productName, smtpCA, verification }
}

function parseCount(value: string | undefined, key: string, fallback: number): number {
  if (value === undefined) return fallback
  if (!/^\d{1,4}$/.test(value) || Number(value) < 1) {
    throw invalid(`${key} must be a whole number from 1 to 9999`)
  }
  return Number(value)
}

function parseChoice<T extends string>(value: string, key: string, choices: readonly T[]): T {
  const found = choices.find((choice) => choice === value)
  if (found === undefined) throw invalid(`${key} must be one of ${choices.join(', ')}`)
  return found
}

function splitList(value: string | undefined): string[] {
  if (value === undefined) return []
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
}

interface ResolvedSecret {
  value: string
  source: SecretSource
  file: string | undefined
}

function resolveSecret(
  get: (key: string) => string | undefined,
  mode: RuntimeMode,
  cwd: string,
  notice: (message: string) => void,
): ResolvedSecret {
  const set = SECRET_VARIABLES.filter((key) => get(key) !== undefined)
  const first = set[0]
  if (first !== undefined) {
    const value = get(first) ?? ''
    const differing = set.filter((key) => get(key) !== value)
    if (differing.length > 0) {
      notice(
        `${first} is used as the server secret; ${differing.join(' and ')} (different) ignored`,
      )
    }
    const weakness = secretWeakness(value)
    if (weakness !== null) {
      // SECURITY: ASVS 2.10.4 / 6.4: no known or short secret signs anything in production.
      if (mode === 'production') {
        throw invalid(
          `${first} ${weakness}; make a strong one with \`npx tessera-auth secret\` and put it in ${first}`,
        )
      }
      notice(`${first} ${weakness}; accepted because NODE_ENV is ${mode}, refused in production`)
    }
    return { value, source: first, file: undefined }
  }
  if (mode === 'production') {
    throw invalid(
      'TESSERA_SECRET is not set and NODE_ENV is production; make one with `npx tessera-auth secret` and set TESSERA_SECRET (SESSION_SECRET and JWT_SECRET are accepted too)',
    )
  }
  return developmentSecret(cwd, notice)
}

function developmentSecret(cwd: string, notice: (message: string) => void): ResolvedSecret {
  const file = resolve(cwd, DEV_SECRET_FILE)
  const existing = readSecretFile(file)
  if (existing !== null) return { value: existing, source: 'file', file }
  const generated = randomBytes(32).toString('base64url')
  mkdirSync(resolve(cwd, 'data'), { recursive: true, mode: 0o700 })
  try {
    // `wx`: when two processes start at once, the second reads the first one's secret.
    writeFileSync(file, `${generated}\n`, { mode: 0o600, flag: 'wx' })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      const raced = readSecretFile(file)
      if (raced !== null) return { value: raced, source: 'file', file }
    }
    throw invalid(`TESSERA_SECRET is not set and ${file} cannot be written`, error)
  }
  notice(
    `TESSERA_SECRET is not set: generated a development secret into ${file} (git-ignored, reused on restart); set TESSERA_SECRET in production`,
  )
  return { value: generated, source: 'generated', file }
}

function readSecretFile(file: string): string | null {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw invalid(`the development secret file ${file} cannot be read`, error)
  }
  const value = text.trim()
  if (secretWeakness(value) !== null) {
    throw invalid(
      `the development secret file ${file} holds a weak secret; delete it to generate a new one`,
    )
  }
  return value
}
