import type { AuditEvent } from '../../../auth/audit.js'
import { html, type SafeHtml } from '../html.js'
import { auditTable } from './audit.js'
import type { AuditNames } from './audit-detail.js'
import { loginChart, type ChartBucket } from './chart.js'
import { layout, plural, type PageContext } from './layout.js'

/** The dashboard numbers. */
export interface DashboardData {
  users: number
  admins: number
  activeSessions: number | null
  failedLogins: number
  recent: AuditEvent[]
  names: AuditNames
  /** Sign-ins and failures per hour over the last 24 hours, oldest first. */
  hourly: ChartBucket[]
  /** Sign-ins and failures per day over the last 7 days (UTC), oldest first. */
  daily: ChartBucket[]
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']

function hour(ms: number): string {
  return `${String(new Date(ms).getUTCHours()).padStart(2, '0')}:00`
}

function day(ms: number): string {
  const date = new Date(ms)
  return `${WEEKDAYS[date.getUTCDay()] ?? ''} ${date.getUTCDate()}`
}

function legend(): SafeHtml {
  return html`<p class="legend" aria-hidden="true">
    <span class="key-ok">sign-ins</span><span class="key-fail">failures</span>
  </p>`
}

export function dashboardPage(page: PageContext, data: DashboardData, now: number): SafeHtml {
  const hourly = loginChart({
    id: 'logins-24h',
    title: 'Sign-ins and failures per hour, last 24 hours (UTC)',
    buckets: data.hourly,
    describe: (start) => `${hour(start)}–${hour(start + 3_600_000)} UTC`,
    label: (start) => (new Date(start).getUTCHours() % 6 === 0 ? hour(start) : ''),
  })
  const daily = loginChart({
    id: 'logins-7d',
    title: 'Sign-ins and failures per day, last 7 days (UTC)',
    buckets: data.daily,
    describe: (start) => day(start),
    label: (start) => day(start),
  })
  return layout(
    page,
    'Dashboard',
    html`<h1>Dashboard</h1>
      <div class="cards">
        <div class="card">
          <div class="n" id="count-users">${data.users}</div>
          <a href="${page.base}/users">${data.users === 1 ? 'user' : 'users'}</a>
          <span class="muted">(${plural(data.admins, 'admin')})</span>
        </div>
        <div class="card">
          <div class="n" id="count-sessions">
            ${data.activeSessions === null ? '—' : data.activeSessions}
          </div>
          <a href="${page.base}/sessions"
            >active ${data.activeSessions === 1 ? 'session' : 'sessions'}</a
          >${
            data.activeSessions === null
              ? html` <span class="muted">(the store cannot count)</span>`
              : ''
          }
        </div>
        <div class="card">
          <div class="n" id="count-failed">${data.failedLogins}</div>
          <a href="${page.base}/audit?type=login"
            >failed ${data.failedLogins === 1 ? 'login' : 'logins'}</a
          >
          in the last 24 h
        </div>
      </div>
      <h2>Sign-ins</h2>
      <div class="cards">
        <div class="card">
          <h3 class="muted">Last 24 hours</h3>
          ${hourly}
        </div>
        <div class="card">
          <h3 class="muted">Last 7 days</h3>
          ${daily}
        </div>
      </div>
      ${legend()}
      <h2>Recent failed logins</h2>
      ${
        data.recent.length === 0
          ? html`<p class="muted">None in the last 24 hours.</p>`
          : auditTable(page, data.recent, data.names, now)
      }`,
    { current: '/' },
  )
}
