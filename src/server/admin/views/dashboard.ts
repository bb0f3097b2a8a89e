import type { AuditEvent } from '../../../auth/audit.js'
import { html, type SafeHtml } from '../html.js'
import { auditTable } from './audit.js'
import { layout, type PageContext } from './layout.js'

/** The dashboard numbers. */
export interface DashboardData {
  users: number
  admins: number
  activeSessions: number | null
  failedLogins: number
  recent: AuditEvent[]
}

export function dashboardPage(page: PageContext, data: DashboardData, now: number): SafeHtml {
  return layout(
    page,
    'Dashboard',
    html`<h1>Dashboard</h1>
      <div class="cards">
        <div class="card">
          <div class="n" id="count-users">${data.users}</div>
          <a href="${page.base}/users">users</a> <span class="muted">(${data.admins} admin)</span>
        </div>
        <div class="card">
          <div class="n" id="count-sessions">
            ${data.activeSessions === null ? '—' : data.activeSessions}
          </div>
          active
          sessions${data.activeSessions === null ? html` <span class="muted">(the store cannot count)</span>` : ''}
        </div>
        <div class="card">
          <div class="n" id="count-failed">${data.failedLogins}</div>
          <a href="${page.base}/audit?type=login">failed logins</a> in the last 24 h
        </div>
      </div>
      <h2>Recent failed logins</h2>
      ${data.recent.length === 0 ? html`<p class="muted">None in the last 24 hours.</p>` : auditTable(page, data.recent, new Map(), now)}`,
    { current: '/' },
  )
}
