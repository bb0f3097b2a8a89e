import type { User } from '../../../auth/accounts.js'
import type { Passkey } from '../../../auth/passkeys.js'
import { html } from '../html.js'
import { emailText, formatTime, layout, plural, postForm, type PageContext } from './layout.js'

/** A user's passkeys, each with a button to remove it (the removal is audited). */
export function passkeysPage(
  page: PageContext,
  user: User,
  passkeys: Passkey[],
): ReturnType<typeof layout> {
  const path = `/users/${encodeURIComponent(user.id)}/passkeys`
  const rows = passkeys.map(
    (passkey) =>
      html`<tr>
        <td data-label="Name">${passkey.name}</td>
        <td data-label="Kind">
          ${passkey.deviceType === 'multiDevice' ? 'synced' : 'this device only'}${passkey.backedUp ? ', backed up' : ''}
        </td>
        <td data-label="Transports">
          ${passkey.transports.length === 0 ? '—' : passkey.transports.join(', ')}
        </td>
        <td data-label="Added">${formatTime(passkey.createdAt)}</td>
        <td data-label="Last used">${formatTime(passkey.lastUsedAt)}</td>
        <td data-label="">
          ${postForm(
            page,
            `${path}/${encodeURIComponent(passkey.id)}/remove`,
            html`<button type="submit" class="danger">Remove</button>`,
          )}
        </td>
      </tr>`,
  )
  return layout(
    page,
    `Passkeys of ${user.email}`,
    html`<h1>
        Passkeys of
        <a href="${page.base}/users/${encodeURIComponent(user.id)}">${emailText(user.email)}</a>
      </h1>
      <p class="muted">${plural(passkeys.length, 'passkey')}.</p>
      <div class="scroll">
        <table class="list">
          <thead>
            <tr>
              <th>Name</th>
              <th>Kind</th>
              <th>Transports</th>
              <th>Added</th>
              <th>Last used</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            ${
              rows.length === 0
                ? html`<tr>
                    <td colspan="6" class="muted">No passkeys.</td>
                  </tr>`
                : rows
            }
          </tbody>
        </table>
      </div>`,
    { current: '/users' },
  )
}
