import type { Accounts } from '../../auth/accounts.js'
import type { Keyring } from '../../core/keyring.js'
import {
  createSessionManager,
  hashToken,
  type Session,
  type SessionManager,
  type SessionManagerOptions,
} from '../../core/session-manager.js'
import type { SessionRecord, SessionStore } from '../../core/session-store.js'

/** `data.kind` of the store record that holds a setup link (an admin-store record without a user). */
export const SETUP_KIND = 'admin-setup'
/** `data.kind` of a setup link taken by one use that is creating the administrator. */
export const SETUP_CLAIMED_KIND = 'admin-setup-claimed'
/** How often a claim retries a compare-and-set lost to a mere touch of the record. */
const CLAIM_ATTEMPTS = 8

/** Admin sessions end after 30 minutes without a request. */
export const ADMIN_IDLE_TIMEOUT = 1800
/** Admin sessions end 12 hours after sign-in, however active. */
export const ADMIN_ABSOLUTE_TIMEOUT = 43_200

/**
 * The admin panel's session manager: a {@link SessionManager} plus the one-use claim of the
 * setup link, a record of the same store.
 */
export interface AdminSessionManager extends SessionManager {
  /**
   * Takes the setup link of `token` for one use, or `null` when it is invalid, expired, already
   * taken or used. Of any number of concurrent callers, on any number of processes sharing the
   * store, at most one gets the session (a compare-and-set on the record's version).
   * @throws TesseraError `store_unavailable`
   */
  claimSetupLink(token: string): Promise<Session | null>
  /**
   * Gives a claimed link back, when the administrator could not be created (a weak password, a
   * taken e-mail), so the person can correct the form. A link no longer claimed is left alone.
   * @throws TesseraError `store_unavailable`
   */
  releaseSetupLink(token: string): Promise<void>
}

/**
 * The session manager of the admin panel: its own cookie (`tessera_admin`, `Path=/admin`,
 * `SameSite=Strict`, `HttpOnly`), its own signing purpose (`admin-session`), 30 minutes idle and
 * 12 hours absolute, and the claim of the setup link. Give it the same store as the
 * application's sessions or another one.
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
): AdminSessionManager {
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
  const now = options.now ?? Date.now
  const manager = createSessionManager(store, keyring, managerOptions)

  /** Compare-and-sets the setup record of `token` from kind `from` to kind `to`. */
  async function swapKind(token: string, from: string, to: string): Promise<boolean> {
    const id = hashToken(token)
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
      const record = await store.get(id)
      if (record === null || record.userId !== null || record.data.kind !== from) return false
      const at = now()
      if (at >= Math.min(record.expiresAt, record.absoluteExpiresAt)) return false
      const next: SessionRecord = {
        ...record,
        version: record.version + 1,
        data: { ...record.data, kind: to },
      }
      // SECURITY: one setup link, one administrator (API.md): the record changes kind only if
      // nobody wrote it since we read it, so of concurrent uses on every process sharing the
      // store exactly one wins; a lost compare-and-set is retried only while the link is unused
      // (another request may merely have touched it).
      if (await store.update(next, record.version)) return true
    }
    return false
  }

  return Object.assign(manager, {
    async claimSetupLink(token: string): Promise<Session | null> {
      const found = await manager.validateToken(token)
      if (found === null || found.session.userId !== null) return null
      if (found.session.data.kind !== SETUP_KIND) return null
      return (await swapKind(token, SETUP_KIND, SETUP_CLAIMED_KIND)) ? found.session : null
    },
    async releaseSetupLink(token: string): Promise<void> {
      await swapKind(token, SETUP_CLAIMED_KIND, SETUP_KIND)
    },
  })
}

/** Options of {@link createSetupLink}. */
export interface SetupLinkOptions {
  /** The accounts (to see whether an administrator exists). */
  accounts: Pick<Accounts, 'countAdmins'>
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
 * works once, across processes: a use first claims the record by compare-and-set
 * ({@link AdminSessionManager.claimSetupLink}), so of parallel uses exactly one creates an
 * administrator; the record is deleted once it exists, and the page refuses as soon as any
 * administrator exists. A restart with still no administrator prints a new link.
 *
 * @example
 * ```ts
 * const link = await createSetupLink({ accounts: auth.accounts, adminSessions, publicUrl: config.publicUrl })
 * if (link !== null) logger.warn({ setupLink: link }, 'no administrator yet: open this link once to create one')
 * ```
 */
export async function createSetupLink(options: SetupLinkOptions): Promise<string | null> {
  if ((await options.accounts.countAdmins()) > 0) return null
  const issued = await options.adminSessions.create(null, { data: { kind: SETUP_KIND } })
  const base = (options.basePath ?? '/admin').replace(/\/+$/, '')
  const url = new URL(options.publicUrl)
  const prefix = url.pathname.replace(/\/+$/, '')
  return `${url.origin}${prefix}${base}/setup?token=${encodeURIComponent(issued.token)}`
}
