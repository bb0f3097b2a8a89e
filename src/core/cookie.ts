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
  /**
   * What a name sent more than once reads as: its first value, or nothing (`'none'`: the name
   * is left out, as {@link readCookie} does, against cookie tossing). @default 'first'
   */
  duplicates?: 'first' | 'none'
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
  const dropDuplicates = options.duplicates === 'none'
  let duplicated: string[] | undefined
  let pairs = 0
  let start = 0
  // The next '=' at or after `start`, found once and reused until passed: searching for it from
  // every segment would rescan a long '='-less tail again and again (quadratic on ";;;;…=").
  let eq = -1
  while (start < text.length && pairs < maxPairs) {
    if (eq < start) {
      eq = text.indexOf('=', start)
      if (eq === -1) break
    }
    let end = text.indexOf(';', start)
    if (end === -1) end = text.length
    if (eq < end) {
      pairs++
      const name = text.slice(start, eq).trim()
      if (dropDuplicates && name in cookies) (duplicated ??= []).push(name)
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
  // SECURITY: a name sent twice is not this site's alone (cookie tossing): neither value counts.
  if (duplicated !== undefined) for (const name of duplicated) delete cookies[name]
  return cookies
}

/**
 * The value of the cookie `name` in a `Cookie` header, read the way {@link parseCookieHeader}
 * reads a pair (trimming, quotes, `%XX` escapes) but without building a record of every cookie:
 * the session check of every request needs one name.
 *
 * A name sent more than once reads as absent (`undefined`): with `a=<mine>; a=<planted>` no
 * reader can tell which cookie the site set, since a sibling host can add one for the parent
 * domain (cookie tossing) and the browser orders them by path, not by origin. The whole header
 * is scanned for this (in linear time), not only the first `maxPairs` pairs, so a duplicate
 * cannot hide behind padding. Never throws.
 *
 * @example
 * ```ts
 * const value = readCookie(request.headers.get('cookie') ?? '', 'tessera_session')
 * ```
 */
export function readCookie(header: string | null | undefined, name: string): string | undefined {
  if (typeof header !== 'string' || header.length === 0) return undefined
  // Most requests carry a few cookies and the name appears once or not at all: a plain search
  // settles the common miss without looking at any pair.
  if (!header.includes(name)) return undefined
  let found: string | undefined
  let start = 0
  // The next '=' at or after `start`, found once and reused until passed (see parseCookieHeader).
  let eq = -1
  while (start < header.length) {
    if (eq < start) {
      eq = header.indexOf('=', start)
      if (eq === -1) break
    }
    let end = header.indexOf(';', start)
    if (end === -1) end = header.length
    if (eq < end && header.slice(start, eq).trim() === name) {
      // SECURITY: a cookie sent twice is sent by someone other than this site (cookie tossing,
      // issue 12.4 / API.md): read as none, so neither copy authenticates or proves anything.
      if (found !== undefined) return undefined
      found = header.slice(eq + 1, end)
    }
    start = end + 1
  }
  if (found === undefined) return undefined
  let value = found.trim()
  if (value.length >= 2 && value.charCodeAt(0) === 34 && value.endsWith('"')) {
    value = value.slice(1, -1)
  }
  return value.includes('%') ? safeDecode(value) : value
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

/** The per-cookie limit browsers enforce (RFC 6265bis 5.6: name + value ≤ 4096 bytes). */
export const MAX_COOKIE_SIZE = 4096

/** Default budget, in bytes, for what one chunked cookie adds to the request's `Cookie` header. */
export const DEFAULT_COOKIE_BUDGET = 8192

/** Default most chunks one value may be split into. */
export const DEFAULT_MAX_CHUNKS = 10

/** Options of {@link serializeChunkedCookie}. */
export interface ChunkedCookieOptions {
  /**
   * The request's cookies (from {@link parseCookieHeader}): chunks of an earlier, longer value
   * that the new value no longer needs are deleted. Without it nothing is deleted.
   */
  existing?: Readonly<Record<string, string>>
  /**
   * Most bytes of one whole `Set-Cookie` line (name, value and attributes). Counting the
   * attributes too keeps every browser's way of measuring under its limit.
   * @default 4096
   */
  maxCookieSize?: number
  /**
   * Most bytes the cookie (all its chunks, with the `; ` between them) may add to the `Cookie`
   * request header. Proxies refuse long header lines (nginx: 8 KiB by default) and Node refuses
   * more than 16 KiB of request headers in all, so a bigger session breaks far from its cause.
   * @default 8192
   */
  maxTotalSize?: number
  /** Most chunks. @default 10 */
  maxChunks?: number
}

/** Options of {@link joinCookieChunks}. */
export interface JoinCookieOptions {
  /** Most chunks; a chunk numbered at or above this makes the cookie unreadable. @default 10 */
  maxChunks?: number
}

/**
 * Serializes a cookie whose value may be longer than one cookie can hold.
 *
 * A value that fits is set under `name` itself. A longer one is split, in order, into
 * `name.0`, `name.1`, … each filling one cookie up to `maxCookieSize`; {@link joinCookieChunks}
 * puts it back together. With `options.existing`, the cookies of the other form and chunks past
 * the new end are deleted, so a shrinking value leaves nothing stale behind.
 *
 * @returns `Set-Cookie` header values: the cookies to set, then the deletions
 * @throws TesseraError `cookie_too_large` when the value needs more than `maxTotalSize` bytes of
 *   the `Cookie` header or more than `maxChunks` chunks; the message gives sizes, never the value
 * @throws TesseraError `cookie_invalid` as {@link serializeCookie} does
 * @example
 * ```ts
 * const cookies = parseCookieHeader(request.headers.get('cookie'))
 * const sealed = sealValue(keyring, 'session', JSON.stringify(session), { ttl: 86_400 })
 * for (const line of serializeChunkedCookie('app_session', sealed, { secure: true }, { existing: cookies })) {
 *   response.headers.append('Set-Cookie', line)
 * }
 * ```
 */
export function serializeChunkedCookie(
  name: string,
  value: string,
  attributes: CookieAttributes = {},
  options: ChunkedCookieOptions = {},
): string[] {
  const maxCookieSize = positiveInteger(options.maxCookieSize, MAX_COOKIE_SIZE, 'maxCookieSize')
  const maxTotalSize = positiveInteger(options.maxTotalSize, DEFAULT_COOKIE_BUDGET, 'maxTotalSize')
  const maxChunks = positiveInteger(options.maxChunks, DEFAULT_MAX_CHUNKS, 'maxChunks')
  const single = serializeCookie(name, value, attributes)
  // A value longer than the budget can never fit: refuse before splitting it.
  if (name.length + 1 + value.length > maxTotalSize) {
    throw tooLarge(name, name.length + 1 + value.length, maxTotalSize, 'at least')
  }

  const set: string[] = []
  let total: number
  let chunkCount = 0
  if (single.length <= maxCookieSize) {
    set.push(single)
    total = name.length + 1 + value.length
  } else {
    total = 0
    let offset = 0
    while (offset < value.length) {
      if (chunkCount === maxChunks) {
        throw new TesseraError(
          'cookie_too_large',
          `cookie "${name}" (${value.length} bytes) needs more than maxChunks (${maxChunks}) chunks of at most ${maxCookieSize} bytes; store less in it or use a server-side session store`,
        )
      }
      const chunkName = `${name}.${chunkCount}`
      const room = maxCookieSize - serializeCookie(chunkName, '', attributes).length
      if (room < 1) {
        throw new TesseraError(
          'cookie_too_large',
          `the attributes of cookie "${name}" leave no room for a value within maxCookieSize (${maxCookieSize} bytes)`,
        )
      }
      const part = value.slice(offset, offset + room)
      set.push(serializeCookie(chunkName, part, attributes))
      total += (chunkCount === 0 ? 0 : 2) + chunkName.length + 1 + part.length
      offset += part.length
      chunkCount++
    }
  }
  if (total > maxTotalSize) throw tooLarge(name, total, maxTotalSize, '')

  const deletions: string[] = []
  const existing = options.existing
  if (existing !== undefined) {
    if (chunkCount > 0 && existing[name] !== undefined) {
      deletions.push(serializeDeletedCookie(name, attributes))
    }
    for (const suffix of chunkSuffixes(existing, name)) {
      if (!CANONICAL_INDEX.test(suffix) || Number(suffix) >= chunkCount) {
        deletions.push(serializeDeletedCookie(`${name}.${suffix}`, attributes))
      }
    }
  }
  return set.concat(deletions)
}

/**
 * Reads back a cookie written by {@link serializeChunkedCookie} from a parsed `Cookie` header:
 * the value of `name`, or its chunks `name.0` … `name.N` joined in order.
 *
 * Returns `null` when the cookie is absent or its chunks do not make one value: a missing or
 * empty chunk, a chunk numbered at or above `maxChunks`, a non-canonical number (`name.01`),
 * or both the plain and the chunked form at once. Names such as `name.sig` are not chunks and
 * are ignored. Never throws.
 */
export function joinCookieChunks(
  cookies: Readonly<Record<string, string>>,
  name: string,
  options: JoinCookieOptions = {},
): string | null {
  const maxChunks = options.maxChunks ?? DEFAULT_MAX_CHUNKS
  const prefix = `${name}.`
  let count = 0
  for (const key in cookies) {
    if (!key.startsWith(prefix)) continue
    const suffix = key.slice(prefix.length)
    if (!DIGITS.test(suffix)) continue
    // SECURITY: bounded: a forged header cannot make us join more than maxChunks parts.
    if (!CANONICAL_INDEX.test(suffix) || suffix.length > 6 || Number(suffix) >= maxChunks) {
      return null
    }
    count++
  }
  const plain = Object.hasOwn(cookies, name) ? cookies[name] : undefined
  if (count === 0) return plain ?? null
  if (plain !== undefined) return null
  let joined = ''
  for (let index = 0; index < count; index++) {
    const part = Object.hasOwn(cookies, `${prefix}${index}`)
      ? cookies[`${prefix}${index}`]
      : undefined
    if (part === undefined || part.length === 0) return null
    joined += part
  }
  return joined
}

/**
 * `Set-Cookie` values that delete a cookie written by {@link serializeChunkedCookie}: `name`
 * itself and every chunk of it found in the request's cookies. Pass the attributes it was set
 * with (path, domain, secure).
 */
export function serializeDeletedChunkedCookie(
  name: string,
  existing: Readonly<Record<string, string>>,
  attributes: CookieAttributes = {},
): string[] {
  const lines = [serializeDeletedCookie(name, attributes)]
  for (const suffix of chunkSuffixes(existing, name)) {
    lines.push(serializeDeletedCookie(`${name}.${suffix}`, attributes))
  }
  return lines
}

const DIGITS = /^[0-9]+$/
const CANONICAL_INDEX = /^(?:0|[1-9][0-9]*)$/

/** The chunk numbers of `name` present in `cookies`, canonical or not (all are ours to delete). */
function chunkSuffixes(cookies: Readonly<Record<string, string>>, name: string): string[] {
  const prefix = `${name}.`
  const found: string[] = []
  for (const key in cookies) {
    if (key.startsWith(prefix) && DIGITS.test(key.slice(prefix.length))) {
      found.push(key.slice(prefix.length))
    }
  }
  return found
}

function tooLarge(name: string, size: number, budget: number, qualifier: string): TesseraError {
  return new TesseraError(
    'cookie_too_large',
    `cookie "${name}" needs ${qualifier === '' ? '' : `${qualifier} `}${size} bytes of the Cookie header, over maxTotalSize (${budget} bytes); store less in it or use a server-side session store`,
  )
}

function positiveInteger(value: number | undefined, fallback: number, option: string): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new TesseraError('invalid_argument', `${option} must be a positive whole number`)
  }
  return value
}
