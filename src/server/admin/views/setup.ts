import { html, type SafeHtml } from '../html.js'
import {
  layout,
  passwordRulesText,
  postForm,
  type PageContext,
  type PasswordRules,
} from './layout.js'

/** The first-admin form of the setup link. */
export function setupPage(
  page: PageContext,
  options: { token: string; rules: PasswordRules; email?: string; error?: string },
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
              minlength="${options.rules.minLength}"
              aria-describedby="password-rules"
            /><span class="rules" id="password-rules"
              >${passwordRulesText(options.rules)}</span
            ></label
          >
          <label
            >Password again
            <input
              type="password"
              name="password2"
              autocomplete="new-password"
              required
              minlength="${options.rules.minLength}"
          /></label>
          <button type="submit">Create administrator</button>`,
        { className: 'stack' },
      )}
    </div>`,
  )
}
