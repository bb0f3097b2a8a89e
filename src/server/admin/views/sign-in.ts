import { html, type SafeHtml } from '../html.js'
import { layout, postForm, type PageContext } from './layout.js'

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
