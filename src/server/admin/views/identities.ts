import type { User } from '../../../auth/accounts.js'
import type { Identity } from '../../../auth/identities.js'
import { html, type SafeHtml } from '../html.js'
import {
  emailText,
  formatAge,
  formatTime,
  layout,
  plural,
  postForm,
  type PageContext,
} from './layout.js'

/** One user's identities at identity providers, each with an unlink button. */
export function identitiesPage(
  page: PageContext,
  user: User,
  identities: readonly Identity[],
  now: number,
): SafeHtml {
  const userPath = `/users/${encodeURIComponent(user.id)}`
  const rows = identities.map(
    (identity) =>
      html`<tr>
        <td data-label="Provider"><code>${identity.provider}</code></td>
        <td data-label="Subject"><code>${identity.subject}</code></td>
        <td data-label="E-mail">
          ${identity.email === null ? '—' : emailText(identity.email)}
          ${identity.emailVerified ? html`<span class="muted">(verified by the provider)</span>` : ''}
        </td>
        <td data-label="Linked">${formatTime(identity.createdAt)}</td>
        <td data-label="Last used">
          ${identity.lastUsedAt === null ? '—' : `${formatAge(identity.lastUsedAt, now)} ago`}
        </td>
        <td data-label="">
          ${postForm(
            page,
            `${userPath}/unlink/${encodeURIComponent(identity.id)}`,
            html`<button type="submit" class="danger">Unlink</button>`,
          )}
        </td>
      </tr>`,
  )
  return layout(
    page,
    `Identities of ${user.email}`,
    html`<h1>Identities of <a href="${page.base}${userPath}">${emailText(user.email)}</a></h1>
      <p class="muted">
        ${plural(identities.length, 'linked identity', 'linked identities')}. An identity signs the
        user in through its provider; unlinking one is recorded in the audit log. The last way to
        sign in (no password, no other identity) cannot be unlinked.
      </p>
      <div class="scroll">
        <table class="list">
          <thead>
            <tr>
              <th>Provider</th>
              <th>Subject</th>
              <th>E-mail</th>
              <th>Linked</th>
              <th>Last used</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            ${
              rows.length === 0
                ? html`<tr>
                    <td colspan="6" class="muted">No linked identities.</td>
                  </tr>`
                : rows
            }
          </tbody>
        </table>
      </div>`,
    { current: '/users' },
  )
}
