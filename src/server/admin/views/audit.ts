import type { AuditEvent } from '../../../auth/audit.js'
import { html, trustedHtml, type SafeHtml } from '../html.js'
import { describeDetail, type AuditNames } from './audit-detail.js'
import { errorMessage } from './fields.js'
import {
  emailText,
  formatAge,
  formatTime,
  layout,
  pager,
  yesNo,
  type PageContext,
} from './layout.js'

/** A user cell: the e-mail linking to the user, or the id of a user who no longer exists. */
function userCell(page: PageContext, userId: string | null, names: AuditNames): SafeHtml | string {
  if (userId === null) return '—'
  const email = names.emails.get(userId)
  return html`<a href="${page.base}/users/${encodeURIComponent(userId)}"
    >${email === undefined ? html`<span class="muted">deleted user</span> <code>${userId}</code>` : emailText(email)}</a
  >`
}

/** The table of audit events (the audit log, the dashboard's recent failures). */
export function auditTable(
  page: PageContext,
  events: AuditEvent[],
  names: AuditNames,
  now: number,
): SafeHtml {
  const rows = events.map((event) => {
    const actor = typeof event.detail.actorId === 'string' ? event.detail.actorId : null
    // A failed login for an unknown address has no user, but the address tried is recorded.
    const tried = event.userId === null && typeof event.detail.email === 'string'
    return html`<tr>
      <td data-label="When" title="${formatTime(event.at)}">
        ${formatTime(event.at)}<br /><span class="muted">${formatAge(event.at, now)} ago</span>
      </td>
      <td data-label="Event">${event.type}</td>
      <td data-label="Outcome">
        ${yesNo(event.outcome === 'success', event.outcome, event.outcome)}
      </td>
      <td data-label="User">
        ${tried ? html`<span class="muted">${emailText(String(event.detail.email))}</span>` : userCell(page, event.userId, names)}
      </td>
      <td data-label="Actor">${userCell(page, actor, names)}</td>
      <td data-label="IP">${event.ip ?? '—'}</td>
      <td data-label="Detail" class="wrap">${describeDetail(event, names)}</td>
    </tr>`
  })
  return html`<div class="scroll">
    <table class="list">
      <thead>
        <tr>
          <th>When</th>
          <th>Event</th>
          <th>Outcome</th>
          <th>User</th>
          <th>Actor</th>
          <th>IP</th>
          <th>Detail</th>
        </tr>
      </thead>
      <tbody>
        ${
          rows.length === 0
            ? html`<tr>
                <td colspan="7" class="muted">No events.</td>
              </tr>`
            : rows
        }
      </tbody>
    </table>
  </div>`
}

/** The audit log with its filters. */
export interface AuditData {
  events: AuditEvent[]
  names: AuditNames
  types: readonly string[]
  user: string
  type: string
  page: number
  hasNext: boolean
  error?: string
}

export function auditPage(page: PageContext, data: AuditData, now: number): SafeHtml {
  return layout(
    page,
    'Audit log',
    html`<h1>Audit log</h1>
      <form method="get" action="${page.base}/audit" class="toolbar">
        <label>User (e-mail or id) <input type="text" name="user" value="${data.user}" /></label>
        <label
          >Event
          <select name="type">
            <option value="">any</option>
            ${data.types.map((t) => html`<option value="${t}" ${t === data.type ? trustedHtml(' selected') : ''}>${t}</option>`)}
          </select></label
        >
        <button type="submit" class="secondary">Filter</button>
      </form>
      ${errorMessage(data.error)} ${auditTable(page, data.events, data.names, now)}
      ${pager(page, '/audit', { user: data.user, type: data.type }, data.page, data.hasNext)}`,
    { current: '/audit' },
  )
}
