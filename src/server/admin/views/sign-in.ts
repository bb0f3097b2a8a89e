import { html, type SafeHtml } from '../html.js'
import { layout, postForm, type PageContext } from './layout.js'

/** The sign-in form. */
export function signInPage(
  page: PageContext,
  options: { email?: string; error?: string; notice?: string },
): SafeHtml {
  const error =
    options.error === undefined
      ? ''
      : html`<p class="flash error" role="alert">${options.error}</p>`
  // A notice (signed out) is news, not a failure: the neutral style, announced politely.
  const notice =
    options.notice === undefined
      ? ''
      : html`<p class="flash info" role="status">${options.notice}</p>`
  return layout(
    page,
    'Sign in',
    html`<div class="narrow">
      <h1>Sign in</h1>
      ${notice} ${error}
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
