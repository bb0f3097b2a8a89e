/* The form fields and messages several pages share: e-mail, passwords, alerts and notices. */
import { html, type SafeHtml } from '../html.js'
import { passwordRulesText, type PasswordRules } from './layout.js'

/** An alert above a form (`role="alert"`), or nothing. */
export function errorMessage(text: string | undefined): SafeHtml | '' {
  return text === undefined ? '' : html`<p class="flash error" role="alert">${text}</p>`
}

/** A neutral notice (`role="status"`), news rather than a failure, or nothing. */
export function noticeMessage(text: string | undefined): SafeHtml | '' {
  return text === undefined ? '' : html`<p class="flash info" role="status">${text}</p>`
}

/** The e-mail field (`name="email"`), keeping what was typed. */
export function emailField(
  value: string | undefined,
  options: { username?: boolean } = {},
): SafeHtml {
  return html`<label
    >E-mail
    <input
      type="email"
      name="email"
      ${options.username === false ? '' : html`autocomplete="username"`}
      required
      value="${value ?? ''}"
  /></label>`
}

/** The password of a sign-in (`name="password"`). */
export function currentPasswordField(): SafeHtml {
  return html`<label
    >Password <input type="password" name="password" autocomplete="current-password" required
  /></label>`
}

/**
 * A new password (`name`), with the policy's rules stated under it when `rules` are given
 * (`describe`), else only its `minlength`.
 */
export function newPasswordField(
  label: string,
  name: string,
  rules: PasswordRules,
  options: { describe?: boolean } = {},
): SafeHtml {
  const describe = options.describe !== false
  return html`<label
    >${label}
    <input
      type="password"
      name="${name}"
      autocomplete="new-password"
      required
      minlength="${rules.minLength}"
      ${describe ? html`aria-describedby="${name}-rules"` : ''}
    />${
      describe
        ? html`<span class="rules" id="${name}-rules">${passwordRulesText(rules)}</span>`
        : ''
    }</label
  >`
}
