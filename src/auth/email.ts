/**
 * E-mail normalisation, applied before every lookup and insert, so one mailbox is one account.
 *
 * Steps: Unicode NFKC (fullwidth `Ａ` becomes `A`, ligatures split), trim (Unicode white space,
 * including the ideographic space), then case folding approximated by `toUpperCase()` followed
 * by `toLowerCase()` (this maps `ß` to `ss` and final `ς` to `σ` like Unicode full case folding,
 * which `toLowerCase()` alone does not), then NFKC again because case mapping can denormalise.
 *
 * The whole address is folded, local part included: RFC 5321 lets a server treat the local part
 * as case-sensitive, but no mainstream provider does, and two accounts for `Alice@x` and
 * `alice@x` are a takeover risk, not a feature.
 */
export function normalizeEmail(email: string): string {
  return email.normalize('NFKC').trim().toUpperCase().toLowerCase().normalize('NFKC')
}

const MAX_EMAIL_LENGTH = 254
// SECURITY: a lone UTF-16 surrogate has no UTF-8 encoding; such an address would be stored
// mangled (U+FFFD), so the account's e-mail would differ from the one given (and from any
// mailbox). With the u flag a surrogate pair is one code point and does not match.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u
// SECURITY: no white space or control characters inside an address (header injection in mail).
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\s\u0000-\u001f\u007f<>,;"\\]/u

/**
 * The normalised e-mail, or `null` when the input is not a plausible address: one `@` with a
 * non-empty local part (at most 64 characters) and a domain containing a dot or being
 * `localhost`, no white space, control characters, quotes, brackets, commas or semicolons, no
 * lone UTF-16 surrogate, at most 254 characters. Deliverability is proved by mail, not by a regular expression.
 */
export function parseEmail(input: unknown): string | null {
  if (typeof input !== 'string' || input.length > MAX_EMAIL_LENGTH * 4) return null
  if (LONE_SURROGATE.test(input)) return null
  const email = normalizeEmail(input)
  if (email.length === 0 || email.length > MAX_EMAIL_LENGTH || FORBIDDEN.test(email)) return null
  const at = email.indexOf('@')
  if (at <= 0 || at !== email.lastIndexOf('@') || at > 64) return null
  const domain = email.slice(at + 1)
  if (domain.length === 0 || domain.startsWith('.') || domain.endsWith('.')) return null
  if (!domain.includes('.') && domain !== 'localhost') return null
  return email
}
