/*
 * The admin panel's Hono sub-app, composed from its route modules (routes/*) over the shared
 * helpers: headers.ts (CSP and friends), errors.ts (error pages), forms.ts (form bodies, CSRF),
 * flash.ts (post/redirect/get messages), guard.ts (who may use the panel), views/layout.ts.
 */
import { Hono, type Env } from 'hono'
import { createAdminKit, type AdminDeps, type AdminEnv } from './context.js'
import { errorPages } from './errors.js'
import { createPanelAuth } from './guard.js'
import { securityHeaders } from './headers.js'
import { auditRoutes } from './routes/audit.js'
import { dashboardRoutes } from './routes/dashboard.js'
import { groupRoutes } from './routes/groups.js'
import { identityRoutes } from './routes/identities.js'
import { keyRoutes } from './routes/keys.js'
import { sessionRoutes } from './routes/sessions.js'
import { setupRoutes } from './routes/setup.js'
import { signInRoutes, signOutRoutes } from './routes/sign-in.js'
import { userRoutes } from './routes/users.js'

const FAVICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1f5fbf"/><path d="M4 4h8v2H9v7H7V6H4z" fill="#fff"/></svg>'

/**
 * The admin panel: server-rendered pages under `basePath` (default `/admin`) for administrators
 * and holders of `admin.access`. Mount it on the server app with {@link mountAdminApp}.
 *
 * Every response carries a CSP with a fresh nonce (for the one stylesheet; no script is allowed
 * at all), `Cache-Control: no-store` and anti-framing headers. Every POST needs the CSRF token of
 * its form and passes the Origin / `Sec-Fetch-Site` rule; every action redirects (POST, redirect,
 * GET) to a page that says what it did.
 *
 * @throws TesseraError `config_invalid` for a bad `publicUrl`, trusted origin or proxy entry.
 * @example
 * ```ts
 * mountAdminApp(app, createAdminApp(deps))
 * ```
 */
export function createAdminApp(deps: AdminDeps): Hono<AdminEnv> {
  const kit = createAdminKit(deps)
  const app = new Hono<AdminEnv>()
  const panelAuth = createPanelAuth(kit)
  app.use(securityHeaders())
  app.onError(errorPages(kit))

  // No session needed.
  app.get('/favicon.svg', (c) => c.body(FAVICON, 200, { 'Content-Type': 'image/svg+xml' }))
  // Core's request authentication on every other path: the session, the user, the cross-site
  // rule; sign-in and setup check their own form bindings besides.
  app.use(panelAuth.middleware)
  signInRoutes(app, kit)
  setupRoutes(app, kit)

  // Everything registered below needs an admin session of someone who may use the panel.
  app.use(panelAuth.requireAdmin)
  signOutRoutes(app, kit)
  dashboardRoutes(app, kit)
  userRoutes(app, kit)
  sessionRoutes(app, kit)
  identityRoutes(app, kit)
  groupRoutes(app, kit)
  auditRoutes(app, kit)
  keyRoutes(app, kit)
  return app
}

/**
 * Mounts the panel on the server app at `basePath` (default `/admin`), and redirects
 * `/admin/` to `/admin` (a mounted sub-app's root matches only the path without the slash).
 *
 * @example
 * ```ts
 * mountAdminApp(app, createAdminApp(deps))
 * ```
 */
export function mountAdminApp<E extends Env>(
  app: Hono<E>,
  admin: Hono<AdminEnv>,
  options: { basePath?: string } = {},
): void {
  const base = (options.basePath ?? '/admin').replace(/\/+$/, '')
  // The request's own path without the slash: under a base path (createApp's), it carries it.
  app.get(`${base}/`, (c) => c.redirect(c.req.path.replace(/\/+$/, ''), 308))
  app.route(base, admin)
}
