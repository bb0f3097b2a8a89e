/**
 * The admin panel of the tessera server: a Hono sub-app mounted at `/admin`, its session manager
 * and the first-start setup link. See docs/admin.md.
 */
export { createAdminApp, mountAdminApp } from './app.js'
export type { AdminDeps, AdminEnv } from './context.js'
export { ADMIN_PERMISSION } from './guard.js'
export {
  ADMIN_ABSOLUTE_TIMEOUT,
  ADMIN_IDLE_TIMEOUT,
  createAdminSessionManager,
  createSetupLink,
  type AdminSessionManager,
  type SetupLinkOptions,
} from './setup.js'
export { escapeHtml, html, SafeHtml } from './html.js'
