import { pino, type Logger } from 'pino'
import { createAccounts, type Accounts, type User } from '../auth/accounts.js'
import { createAuditLog, type AuditLog } from '../auth/audit.js'
import type { KeySet } from '../auth/keys.js'
import type { PasswordPolicyOptions } from '../auth/password-policy.js'
import { createPasswordHasher, type PasswordHasher } from '../auth/passwords.js'
import { TesseraError } from '../core/errors.js'
import { createKeyring, type Keyring } from '../core/keyring.js'
import { createSessionManager, type SessionManager } from '../core/session-manager.js'
import {
  loadConfig,
  loadKeys,
  openBackends,
  type Backends,
  type ServerConfig,
} from '../server/index.js'

/** What a CLI command reads and writes; `main` fills it from the process by default. */
export interface CliIO {
  /** The environment the configuration is read from (like the server's `process.env`). */
  env: Readonly<Record<string, string | undefined>>
  /** Directory of `.env`, `.env.local` and relative paths. */
  cwd: string
  /** Where passwords are read from. */
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown }
  /** Writes one line to stdout. */
  out: (line: string) => void
  /** Writes one line to stderr (notices, errors). */
  err: (line: string) => void
  /** Writes a prompt (no newline) where the person typing sees it: stderr. */
  prompt: (text: string) => void
}

/** The server's configuration, stores and services, opened the way the server opens them. */
export interface CliContext {
  config: ServerConfig
  backends: Backends
  keyring: Keyring
  sessions: SessionManager
  accounts: Accounts
  audit: AuditLog
  passwords: PasswordHasher
  passwordPolicy: PasswordPolicyOptions
  /** Migrations applied while opening (normally empty: the server migrates on start too). */
  migrationsApplied: string[]
  /** The signing keys, loaded on first call (an empty key table gets its first keys). */
  keys(): Promise<KeySet>
  /** Closes every connection opened. */
  close(): Promise<void>
}

/**
 * Opens what `tessera serve` opens, from the same environment: configuration
 * (`loadConfig`), backends (`openBackends`: database migrated, session, refresh and rate-limit
 * stores, key storage), keyring, session manager and accounts. So `tessera user disable` against
 * the server's `DATABASE_URL`/`REDIS_URL` ends sessions the running server validates.
 *
 * @throws TesseraError `config_invalid` for a bad environment, `store_unavailable` when the
 * database cannot be opened
 */
export async function openCliContext(io: Pick<CliIO, 'env' | 'cwd' | 'err'>): Promise<CliContext> {
  const config = loadConfig(io.env, {
    cwd: io.cwd,
    onNotice: (line) => io.err(`tessera: ${line}`),
  })
  const migrationsApplied: string[] = []
  const logger = cliLogger(io.err, migrationsApplied)
  const keyring = createKeyring(config.secret, {
    fallbacks: config.secretFallbacks,
    policy: config.keyringPolicy,
    onWarning: () => {},
  })
  const backends = await openBackends(config, logger)
  // Same options as the server's session manager (src/server/services.ts).
  const sessions = createSessionManager(backends.sessionStore, keyring, {
    secure: config.https,
    idleTimeout: config.sessionIdle,
    absoluteTimeout: config.sessionAbsolute,
  })
  const audit = createAuditLog(backends.db)
  const accounts = createAccounts(backends.db, { sessions, audit })
  let keys: Promise<KeySet> | undefined
  return {
    config,
    backends,
    keyring,
    sessions,
    accounts,
    audit,
    passwords: createPasswordHasher(),
    passwordPolicy: {
      minLength: config.passwordMinLength,
      maxLength: config.passwordMaxLength,
      minStrength: config.passwordMinStrength,
    },
    migrationsApplied,
    keys: () => (keys ??= loadKeys(config, keyring, backends)),
    close: () => backends.close(),
  }
}

/** Opens the context, runs `body`, and closes the context whatever happens. */
export async function withCliContext<T>(
  io: Pick<CliIO, 'env' | 'cwd' | 'err'>,
  body: (context: CliContext) => Promise<T>,
): Promise<T> {
  const context = await openCliContext(io)
  try {
    return await body(context)
  } finally {
    await context.close()
  }
}

const USER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** True when `value` has the shape of a user id (a UUID). */
export function isUserId(value: string): boolean {
  return USER_ID.test(value)
}

/**
 * The user named by an e-mail (anything with `@`) or an id (a UUID).
 *
 * @throws TesseraError `not_found` naming what was looked for
 */
export async function findUser(accounts: Accounts, emailOrId: string): Promise<User> {
  const user = emailOrId.includes('@')
    ? await accounts.findUserByEmail(emailOrId)
    : isUserId(emailOrId)
      ? await accounts.findUserById(emailOrId.toLowerCase())
      : null
  if (user === null) throw new TesseraError('not_found', `no user "${oneLine(emailOrId)}"`)
  return user
}

/** A value fit for a one-line message: control characters replaced, at most 200 characters. */
export function oneLine(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\u0000-\u001f\u007f]/g, '?').slice(0, 200)
}

// A pino logger for openBackends: errors go to stderr as one plain line; the migration report
// is kept so `tessera migrate` can print it; everything else stays quiet (a CLI is not a server).
function cliLogger(err: (line: string) => void, migrations: string[]): Logger {
  return pino(
    { level: 'info', base: null, timestamp: false },
    {
      write(text: string): void {
        let entry: { level?: number; msg?: string; migrations?: unknown }
        try {
          entry = JSON.parse(text) as typeof entry
        } catch {
          return
        }
        if (Array.isArray(entry.migrations)) {
          for (const name of entry.migrations) if (typeof name === 'string') migrations.push(name)
        }
        if ((entry.level ?? 0) >= 50 && entry.msg !== undefined) err(`tessera: ${entry.msg}`)
      },
    },
  )
}
