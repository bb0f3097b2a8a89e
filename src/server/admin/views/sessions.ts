import type { User } from '../../../auth/accounts.js'
import type { Session } from '../../../core/session-manager.js'
import { html, type SafeHtml } from '../html.js'
import { formatAge, formatTime, layout, postForm, type PageContext } from './layout.js'

/** One user's sessions. */
export function sessionsPage(
  page: PageContext,
  user: User,
  sessions: Session[],
  now: number,
): SafeHtml {
  const path = `/users/${encodeURIComponent(user.id)}/sessions`
  const rows = sessions.map(
    (s) =>
      html`<tr>
        <td data-label="Id"><code>${s.id.slice(0, 8)}</code></td>
        <td data-label="Device" class="wrap">${s.meta.userAgent ?? '—'}</td>
        <td data-label="IP">${s.meta.ip ?? '—'}</td>
        <td data-label="Started">${formatTime(s.createdAt)}</td>
        <td data-label="Last seen">${formatAge(s.lastSeenAt, now)} ago</td>
        <td data-label="Expires">${formatTime(s.expiresAt)}</td>
        <td data-label="">
          ${postForm(page, `${path}/${encodeURIComponent(s.id)}/revoke`, html`<button type="submit" class="danger">Revoke</button>`)}
        </td>
      </tr>`,
  )
  return layout(
    page,
    `Sessions of ${user.email}`,
    html`<h1 class="wrap">
        Sessions of <a href="${page.base}/users/${encodeURIComponent(user.id)}">${user.email}</a>
      </h1>
      <div class="scroll">
        <table class="list">
          <thead>
            <tr>
              <th>Id</th>
              <th>Device</th>
              <th>IP</th>
              <th>Started</th>
              <th>Last seen</th>
              <th>Expires</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            ${
              rows.length === 0
                ? html`<tr>
                    <td colspan="7" class="muted">No active sessions.</td>
                  </tr>`
                : rows
            }
          </tbody>
        </table>
      </div>
      ${sessions.length === 0 ? '' : html`<p>${postForm(page, `${path}/revoke-all`, html`<button type="submit" class="danger">Revoke all ${sessions.length} sessions</button>`)}</p>`}`,
    { current: '/users' },
  )
}
