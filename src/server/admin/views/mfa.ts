/* Second factors in the panel: the sign-in's code step, enrolment, recovery codes. */
import type { MFAStatus } from '../../../auth/second-factors.js'
import { html, trustedHtml, type SafeHtml } from '../html.js'
import { errorMessage, noticeMessage } from './fields.js'
import { formatTime, layout, postForm, type PageContext } from './layout.js'

/** The one-time code field (`name="code"`). */
function codeField(label: string, options: { autofocus?: boolean } = {}): SafeHtml {
  return html`<label
    >${label}
    <input
      type="text"
      name="code"
      autocomplete="${options.autofocus === false ? 'off' : 'one-time-code'}"
      required
      maxlength="64"
      ${options.autofocus === false ? '' : trustedHtml('autofocus')}
  /></label>`
}

/** The second step of the panel's sign-in: a code from the app, or a recovery code. */
export function secondStepPage(
  page: PageContext,
  options: { challenge: string; error?: string },
): SafeHtml {
  return layout(
    page,
    'Second factor',
    html`<div class="narrow">
      <h1>Second factor</h1>
      ${errorMessage(options.error)}
      ${postForm(
        page,
        '/login/mfa',
        html`<input type="hidden" name="challenge" value="${options.challenge}" />
          ${codeField('Code from your authenticator app')}
          <input type="hidden" name="method" value="totp" />
          <button type="submit">Verify</button>`,
        { className: 'stack' },
      )}
      <h2>Lost your phone?</h2>
      ${postForm(
        page,
        '/login/mfa',
        html`<input type="hidden" name="challenge" value="${options.challenge}" />
          <input type="hidden" name="method" value="recovery_code" />
          ${codeField('A recovery code', { autofocus: false })}
          <button type="submit" class="secondary">Use a recovery code</button>`,
        { className: 'stack' },
      )}
      <p class="muted">Without either, another administrator can reset your second factors.</p>
    </div>`,
  )
}

/** The second-factor page of the signed-in administrator. */
export function mfaPage(
  page: PageContext,
  options: { status: MFAStatus; required: boolean },
): SafeHtml {
  const { status } = options
  const active = status.totp?.enabled === true
  return layout(
    page,
    'Second factor',
    html`<h1>Second factor</h1>
      ${
        active
          ? html`<p>
                An authenticator app is active since ${formatTime(status.totp?.createdAt)}.
                ${status.recoveryCodes.remaining} recovery codes are left.
              </p>
              ${postForm(
                page,
                '/mfa/recovery-codes',
                html`<button type="submit" class="secondary">New recovery codes</button>`,
              )}`
          : html`${
                options.required
                  ? noticeMessage(
                      'Administrators must have a second factor. Set up an authenticator app to continue.',
                    )
                  : ''
              }
              <p>
                Add an authenticator app (any app that reads an otpauth QR code: TOTP, 6 digits, 30
                seconds).
              </p>
              ${postForm(page, '/mfa/totp', html`<button type="submit">Set up an authenticator</button>`)}`
      }`,
    { current: '/mfa' },
  )
}

/** The enrolment: the QR code (inline SVG), the secret to type instead, the confirming code. */
export function enrolPage(
  page: PageContext,
  options: { secret: string; qrSvg: string; error?: string },
): SafeHtml {
  return layout(
    page,
    'Set up an authenticator',
    html`<div class="narrow">
      <h1>Set up an authenticator</h1>
      ${errorMessage(options.error)}
      <p>Scan this code with the app, or type the key.</p>
      <div class="qr" aria-label="QR code of the authenticator key">
        ${trustedHtml(options.qrSvg)}
      </div>
      <p>Key: <code id="totp-secret">${options.secret}</code></p>
      ${postForm(
        page,
        '/mfa/totp/confirm',
        html`${codeField('Code from the app')}<button type="submit">Confirm</button>`,
        { className: 'stack' },
      )}
    </div>`,
    { current: '/mfa' },
  )
}

/** Recovery codes, shown once. */
export function recoveryCodesPage(page: PageContext, codes: readonly string[]): SafeHtml {
  return layout(
    page,
    'Recovery codes',
    html`<div class="narrow">
      <h1>Recovery codes</h1>
      <p class="flash ok" role="status">
        Your second factor is set. Keep these codes somewhere safe: each works once, instead of a
        code from the app. They are shown only now.
      </p>
      <ol id="recovery-codes">
        ${codes.map((code) => html`<li><code>${code}</code></li>`)}
      </ol>
      <p><a href="${page.base}">Continue to the dashboard</a></p>
    </div>`,
    { current: '/mfa' },
  )
}
