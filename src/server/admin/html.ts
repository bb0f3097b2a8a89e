/**
 * A tiny HTML template tag with escaping by default: every interpolated value is escaped unless it
 * is itself a {@link SafeHtml} made by this tag. The admin panel renders every page with it.
 */

/** HTML that is already escaped (made by {@link html} or {@link trustedHtml}). */
export class SafeHtml {
  readonly value: string
  constructor(value: string) {
    this.value = value
  }
  toString(): string {
    return this.value
  }
}

/** What a template may interpolate: strings and numbers are escaped, falsy values render nothing. */
export type HtmlValue = SafeHtml | string | number | null | undefined | false | readonly HtmlValue[]

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

/**
 * Escapes text for an element body or a quoted attribute value.
 * SECURITY: escapes all five of `& < > " '`, so a value is inert in text and in attributes
 * quoted with either quote (OWASP XSS prevention, rules 1 and 2).
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c)
}

function render(value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return ''
  if (value instanceof SafeHtml) return value.value
  if (typeof value === 'number') return String(value)
  if (typeof value === 'string') return escapeHtml(value)
  let out = ''
  for (const item of value) out += render(item)
  return out
}

/**
 * Template tag: `html\`<td>${user.email}</td>\`` escapes `user.email`.
 *
 * @example
 * ```ts
 * const row = html`<tr><td>${email}</td></tr>`
 * const table = html`<table>${rows}</table>` // rows: SafeHtml[] stay as they are
 * ```
 */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] ?? ''
  for (let index = 0; index < values.length; index++) {
    out += render(values[index]) + (strings[index + 1] ?? '')
  }
  return new SafeHtml(out)
}

/** Marks a constant string (never user input) as HTML. */
export function trustedHtml(value: string): SafeHtml {
  return new SafeHtml(value)
}
