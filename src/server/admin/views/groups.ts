import type { Group, Permission } from '../../../auth/accounts.js'
import { html, type SafeHtml } from '../html.js'
import { layout, postForm, type PageContext } from './layout.js'

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
