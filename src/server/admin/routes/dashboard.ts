import { pageContext, send, type AdminApp, type AdminKit } from '../context.js'
import { takeFlash } from '../flash.js'
import { csrfFor } from '../forms.js'
import type { AuditOutcome, AuditTimeBucket } from '../../../auth/audit.js'
import type { ChartBucket } from '../views/chart.js'
import { dashboardPage } from '../views/dashboard.js'
import { auditNames } from './audit.js'

const HOUR = 3_600_000
const DAY = 86_400_000

// Every login that did not sign anyone in counts as a failure: a wrong password, a disabled
// account, a correct password without the right to the panel (docs/decisions.md).
const FAILED: readonly AuditOutcome[] = ['failure', 'denied']

/** `count` buckets of `size` ms ending with the one that holds `at`, filled from `counts`. */
function buckets(
  counts: readonly AuditTimeBucket[],
  at: number,
  size: number,
  count: number,
): ChartBucket[] {
  const first = Math.floor(at / size) - count + 1
  const out: ChartBucket[] = []
  for (let n = first; n < first + count; n++) out.push({ start: n * size, success: 0, failure: 0 })
  for (const row of counts) {
    const bucket = out[Math.floor(row.start / size) - first]
    if (bucket === undefined) continue
    if (row.outcome === 'success') bucket.success += row.count
    else bucket.failure += row.count
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
      auth.accounts.countAdmins(),
      auth.audit.count({ type: 'login', outcomes: FAILED, since }),
      auth.audit.list({ type: 'login', since, limit: 100 }),
      countSessions === undefined ? Promise.resolve(null) : countSessions(),
      auth.audit.countOverTime({ type: 'login', since: hourSince, bucketSeconds: HOUR / 1000 }),
      auth.audit.countOverTime({ type: 'login', since: daySince, bucketSeconds: DAY / 1000 }),
    ])
    const failures = recent.filter((e) => e.outcome !== 'success').slice(0, 10)
    const page = pageContext(kit, c, csrfFor(c), flash)
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
