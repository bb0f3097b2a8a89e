import type { User } from '../../../auth/accounts.js'
import type { Session } from '../../../core/session-manager.js'
import { html, type HtmlValue, type SafeHtml } from '../html.js'
import { deviceName } from './device.js'
import {
  emailText,
  formatAge,
  formatTime,
  layout,
  plural,
  postForm,
  type PageContext,
} from './layout.js'

/** The cells of one session: full public id (as the API and CLI show it), device, IP, times. */
function sessionCells(session: Session, now: number): SafeHtml {
  const agent = session.meta.userAgent
  return html`<td data-label="Id"><code>${session.id}</code></td>
    <td data-label="Device" title="${agent ?? ''}">${deviceName(agent)}</td>
    <td data-label="IP">${session.meta.ip ?? '—'}</td>
    <td data-label="Started">${formatTime(session.createdAt)}</td>
    <td data-label="Last seen">${formatAge(session.lastSeenAt, now)} ago</td>
    <td data-label="Expires">${formatTime(session.expiresAt)}</td>`
}

function revokeButton(page: PageContext, user: { id: string }, session: Session): SafeHtml {
  return postForm(
    page,
    `/users/${encodeURIComponent(user.id)}/sessions/${encodeURIComponent(session.id)}/revoke`,
    html`<button type="submit" class="danger">Revoke</button>`,
  )
}

function sessionTable(headings: string[], rows: HtmlValue[], empty: string): SafeHtml {
  return html`<div class="scroll">
    <table class="list">
      <thead>
        <tr>
          ${headings.map((h) => html`<th>${h}</th>`)}
        </tr>
      </thead>
      <tbody>
        ${
          rows.length === 0
            ? html`<tr>
                <td colspan="${headings.length}" class="muted">${empty}</td>
              </tr>`
            : rows
        }
      </tbody>
    </table>
  </div>`
}

const HEADINGS = ['Id', 'Device', 'IP', 'Started', 'Last seen', 'Expires', '']

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
        ${sessionCells(s, now)}
        <td data-label="">${revokeButton(page, user, s)}</td>
      </tr>`,
  )
  const revokeAll =
    sessions.length === 0
      ? ''
      : html`<p>
          ${postForm(
            page,
            `${path}/revoke-all`,
            html`<button type="submit" class="danger">
              ${sessions.length === 1 ? 'Revoke this session' : `Revoke all ${sessions.length} sessions`}
            </button>`,
          )}
        </p>`
  return layout(
    page,
    `Sessions of ${user.email}`,
    html`<h1>
        Sessions of
        <a href="${page.base}/users/${encodeURIComponent(user.id)}">${emailText(user.email)}</a>
      </h1>
      <p class="muted">${plural(sessions.length, 'active session')}.</p>
      ${sessionTable(HEADINGS, rows, 'No active sessions.')} ${revokeAll}`,
    { current: '/users' },
  )
}

/** Users with live sessions, for {@link allSessionsPage}. */
export interface ActiveSessionsData {
  /** Live sessions in the store (all users, the panel's own included), when it can count them. */
  total: number | null
  users: Array<{ user: { id: string; email: string }; sessions: Session[] }>
  /** The `from` of the next page, or null on the last one. */
  next: number | null
  /** True when this is not the first page. */
  later: boolean
}

/** Every live session, grouped by user, most recently signed-in users first. */
export function allSessionsPage(
  page: PageContext,
  data: ActiveSessionsData,
  now: number,
): SafeHtml {
  const rows = data.users.flatMap(({ user, sessions }) =>
    sessions.map(
      (s) =>
        html`<tr>
          <td data-label="User">
            <a href="${page.base}/users/${encodeURIComponent(user.id)}/sessions"
              >${emailText(user.email)}</a
            >
          </td>
          ${sessionCells(s, now)}
          <td data-label="">${revokeButton(page, user, s)}</td>
        </tr>`,
    ),
  )
  const count = data.users.reduce((sum, entry) => sum + entry.sessions.length, 0)
  return layout(
    page,
    'Active sessions',
    html`<h1>Active sessions</h1>
      <p class="muted">
        ${
          data.total === null
            ? 'The session store cannot count its sessions.'
            : `${plural(data.total, 'live session')} in the store (the panel’s own included).`
        }
        Shown: ${plural(count, 'session')} of ${plural(data.users.length, 'user')}, most recent
        sign-in first.
      </p>
      ${sessionTable(['User', ...HEADINGS], rows, 'No active sessions.')}
      <div class="pager">
        ${data.later ? html`<a href="${page.base}/sessions">← First page</a>` : ''}
        ${
          data.next === null
            ? ''
            : html`<a href="${page.base}/sessions?from=${data.next}" rel="next">More →</a>`
        }
      </div>`,
    { current: '/sessions' },
  )
}
