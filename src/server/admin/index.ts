/**
 * The admin panel of the tessera server: a Hono sub-app mounted at `/admin`, its session manager
 * and the first-start setup link. See docs/admin.md.
 */
export {
  ADMIN_PERMISSION,
  createAdminApp,
  mountAdminApp,
  type AdminDeps,
  type AdminEnv,
} from './app.js'
export {
  ADMIN_ABSOLUTE_TIMEOUT,
  ADMIN_IDLE_TIMEOUT,
  countAdmins,
  createAdminSessionManager,
  createSetupLink,
  type SetupLinkOptions,
} from './setup.js'
export { escapeHtml, html, SafeHtml } from './html.js'
