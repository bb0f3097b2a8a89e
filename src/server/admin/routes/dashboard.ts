import { pageContext, send, type AdminApp, type AdminKit } from '../context.js'
import { takeFlash } from '../flash.js'
import { csrfFor } from '../forms.js'
import type { ChartBucket } from '../views/chart.js'
import { dashboardPage } from '../views/dashboard.js'
import { auditNames } from './audit.js'

const HOUR = 3_600_000
const DAY = 86_400_000

/** `count` buckets of `size` ms ending with the one that holds `at`, filled from `counts`. */
function buckets(
  counts: ReadonlyArray<{ bucket: number; result: 'success' | 'failure'; count: number }>,
  at: number,
  size: number,
  count: number,
): ChartBucket[] {
  const last = Math.floor(at / size)
  const out: ChartBucket[] = []
  for (let n = last - count + 1; n <= last; n++)
    out.push({ start: n * size, success: 0, failure: 0 })
  for (const row of counts) {
    const bucket = out[row.bucket - (last - count + 1)]
    if (bucket !== undefined) bucket[row.result] += row.count
  }
  return out
}

/** GET `/`: users, live sessions, failed logins and the sign-in charts at a glance. */
export function dashboardRoutes(app: AdminApp, kit: AdminKit): void {
  const { auth, countSessions } = kit.deps
  app.get('/', async (c) => {
    const flash = await takeFlash(kit, c)
    const at = kit.now()
    const since = at - DAY
    const hourSince = (Math.floor(at / HOUR) - 23) * HOUR
    const daySince = (Math.floor(at / DAY) - 6) * DAY
    const [users, admins, failed, recent, activeSessions, hourly, daily] = await Promise.all([
      auth.accounts.listUsers({ limit: 1 }),
      kit.queries.countAdmins(),
      kit.queries.countFailedLogins(since),
      auth.audit.list({ type: 'login', since, limit: 100 }),
      countSessions === undefined ? Promise.resolve(null) : countSessions(),
      kit.queries.loginCounts(hourSince, HOUR),
      kit.queries.loginCounts(daySince, DAY),
    ])
    const failures = recent.filter((e) => e.outcome !== 'success').slice(0, 10)
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
          recent: failures,
          names: await auditNames(kit, failures),
          hourly: buckets(hourly, at, HOUR, 24),
          daily: buckets(daily, at, DAY, 7),
        },
        at,
      ),
    )
  })
}
