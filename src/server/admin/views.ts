import type { AuditEvent } from '../../auth/audit.js'
import type { Group, Permission, User } from '../../auth/accounts.js'
import type { KeyInfo } from '../../auth/keys.js'
import type { Session } from '../../core/session-manager.js'
import { html, trustedHtml, type HtmlValue, type SafeHtml } from './html.js'

/** A message shown once at the top of a page after an action. */
export interface Flash {
  kind: 'ok' | 'error'
  text: string
}

/** What every page needs from the request. */
export interface PageContext {
  /** Mount path of the panel, e.g. `/admin`. */
  base: string
  /** CSP nonce of this response (for the one `<style>` element). */
  nonce: string
  /** CSRF token for the forms of this page. */
  csrf: string
  /** The signed-in administrator, or null on the sign-in and setup pages. */
  admin: User | null
  flash?: Flash | undefined
}

const CSS = `
:root{color-scheme:light dark;--fg:#1d1f23;--bg:#fafafa;--muted:#5b6270;--line:#d5d8de;--accent:#1f5fbf;--ok:#1d6b35;--okbg:#e5f4ea;--err:#a4221b;--errbg:#fbe9e7;--card:#fff}
@media (prefers-color-scheme:dark){:root{--fg:#e8eaee;--bg:#15171b;--muted:#a3aab6;--line:#363a42;--accent:#7fb0ff;--ok:#8fd6a4;--okbg:#16301f;--err:#ffaaa3;--errbg:#3a1a17;--card:#1d2026}}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem;padding:.6rem 1rem;border-bottom:1px solid var(--line);background:var(--card)}
header .brand{font-weight:700;margin-right:auto}
nav{display:flex;flex-wrap:wrap;gap:.25rem .9rem}
nav a{color:var(--accent);text-decoration:none}
nav a[aria-current=page]{font-weight:700;text-decoration:underline}
main{max-width:64rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
a{color:var(--accent)}
.flash{padding:.6rem .8rem;border-radius:6px;margin:0 0 1rem;border:1px solid}
.flash.ok{color:var(--ok);background:var(--okbg)}
.flash.error{color:var(--err);background:var(--errbg)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:1rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem}
.card .n{font-size:2rem;font-weight:700}
.scroll{overflow-x:auto;border:1px solid var(--line);border-radius:8px;background:var(--card)}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.85rem;color:var(--muted);font-weight:600}
tr:last-child td{border-bottom:0}

code{font-size:.9em}
form{margin:0}
form.stack{display:grid;gap:.6rem;max-width:28rem}
form.inline{display:inline-flex;flex-wrap:wrap;gap:.4rem;align-items:center}
label{display:grid;gap:.2rem;font-weight:600}
label.check{display:flex;gap:.4rem;align-items:center;font-weight:400}
input[type=text],input[type=email],input[type=password],input[type=search],select,textarea{font:inherit;padding:.45rem .5rem;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg);width:100%}
textarea{min-height:6rem}
button{font:inherit;padding:.4rem .8rem;border-radius:6px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer}
@media (prefers-color-scheme:dark){button{color:#10131a}}
button.secondary{background:transparent;color:var(--accent)}
button.danger{background:var(--err);border-color:var(--err)}
.muted{color:var(--muted)}
.badge{display:inline-block;padding:0 .4rem;border-radius:4px;font-size:.8rem;border:1px solid var(--line)}
.badge.on{color:var(--ok);border-color:var(--ok)}
.badge.off{color:var(--err);border-color:var(--err)}
.pager{display:flex;gap:1rem;align-items:center;margin:.6rem 0}
.toolbar{display:flex;flex-wrap:wrap;gap:.6rem;align-items:end;margin:.5rem 0 1rem}
.toolbar label{font-weight:400}
details{margin:.5rem 0}
summary{cursor:pointer;color:var(--accent)}
.narrow{max-width:26rem;margin:3rem auto}
form.stack button{justify-self:start}
td.wrap{overflow-wrap:anywhere}
@media (max-width:40rem){main{padding:.6rem}th,td{padding:.4rem}h1{font-size:1.3rem}
table.list thead{display:none}
table.list tr{display:block;border-bottom:1px solid var(--line);padding:.3rem 0}
table.list tr:last-child{border-bottom:0}
table.list td{display:flex;gap:.6rem;border:0;padding:.2rem .6rem}
table.list td[data-label]::before{content:attr(data-label);flex:0 0 6.5rem;color:var(--muted);font-size:.85rem;font-weight:600}
table.list td[data-label=""]::before{display:none}}
`

const NAV: ReadonlyArray<readonly [string, string]> = [
  ['/', 'Dashboard'],
  ['/users', 'Users'],
  ['/groups', 'Groups & permissions'],
  ['/audit', 'Audit log'],
  ['/keys', 'Signing keys'],
]

/** Formats epoch milliseconds as `2026-11-23 06:40 UTC`. */
export function formatTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—'
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ') + ' UTC'
}

/** A short age such as `3 d`, `5 h`, `12 min`. */
export function formatAge(ms: number | null | undefined, now: number): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—'
  const seconds = Math.max(0, Math.round((now - ms) / 1000))
  if (seconds < 60) return `${seconds} s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h`
  return `${Math.floor(seconds / 86_400)} d`
}

function csrfField(page: PageContext): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${page.csrf}" />`
}

/** A POST form with the CSRF field; `body` holds the other fields and the button. */
export function postForm(
  page: PageContext,
  action: string,
  body: HtmlValue,
  options: { className?: string } = {},
): SafeHtml {
  return html`<form
    method="post"
    action="${page.base}${action}"
    class="${options.className ?? 'inline'}"
  >
    ${csrfField(page)}${body}
  </form>`
}

/** What {@link documentShell} wraps around a page's content. */
export interface DocumentShell {
  /** CSP nonce of this response, for the one `<style>` element. */
  nonce: string
  /** The `<title>`, in full. */
  title: string
  /** The name at the left of the header bar. */
  brand: string
  /** The `<meta name="referrer">` policy; say the same in the `Referrer-Policy` header. */
  referrer: 'same-origin' | 'strict-origin' | 'no-referrer'
  /** The page icon, if any (an `img-src` the CSP allows). */
  iconHref?: string | undefined
  /** What follows the brand in the header bar (navigation, the signed-in user). */
  header?: HtmlValue
  content: HtmlValue
}

/**
 * The whole HTML document: head with the one nonce-carrying stylesheet, the header bar, and
 * `main` around the content. The admin panel's pages and the server's public pages (`/reset`)
 * share it, so they look alike and neither needs a script.
 */
export function documentShell(shell: DocumentShell): SafeHtml {
  const icon =
    shell.iconHref === undefined
      ? ''
      : html`<link rel="icon" href="${shell.iconHref}" type="image/svg+xml" />`
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="${shell.referrer}" />
        ${icon}
        <title>${shell.title}</title>
        <style nonce="${shell.nonce}">
          ${trustedHtml(CSS)}
        </style>
      </head>
      <body>
        <header><span class="brand">${shell.brand}</span>${shell.header}</header>
        <main>${shell.content}</main>
      </body>
    </html> `
}

/** The whole document around a page's content. */
export function layout(
  page: PageContext,
  title: string,
  content: HtmlValue,
  options: { current?: string } = {},
): SafeHtml {
  const nav =
    page.admin === null
      ? ''
      : html`<nav aria-label="Admin sections">
            ${NAV.map(
              ([path, label]) =>
                html`<a
                  href="${page.base}${path === '/' ? '' : path}"
                  ${options.current === path ? trustedHtml(' aria-current="page"') : ''}
                  >${label}</a
                >`,
            )}
          </nav>
          <span class="muted">${page.admin.email}</span>
          ${postForm(page, '/logout', html`<button class="secondary" type="submit">Sign out</button>`)}`
  const flash =
    page.flash === undefined
      ? ''
      : html`<p class="flash ${page.flash.kind}" role="status">${page.flash.text}</p>`
  return documentShell({
    nonce: page.nonce,
    title: `${title} · tessera admin`,
    brand: 'tessera admin',
    referrer: 'same-origin',
    iconHref: `${page.base}/favicon.svg`,
    header: nav,
    content: html`${flash} ${content}`,
  })
}

/** The sign-in form. */
export function signInPage(
  page: PageContext,
  options: { email?: string; error?: string },
): SafeHtml {
  const error =
    options.error === undefined
      ? ''
      : html`<p class="flash error" role="alert">${options.error}</p>`
  return layout(
    page,
    'Sign in',
    html`<div class="narrow">
      <h1>Sign in</h1>
      ${error}
      ${postForm(
        page,
        '/login',
        html`<label
            >E-mail
            <input
              type="email"
              name="email"
              autocomplete="username"
              required
              value="${options.email ?? ''}"
          /></label>
          <label
            >Password
            <input type="password" name="password" autocomplete="current-password" required
          /></label>
          <button type="submit">Sign in</button>`,
        { className: 'stack' },
      )}
      <p class="muted">
        Only administrators (or holders of <code>admin.access</code>) may sign in here.
      </p>
    </div>`,
  )
}

/** The first-admin form of the setup link. */
export function setupPage(
  page: PageContext,
  options: { token: string; email?: string; error?: string },
): SafeHtml {
  const error =
    options.error === undefined
      ? ''
      : html`<p class="flash error" role="alert">${options.error}</p>`
  return layout(
    page,
    'Create the first administrator',
    html`<div class="narrow">
      <h1>Create the first administrator</h1>
      <p>No administrator exists yet. This link works once.</p>
      ${error}
      ${postForm(
        page,
        '/setup',
        html`<input type="hidden" name="token" value="${options.token}" />
          <label
            >E-mail
            <input
              type="email"
              name="email"
              autocomplete="username"
              required
              value="${options.email ?? ''}"
          /></label>
          <label
            >Password
            <input
              type="password"
              name="password"
              autocomplete="new-password"
              required
              minlength="12"
          /></label>
          <label
            >Password again
            <input
              type="password"
              name="password2"
              autocomplete="new-password"
              required
              minlength="12"
          /></label>
          <button type="submit">Create administrator</button>`,
        { className: 'stack' },
      )}
    </div>`,
  )
}

/** A page with a heading and a sentence: errors, refusals, dead links. */
export function messagePage(page: PageContext, title: string, text: string): SafeHtml {
  const back =
    page.admin === null
      ? html`<p><a href="${page.base}/login">Sign in</a></p>`
      : html`<p><a href="${page.base}">Back to the dashboard</a></p>`
  return layout(
    page,
    title,
    html`<h1>${title}</h1>
      <p>${text}</p>
      ${back}`,
  )
}

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

/** The users list, search and creation form. */
export interface UsersData {
  users: User[]
  total: number
  page: number
  pageSize: number
  search: string
  createEmail?: string
  createError?: string
}

function yesNo(value: boolean, yes: string, no: string): SafeHtml {
  return value
    ? html`<span class="badge on">${yes}</span>`
    : html`<span class="badge off">${no}</span>`
}

function pager(
  page: PageContext,
  path: string,
  params: Record<string, string>,
  current: number,
  hasNext: boolean,
): SafeHtml {
  const link = (n: number): string => {
    const query = new URLSearchParams({ ...params, page: String(n) })
    for (const [key, value] of [...query.entries()]) if (value === '') query.delete(key)
    return `${page.base}${path}?${query.toString()}`
  }
  return html`<div class="pager">
    ${current > 1 ? html`<a href="${link(current - 1)}" rel="prev">← Previous</a>` : ''}<span
      class="muted"
      >Page ${current}</span
    >${hasNext ? html`<a href="${link(current + 1)}" rel="next">Next →</a>` : ''}
  </div>`
}

export function usersPage(page: PageContext, data: UsersData, now: number): SafeHtml {
  const rows = data.users.map(
    (user) =>
      html`<tr>
        <td data-label="E-mail" class="wrap">
          <a href="${page.base}/users/${encodeURIComponent(user.id)}">${user.email}</a>
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
  const error =
    data.createError === undefined
      ? ''
      : html`<p class="flash error" role="alert">${data.createError}</p>`
  return layout(
    page,
    'Users',
    html`<h1>Users</h1>
      <form method="get" action="${page.base}/users" class="toolbar" role="search">
        <label>Search e-mail <input type="search" name="q" value="${data.search}" /></label>
        <button type="submit" class="secondary">Search</button>
      </form>
      <p class="muted">
        ${data.total}
        user${data.total === 1 ? '' : 's'}${data.search === '' ? '' : html` matching “${data.search}”`}
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
      ${error}
      ${postForm(
        page,
        '/users',
        html`<label
            >E-mail <input type="email" name="email" required value="${data.createEmail ?? ''}"
          /></label>
          <label
            >Password <input type="password" name="password" autocomplete="new-password" required
          /></label>
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
    html`<h1 class="wrap">${user.email}</h1>
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
              <td><a href="${page.base}${path}/sessions">${data.sessionCount} active</a></td>
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

/** Groups, their permissions, and the permission catalogue. */
export interface GroupsData {
  groups: Array<Group & { permissions: string[]; members: number }>
  permissions: Permission[]
}

export function groupsPage(page: PageContext, data: GroupsData): SafeHtml {
  const groups = data.groups.map(
    (group) =>
      html`<div class="card">
        <h2 class="wrap">
          ${group.name}
          <span class="muted">(${group.members} member${group.members === 1 ? '' : 's'})</span>
        </h2>
        ${postForm(
          page,
          `/groups/${encodeURIComponent(group.id)}/permissions`,
          html`<label
              >Permissions, one per line
              <textarea name="permissions" spellcheck="false">
${group.permissions.join('\n')}</textarea></label
            ><button type="submit">Save permissions</button>`,
          { className: 'stack' },
        )}
        <details>
          <summary>Delete group…</summary>
          ${postForm(page, `/groups/${encodeURIComponent(group.id)}/delete`, html`<button type="submit" class="danger">Delete ${group.name}</button>`)}
        </details>
      </div>`,
  )
  const permissions = data.permissions.map(
    (p) =>
      html`<tr>
        <td data-label="Codename"><code>${p.codename}</code></td>
        <td data-label="Description">${p.description}</td>
        <td data-label="">
          ${postForm(page, '/permissions/delete', html`<input type="hidden" name="codename" value="${p.codename}" /><button type="submit" class="secondary">Delete</button>`)}
        </td>
      </tr>`,
  )
  return layout(
    page,
    'Groups & permissions',
    html`<h1>Groups &amp; permissions</h1>
      <div class="cards">
        ${groups.length === 0 ? html`<p class="muted">No groups yet.</p>` : groups}
      </div>
      <h2>Create a group</h2>
      ${postForm(page, '/groups', html`<label>Name <input type="text" name="name" required maxlength="150" /></label><button type="submit">Create group</button>`, { className: 'stack' })}
      <h2>Permissions</h2>
      <div class="scroll">
        <table class="list">
          <thead>
            <tr>
              <th>Codename</th>
              <th>Description</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            ${
              permissions.length === 0
                ? html`<tr>
                    <td colspan="3" class="muted">No permissions defined.</td>
                  </tr>`
                : permissions
            }
          </tbody>
        </table>
      </div>
      <h2>Define a permission</h2>
      ${postForm(
        page,
        '/permissions',
        html`<label
            ><span>Codename (<code>app.action</code>)</span>
            <input type="text" name="codename" required spellcheck="false"
          /></label>
          <label>Description <input type="text" name="description" maxlength="200" /></label
          ><button type="submit">Save permission</button>`,
        { className: 'stack' },
      )}`,
    { current: '/groups' },
  )
}

function auditTable(
  page: PageContext,
  events: AuditEvent[],
  emails: Map<string, string>,
  now: number,
): SafeHtml {
  const rows = events.map(
    (event) =>
      html`<tr>
        <td data-label="When" title="${formatTime(event.at)}">
          ${formatTime(event.at)}<br /><span class="muted">${formatAge(event.at, now)} ago</span>
        </td>
        <td data-label="Event">${event.type}</td>
        <td data-label="Outcome">
          ${yesNo(event.outcome === 'success', event.outcome, event.outcome)}
        </td>
        <td data-label="User" class="wrap">
          ${event.userId === null ? '—' : html`<a href="${page.base}/users/${encodeURIComponent(event.userId)}">${emails.get(event.userId) ?? event.userId}</a>`}
        </td>
        <td data-label="IP">${event.ip ?? '—'}</td>
        <td data-label="Detail" class="wrap">
          <code>${Object.keys(event.detail).length === 0 ? '' : JSON.stringify(event.detail)}</code>
        </td>
      </tr>`,
  )
  return html`<div class="scroll">
    <table class="list">
      <thead>
        <tr>
          <th>When</th>
          <th>Event</th>
          <th>Outcome</th>
          <th>User</th>
          <th>IP</th>
          <th>Detail</th>
        </tr>
      </thead>
      <tbody>
        ${
          rows.length === 0
            ? html`<tr>
                <td colspan="6" class="muted">No events.</td>
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
  emails: Map<string, string>
  types: readonly string[]
  user: string
  type: string
  page: number
  hasNext: boolean
  error?: string
}

export function auditPage(page: PageContext, data: AuditData, now: number): SafeHtml {
  const error =
    data.error === undefined ? '' : html`<p class="flash error" role="alert">${data.error}</p>`
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
      ${error} ${auditTable(page, data.events, data.emails, now)}
      ${pager(page, '/audit', { user: data.user, type: data.type }, data.page, data.hasNext)}`,
    { current: '/audit' },
  )
}

/** The signing keys. */
export function keysPage(
  page: PageContext,
  keys: KeyInfo[],
  algorithm: string,
  now: number,
): SafeHtml {
  const rows = keys.map(
    (key) =>
      html`<tr>
        <td data-label="Key id"><code>${key.kid}</code></td>
        <td data-label="Algorithm">${key.alg}</td>
        <td data-label="Status">
          ${key.status === 'current' ? html`<span class="badge on">current</span>` : html`<span class="badge">${key.status}</span>`}
        </td>
        <td data-label="Age">${formatAge(key.createdAt, now)}</td>
        <td data-label="Signing since">${formatTime(key.activatedAt)}</td>
        <td data-label="Retired">${formatTime(key.retiredAt)}</td>
      </tr>`,
  )
  return layout(
    page,
    'Signing keys',
    html`<h1>Signing keys</h1>
      <p class="muted">
        Access tokens are signed with <code>${algorithm}</code>. <em>next</em> is published but does
        not sign yet; <em>previous</em> keys verify until their tokens have expired.
      </p>
      <div class="scroll">
        <table class="list">
          <thead>
            <tr>
              <th>Key id</th>
              <th>Algorithm</th>
              <th>Status</th>
              <th>Age</th>
              <th>Signing since</th>
              <th>Retired</th>
            </tr>
          </thead>
          <tbody>
            ${
              rows.length === 0
                ? html`<tr>
                    <td colspan="6" class="muted">No keys.</td>
                  </tr>`
                : rows
            }
          </tbody>
        </table>
      </div>
      <h2>Rotate</h2>
      <p>
        Rotation promotes the next key to current, makes a new next key, and drops previous keys
        whose tokens have all expired. Tokens signed before stay valid.
      </p>
      ${postForm(page, '/keys/rotate', html`<button type="submit">Rotate keys</button>`)}`,
    { current: '/keys' },
  )
}
