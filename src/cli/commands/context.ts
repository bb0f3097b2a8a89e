import { createAccounts, type Accounts } from '../../auth/accounts.js'
import { createAuditLog } from '../../auth/audit.js'
import { createPasswordHasher, type PasswordHasher } from '../../auth/passwords.js'
import { createKeyring, type Keyring } from '../../core/keyring.js'
import { createSessionManager, type SessionManager } from '../../core/session-manager.js'
import { openBackends, type Backends } from '../../server/backends.js'
import { loadConfig, type ServerConfig } from '../../server/config.js'
import { createLogger } from '../../server/logger.js'
import { pino } from 'pino'

/** What a CLI command works on: the same stores and services as the server. */
export interface CLIContext {
  config: ServerConfig
  keyring: Keyring
  backends: Backends
  sessions: SessionManager
  accounts: Accounts
  passwords: PasswordHasher
  close(): Promise<void>
}

/**
 * Opens the server's configuration (environment, `.env`, `.env.local`) and stores, migrated, for
 * a command. Logs go to stderr at `warn`, so stdout carries only the command's output.
 */
export async function openCLIContext(): Promise<CLIContext> {
  const config = loadConfig(process.env, { cwd: process.cwd() })
  const logger = createLogger('warn', pino.destination(2))
  const keyring = createKeyring(config.secret, {
    fallbacks: config.secretFallbacks,
    policy: config.keyringPolicy,
    onWarning: () => {},
  })
  const backends = await openBackends(config, logger)
  const sessions = createSessionManager(backends.sessionStore, keyring, {
    secure: config.https,
    idleTimeout: config.sessionIdle,
    absoluteTimeout: config.sessionAbsolute,
  })
  const audit = createAuditLog(backends.db)
  const accounts = createAccounts(backends.db, { sessions, audit })
  return {
    config,
    keyring,
    backends,
    sessions,
    accounts,
    passwords: createPasswordHasher(),
    close: () => backends.close(),
  }
}
