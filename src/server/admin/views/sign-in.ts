import { html, type SafeHtml } from '../html.js'
import { currentPasswordField, emailField, errorMessage, noticeMessage } from './fields.js'
import { layout, postForm, type PageContext } from './layout.js'

/** The sign-in form. */
export function signInPage(
  page: PageContext,
  options: { email?: string; error?: string; notice?: string },
): SafeHtml {
  return layout(
    page,
    'Sign in',
    html`<div class="narrow">
      <h1>Sign in</h1>
      ${noticeMessage(options.notice)} ${errorMessage(options.error)}
      ${postForm(
        page,
        '/login',
        html`${emailField(options.email)} ${currentPasswordField()}
          <button type="submit">Sign in</button>`,
        { className: 'stack' },
      )}
      <p class="muted">
        Only administrators (or holders of <code>admin.access</code>) may sign in here.
      </p>
    </div>`,
  )
}
