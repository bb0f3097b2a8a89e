/*
 * Who may use the panel, through core's one request authentication (`tessera-auth/hono` over
 * src/core/request-auth.ts): the panel's own session manager, the user re-read on every request,
 * the cross-site rule on every unsafe request and, for a signed-in administrator, the form-token
 * proof (the `_csrf` field, bound to `admin:<session id>`). Refusals are pages, not JSON.
 */
import type { MiddlewareHandler } from 'hono'
import type { User } from '../../auth/accounts.js'
import { tessera, type AuthRefusal, type TesseraEnv } from '../../adapters/hono.js'
import { anonymousPage, send, type AdminContext, type AdminEnv, type AdminKit } from './context.js'
import { readForm } from './forms.js'
import { messagePage } from './views/layout.js'

/** The permission that opens the admin panel to a user who is not an administrator. */
export const ADMIN_PERMISSION = 'admin.access'

/** True for an active administrator or an active holder of {@link ADMIN_PERMISSION}. */
export async function mayUsePanel(kit: AdminKit, user: User): Promise<boolean> {
  return (
    user.isActive &&
    (user.isAdmin || (await kit.deps.auth.accounts.hasPermission(user, ADMIN_PERMISSION)))
  )
}

/** The panel's request authentication and its guard for signed-in pages. */
export interface PanelAuth {
  /** Runs on every panel request: session, user, cross-site rule and form token. */
  middleware: MiddlewareHandler<AdminEnv>
  /** Admits only a signed-in user who may use the panel, and sets `admin` and `adminSession`. */
  requireAdmin: MiddlewareHandler<AdminEnv>
}

function refusalPage(kit: AdminKit, c: AdminContext, refusal: AuthRefusal): Response {
  for (const [name, value] of Object.entries(refusal.headers)) c.header(name, value)
  const page = anonymousPage(kit, c, '')
  if (refusal.code === 'forbidden') {
    return send(c, messagePage(page, 'Forbidden', 'This account may not use the admin panel.'), 403)
  }
  if (refusal.status === 503) {
    return send(
      c,
      messagePage(
        page,
        'Temporarily unavailable',
        'A store the panel needs does not answer. Try again in a moment.',
      ),
      503,
    )
  }
  // A cross-site post, or a form without its token (csrf_failed): nothing was changed.
  return send(c, messagePage(page, 'Request refused', `${refusal.message} (${refusal.code})`), 403)
}

/** The adapter's callbacks see a plain Hono context; on the panel's sub-app it is the panel's. */
function panelContext(c: unknown): AdminContext {
  return c as AdminContext
}

/** Builds the panel's request authentication over `kit`. */
export function createPanelAuth(kit: AdminKit): PanelAuth {
  const { adminSessions, keyring, auth } = kit.deps
  const core = tessera<User>({
    sessions: adminSessions,
    keyring,
    trustedOrigins: kit.trusted,
    // SECURITY: every unsafe request of a signed-in administrator needs its form's token, bound
    // to `admin:<session id>`, besides the Origin / Sec-Fetch-Site rule (ASVS 4.2.2, 13.2.3).
    csrf: { proof: 'form-token', scope: 'admin' },
    // The form's own field; Hono keeps the body, so the route reads the form again.
    csrfToken: async (c) => (await readForm(panelContext(c))).get('_csrf'),
    // SECURITY: rights are re-read on every request, so a disable or demotion ends access at once.
    loadUser: async ({ userId }) => {
      const user = await auth.accounts.findUserById(userId)
      if (user === null) return null
      return { permissions: (await mayUsePanel(kit, user)) ? [ADMIN_PERMISSION] : [], record: user }
    },
    onRefusal: (c, refusal) =>
      // SECURITY: no session: a page or a POST changes nothing and goes to the sign-in page.
      refusal.status === 401
        ? c.redirect(`${kit.base}/login`, 303)
        : refusalPage(kit, panelContext(c), refusal),
  })
  const allowed = core.requirePermission(ADMIN_PERMISSION)
  const asAdmin = (handler: MiddlewareHandler<TesseraEnv<User>>): MiddlewareHandler<AdminEnv> =>
    handler as unknown as MiddlewareHandler<AdminEnv>
  return {
    middleware: asAdmin(core.middleware),
    requireAdmin: async (c, next) => {
      const refused = await asAdmin(allowed)(c, async () => {
        const session = c.get('session')
        const user = c.get('user')
        if (session === null || user === null) return
        c.set('adminSession', session)
        c.set('admin', user.record)
        await next()
      })
      return refused ?? undefined
    },
  }
}
