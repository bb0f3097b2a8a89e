import { html, type SafeHtml } from '../html.js'
import { emailField, errorMessage, newPasswordField } from './fields.js'
import { layout, postForm, type PageContext, type PasswordRules } from './layout.js'

/** The first-admin form of the setup link. */
export function setupPage(
  page: PageContext,
  options: { token: string; rules: PasswordRules; email?: string; error?: string },
): SafeHtml {
  return layout(
    page,
    'Create the first administrator',
    html`<div class="narrow">
      <h1>Create the first administrator</h1>
      <p>No administrator exists yet. This link works once.</p>
      ${errorMessage(options.error)}
      ${postForm(
        page,
        '/setup',
        html`<input type="hidden" name="token" value="${options.token}" />
          ${emailField(options.email)} ${newPasswordField('Password', 'password', options.rules)}
          ${newPasswordField('Password again', 'password2', options.rules, { describe: false })}
          <button type="submit">Create administrator</button>`,
        { className: 'stack' },
      )}
    </div>`,
  )
}
