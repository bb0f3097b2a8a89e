import type { KeyInfo } from '../../../auth/keys.js'
import { html, type SafeHtml } from '../html.js'
import { formatAge, formatTime, layout, postForm, type PageContext } from './layout.js'

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
