import type { TesseraDB } from '../../auth/db/database.js'
import type { Keyring } from '../../core/keyring.js'
import {
  createSessionManager,
  type SessionManager,
  type SessionManagerOptions,
} from '../../core/session-manager.js'
import type { SessionStore } from '../../core/session-store.js'
import { countAdmins } from './queries.js'

/** `data.kind` of the store record that holds a setup link (an admin-store record without a user). */
export const SETUP_KIND = 'admin-setup'

/** Admin sessions end after 30 minutes without a request. */
export const ADMIN_IDLE_TIMEOUT = 1800
/** Admin sessions end 12 hours after sign-in, however active. */
export const ADMIN_ABSOLUTE_TIMEOUT = 43_200

/**
 * The session manager of the admin panel: its own cookie (`tessera_admin`, `Path=/admin`,
 * `SameSite=Strict`, `HttpOnly`), its own signing purpose (`admin-session`), 30 minutes idle and
 * 12 hours absolute. Give it the same store as the application's sessions or another one.
 *
 * @example
 * ```ts
 * const adminSessions = createAdminSessionManager(backends.sessionStore, keyring, { secure: config.https })
 * ```
 */
export function createAdminSessionManager(
  store: SessionStore,
  keyring: Keyring,
  options: { secure?: boolean; basePath?: string; now?: () => number } = {},
): SessionManager {
  const managerOptions: SessionManagerOptions = {
    purpose: 'admin-session',
    cookieName: options.secure === true ? '__Secure-tessera_admin' : 'tessera_admin',
    path: options.basePath ?? '/admin',
    sameSite: 'Strict',
    idleTimeout: ADMIN_IDLE_TIMEOUT,
    absoluteTimeout: ADMIN_ABSOLUTE_TIMEOUT,
    secure: options.secure === true,
  }
  if (options.now !== undefined) managerOptions.now = options.now
  return createSessionManager(store, keyring, managerOptions)
}

/** Options of {@link createSetupLink}. */
export interface SetupLinkOptions {
  /** The accounts database (to see whether an administrator exists). */
  db: TesseraDB
  /** The admin session manager given to `createAdminApp` (the link is a record in its store). */
  adminSessions: SessionManager
  /** The server's public URL, e.g. `https://auth.example.com`; the link is built from it only. */
  publicUrl: string
  /** Where the panel is mounted. @default '/admin' */
  basePath?: string
}

/**
 * The one-time link that creates the first administrator, or `null` when an administrator
 * already exists. Call it once at start and print the link to the operator's log.
 *
 * The token is 32 random bytes; the store keeps only its SHA-256 (it is a record of the admin
 * session store without a user, `data.kind = 'admin-setup'`), so the link works on every process
 * sharing that store, for 30 minutes after it was made or last opened (12 hours at most). It
 * works once: the record is deleted when the administrator is created, and the page refuses as
 * soon as any administrator exists. A restart with still no administrator prints a new link.
 *
 * @example
 * ```ts
 * const link = await createSetupLink({ db, adminSessions, publicUrl: config.publicUrl })
 * if (link !== null) logger.warn({ setupLink: link }, 'no administrator yet: open this link once to create one')
 * ```
 */
export async function createSetupLink(options: SetupLinkOptions): Promise<string | null> {
  if ((await countAdmins(options.db)) > 0) return null
  const issued = await options.adminSessions.create(null, { data: { kind: SETUP_KIND } })
  const base = (options.basePath ?? '/admin').replace(/\/+$/, '')
  const url = new URL(options.publicUrl)
  const prefix = url.pathname.replace(/\/+$/, '')
  return `${url.origin}${prefix}${base}/setup?token=${encodeURIComponent(issued.token)}`
}
