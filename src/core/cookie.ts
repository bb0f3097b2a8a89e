import { TesseraError } from './errors.js'

/** Attributes of a `Set-Cookie` header (RFC 6265bis). */
export interface CookieAttributes {
  /** Seconds until the browser drops the cookie; 0 or less deletes it. */
  maxAge?: number
  /** Absolute expiry; prefer `maxAge`. */
  expires?: Date
  /** @default '/' */
  path?: string
  /** Omit (the default) for a host-only cookie. */
  domain?: string
  /** @default false */
  secure?: boolean
  /** @default true */
  httpOnly?: boolean
  /** @default 'Lax' */
  sameSite?: 'Strict' | 'Lax' | 'None'
  /** CHIPS partitioned cookie; requires `secure`. */
  partitioned?: boolean
  priority?: 'Low' | 'Medium' | 'High'
}

/** Options of {@link parseCookieHeader}. */
export interface ParseCookieOptions {
  /** Only this many bytes of the header are read. @default 65536 */
  maxLength?: number
  /** Only this many pairs are read. @default 256 */
  maxPairs?: number
}

// RFC 7230 token characters, the only ones allowed in a cookie name.
const NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// RFC 6265 cookie-octet: visible ASCII except DQUOTE, comma, semicolon and backslash.
const VALUE = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/
// Path and domain values: any visible ASCII except the semicolon.
const ATTRIBUTE_VALUE = /^[\x20-\x3A\x3C-\x7E]+$/

/**
 * Parses a `Cookie` request header into a name → value record (null prototype).
 *
 * Tolerant and bounded: malformed pairs are skipped, the first occurrence of a name wins, at most
 * `maxPairs` pairs and `maxLength` characters are read, so any header costs linear time and
 * memory and nothing throws. Values in double quotes are unquoted; `%XX` escapes are decoded
 * when they are valid UTF-8 and kept as they are otherwise.
 */
export function parseCookieHeader(
  header: string | null | undefined,
  options: ParseCookieOptions = {},
): Record<string, string> {
  const cookies = Object.create(null) as Record<string, string>
  if (typeof header !== 'string' || header.length === 0) return cookies
  const maxLength = options.maxLength ?? 65_536
  const maxPairs = options.maxPairs ?? 256
  const text = header.length > maxLength ? header.slice(0, maxLength) : header
  let pairs = 0
  let start = 0
  while (start < text.length && pairs < maxPairs) {
    let end = text.indexOf(';', start)
    if (end === -1) end = text.length
    const eq = text.indexOf('=', start)
    if (eq !== -1 && eq < end) {
      pairs++
      const name = text.slice(start, eq).trim()
      if (name.length > 0 && !(name in cookies)) {
        let value = text.slice(eq + 1, end).trim()
        if (value.length >= 2 && value.charCodeAt(0) === 34 && value.endsWith('"')) {
          value = value.slice(1, -1)
        }
        cookies[name] = value.includes('%') ? safeDecode(value) : value
      }
    }
    start = end + 1
  }
  return cookies
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value)
  } catch {
    return value
  }
}

/**
 * Serializes one `Set-Cookie` header value. Names, values and attributes are validated, and the
 * `__Host-` and `__Secure-` prefix rules are enforced, so a call that would produce a cookie the
 * browser rejects or misreads throws instead.
 *
 * @throws TesseraError `cookie_invalid` for a bad name, value or attribute
 * @example
 * ```ts
 * headers.append('Set-Cookie', serializeCookie('__Host-sid', signed, { secure: true }))
 * ```
 */
export function serializeCookie(
  name: string,
  value: string,
  attributes: CookieAttributes = {},
): string {
  if (!NAME.test(name)) throw cookieError(`cookie name must be an RFC 7230 token`)
  if (!VALUE.test(value)) {
    throw cookieError(`value of cookie "${name}" has characters outside RFC 6265 cookie-octet`)
  }
  const path = attributes.path ?? '/'
  const secure = attributes.secure ?? false
  const sameSite = attributes.sameSite ?? 'Lax'

  // SECURITY: prefixed cookies carry guarantees the browser checks (RFC 6265bis 4.1.3);
  // refusing to emit a broken one keeps a misconfiguration from silently dropping sessions.
  if (name.startsWith('__Host-')) {
    if (!secure || path !== '/' || attributes.domain !== undefined) {
      throw cookieError(
        `cookie "${name}" needs secure: true, path "/" and no domain (__Host- prefix)`,
      )
    }
  } else if (name.startsWith('__Secure-') && !secure) {
    throw cookieError(`cookie "${name}" needs secure: true (__Secure- prefix)`)
  }
  if (sameSite === 'None' && !secure) {
    throw cookieError(`cookie "${name}" with sameSite "None" needs secure: true`)
  }
  if (attributes.partitioned === true && !secure) {
    throw cookieError(`cookie "${name}" with partitioned needs secure: true`)
  }

  let out = `${name}=${value}`
  if (attributes.maxAge !== undefined) {
    if (!Number.isFinite(attributes.maxAge)) throw cookieError('maxAge must be a finite number')
    out += `; Max-Age=${Math.max(0, Math.floor(attributes.maxAge))}`
  }
  if (attributes.expires !== undefined) {
    if (Number.isNaN(attributes.expires.getTime()))
      throw cookieError('expires must be a valid Date')
    out += `; Expires=${attributes.expires.toUTCString()}`
  }
  if (attributes.domain !== undefined) {
    if (!ATTRIBUTE_VALUE.test(attributes.domain)) throw cookieError('domain has invalid characters')
    out += `; Domain=${attributes.domain}`
  }
  if (!path.startsWith('/') || !ATTRIBUTE_VALUE.test(path)) {
    throw cookieError('path must start with "/" and contain no ";" or control characters')
  }
  out += `; Path=${path}`
  if (secure) out += '; Secure'
  if (attributes.httpOnly ?? true) out += '; HttpOnly'
  if (sameSite !== 'Lax' && sameSite !== 'Strict' && sameSite !== 'None') {
    throw cookieError('sameSite must be "Strict", "Lax" or "None"')
  }
  out += `; SameSite=${sameSite}`
  if (attributes.partitioned === true) out += '; Partitioned'
  if (attributes.priority !== undefined) out += `; Priority=${attributes.priority}`
  return out
}

/**
 * A `Set-Cookie` value that deletes the cookie. Pass the same `path`, `domain` and `secure` it
 * was set with: a browser deletes only a cookie that matches them.
 */
export function serializeDeletedCookie(name: string, attributes: CookieAttributes = {}): string {
  return serializeCookie(name, '', {
    ...attributes,
    maxAge: 0,
    expires: new Date(0),
  })
}

function cookieError(message: string): TesseraError {
  return new TesseraError('cookie_invalid', message)
}
