import type { AdminApp, AdminKit } from '../context.js'
import { pageContext, send } from '../context.js'
import { takeFlash } from '../flash.js'
import { csrfFor } from '../forms.js'
import { dashboardPage } from '../views/dashboard.js'

/** GET `/`: users, administrators, live sessions and failed logins at a glance. */
export function dashboardRoutes(app: AdminApp, kit: AdminKit): void {
  const { auth, countSessions } = kit.deps
  app.get('/', async (c) => {
    const flash = await takeFlash(kit, c)
    const since = kit.now() - 86_400_000
    const [users, admins, failed, recent, activeSessions] = await Promise.all([
      auth.accounts.listUsers({ limit: 1 }),
      kit.queries.countAdmins(),
      kit.queries.countFailedLogins(since),
      auth.audit.list({ type: 'login', since, limit: 100 }),
      countSessions === undefined ? Promise.resolve(null) : countSessions(),
    ])
    const page = pageContext(kit, c, csrfFor(kit, c.get('session')), flash)
    return send(
      c,
      dashboardPage(
        page,
        {
          users: users.total,
          admins,
          activeSessions,
          failedLogins: failed,
          recent: recent.filter((e) => e.outcome === 'failure').slice(0, 10),
        },
        kit.now(),
      ),
    )
  })
}
