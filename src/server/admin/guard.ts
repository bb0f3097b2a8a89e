import type { MiddlewareHandler } from 'hono'
import type { User } from '../../auth/accounts.js'
import type { AdminEnv, AdminKit } from './context.js'
import { PageError } from './errors.js'

/** The permission that opens the admin panel to a user who is not an administrator. */
export const ADMIN_PERMISSION = 'admin.access'

/** True for an active administrator or an active holder of {@link ADMIN_PERMISSION}. */
export async function mayUsePanel(kit: AdminKit, user: User): Promise<boolean> {
  return (
    user.isActive &&
    (user.isAdmin || (await kit.deps.auth.accounts.hasPermission(user, ADMIN_PERMISSION)))
  )
}

/**
 * Admits only requests with a live admin session of a user who may use the panel, and puts the
 * session and the user on the context; anyone else is sent to the sign-in page (or refused).
 */
export function requireAdmin(kit: AdminKit): MiddlewareHandler<AdminEnv> {
  const { adminSessions, auth } = kit.deps
  return async (c, next) => {
    const validated = await adminSessions.validate(c.req.header('cookie'))
    if (validated === null || validated.session.userId === null) {
      // SECURITY: a POST without a session changes nothing; it is sent to the sign-in page.
      return c.redirect(`${kit.base}/login`, 303)
    }
    if (validated.setCookie !== undefined)
      c.header('Set-Cookie', validated.setCookie, { append: true })
    const user = await auth.accounts.findUserById(validated.session.userId)
    // SECURITY: rights are re-read on every request, so a disable or demotion ends access at once.
    if (user === null || !(await mayUsePanel(kit, user))) {
      throw new PageError(403, 'Forbidden', 'This account may not use the admin panel.')
    }
    c.set('session', validated.session)
    c.set('admin', user)
    await next()
  }
}
