import type { Group, User } from '../../../auth/accounts.js'
import { html, trustedHtml, type SafeHtml } from '../html.js'
import {
  emailText,
  formatAge,
  formatTime,
  layout,
  pager,
  plural,
  postForm,
  yesNo,
  type PageContext,
  type PasswordRules,
} from './layout.js'
import { emailField, errorMessage, newPasswordField } from './fields.js'

/** The users list, search and creation form. */
export interface UsersData {
  users: User[]
  total: number
  page: number
  pageSize: number
  search: string
  /** What the creation form says about the password. */
  passwordRules: PasswordRules
  createEmail?: string
  createError?: string
}

export function usersPage(page: PageContext, data: UsersData, now: number): SafeHtml {
  const rows = data.users.map(
    (user) =>
      html`<tr>
        <td data-label="E-mail">
          <a href="${page.base}/users/${encodeURIComponent(user.id)}">${emailText(user.email)}</a>
        </td>
        <td data-label="Status">
          ${user.isAdmin ? html`<span class="badge on">admin</span>` : ''}
          ${yesNo(user.isActive, 'active', 'disabled')}
        </td>
        <td data-label="Created">${formatTime(user.createdAt)}</td>
        <td data-label="Last login">
          ${user.lastLoginAt === null ? '—' : `${formatAge(user.lastLoginAt, now)} ago`}
        </td>
        <td data-label="">
          <a href="${page.base}/users/${encodeURIComponent(user.id)}/sessions">sessions</a>
        </td>
      </tr>`,
  )
  return layout(
    page,
    'Users',
    html`<h1>Users</h1>
      <form method="get" action="${page.base}/users" class="toolbar" role="search">
        <label>Search e-mail <input type="search" name="q" value="${data.search}" /></label>
        <button type="submit" class="secondary">Search</button>
      </form>
      <p class="muted">
        ${plural(data.total, 'user')}${data.search === '' ? '' : html` matching “${data.search}”`}
      </p>
      <div class="scroll">
        <table class="list">
          <thead>
            <tr>
              <th>E-mail</th>
              <th>Status</th>
              <th>Created</th>
              <th>Last login</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            ${
              rows.length === 0
                ? html`<tr>
                    <td colspan="5" class="muted">No users.</td>
                  </tr>`
                : rows
            }
          </tbody>
        </table>
      </div>
      ${pager(page, '/users', { q: data.search }, data.page, data.page * data.pageSize < data.total)}
      <h2 id="create">Create a user</h2>
      ${errorMessage(data.createError)}
      ${postForm(
        page,
        '/users',
        html`${emailField(data.createEmail, { username: false })}
          ${newPasswordField('Password', 'password', data.passwordRules)}
          <label class="check"
            ><input type="checkbox" name="isAdmin" value="1" /> Administrator</label
          >
          <button type="submit">Create user</button>`,
        { className: 'stack' },
      )}`,
    { current: '/users' },
  )
}

/** One user's page. */
export interface UserData {
  user: User
  groups: Group[]
  memberOf: Set<string>
  directPermissions: string[]
  effectivePermissions: string[]
  sessionCount: number
  isSelf: boolean
}

export function userPage(page: PageContext, data: UserData, now: number): SafeHtml {
  const { user } = data
  const path = `/users/${encodeURIComponent(user.id)}`
  const groupBoxes =
    data.groups.length === 0
      ? html`<p class="muted">No groups yet. <a href="${page.base}/groups">Create one</a>.</p>`
      : data.groups.map(
          (group) =>
            html`<label class="check"
              ><input
                type="checkbox"
                name="group"
                value="${group.id}"
                ${data.memberOf.has(group.id) ? trustedHtml(' checked') : ''}
              />
              ${group.name}</label
            >`,
        )
  const selfNote = data.isSelf
    ? html`<p class="muted">
        This is your own account: you cannot disable, delete or demote it here.
      </p>`
    : ''
  return layout(
    page,
    user.email,
    html`<h1>${emailText(user.email)}</h1>
      <div class="scroll">
        <table>
          <tbody>
            <tr>
              <th>Id</th>
              <td><code>${user.id}</code></td>
            </tr>
            <tr>
              <th>Status</th>
              <td>
                ${user.isAdmin ? html`<span class="badge on">admin</span> ` : ''}${yesNo(user.isActive, 'active', 'disabled')}
              </td>
            </tr>
            <tr>
              <th>Created</th>
              <td>${formatTime(user.createdAt)}</td>
            </tr>
            <tr>
              <th>Last login</th>
              <td>
                ${formatTime(user.lastLoginAt)}${user.lastLoginAt === null ? '' : ` (${formatAge(user.lastLoginAt, now)} ago)`}
              </td>
            </tr>
            <tr>
              <th>Password changed</th>
              <td>${formatTime(user.passwordChangedAt)}</td>
            </tr>
            <tr>
              <th>Sessions</th>
              <td>
                <a href="${page.base}${path}/sessions"
                  >${plural(data.sessionCount, 'active session')}</a
                >
              </td>
            </tr>
            <tr>
              <th>Identities</th>
              <td><a href="${page.base}${path}/identities">identity providers</a></td>
            </tr>
            <tr>
              <th>Permissions</th>
              <td>
                ${data.effectivePermissions.length === 0 ? html`<span class="muted">none</span>` : data.effectivePermissions.map((p) => html`<code>${p}</code> `)}${user.isAdmin ? html` <span class="muted">(an administrator has every permission)</span>` : ''}
              </td>
            </tr>
          </tbody>
        </table>
      </div>
      <h2>Actions</h2>
      ${selfNote}
      <div class="toolbar">
        ${data.isSelf ? '' : user.isActive ? postForm(page, `${path}/disable`, html`<button type="submit" class="secondary">Disable</button>`) : postForm(page, `${path}/enable`, html`<button type="submit" class="secondary">Enable</button>`)}
        ${data.isSelf ? '' : postForm(page, `${path}/admin`, html`<input type="hidden" name="isAdmin" value="${user.isAdmin ? '0' : '1'}" /><button type="submit" class="secondary">${user.isAdmin ? 'Remove administrator' : 'Make administrator'}</button>`)}
        ${postForm(page, `${path}/reset`, html`<button type="submit" class="secondary">Send password reset e-mail</button>`)}
      </div>
      <h2>Groups</h2>
      ${
        data.groups.length === 0
          ? groupBoxes
          : postForm(
              page,
              `${path}/groups`,
              html`${groupBoxes}<button type="submit">Save groups</button>`,
              {
                className: 'stack',
              },
            )
      }
      <h2>Direct permissions</h2>
      ${postForm(
        page,
        `${path}/permissions`,
        html`<label
            ><span>Codenames, one per line (<code>app.action</code>)</span>
            <textarea name="permissions" spellcheck="false">
${data.directPermissions.join('\n')}</textarea>
          </label>
          <button type="submit">Save permissions</button>`,
        { className: 'stack' },
      )}
      ${
        data.isSelf
          ? ''
          : html`<h2>Delete</h2>
              <details>
                <summary>Delete this user…</summary>
                <p>
                  Deleting removes the account, its groups, grants and reset tokens, and ends its
                  sessions. It cannot be undone.
                </p>
                ${postForm(page, `${path}/delete`, html`<label class="check"><input type="checkbox" name="confirm" value="yes" required /> I am sure</label><button type="submit" class="danger">Delete user</button>`)}
              </details>`
      }`,
    { current: '/users' },
  )
}
