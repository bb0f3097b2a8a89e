/** express-session's `Cookie`, serialized through tessera's cookie codec. */
import { serializeCookie } from '../../core/cookie.js'
import type { CookieAttributes } from '../../core/cookie.js'
import { TesseraError } from '../../core/errors.js'
import type { CookieData, CookieOptions } from './types.js'

/**
 * express-session's `Cookie`: the cookie settings of one session, with `maxAge` (milliseconds,
 * counting down) and `expires` kept in step.
 */
export class Cookie {
  path = '/'
  httpOnly = true
  declare originalMaxAge: number | null
  declare secure?: boolean | 'auto' | undefined
  declare domain?: string | undefined
  declare sameSite?: boolean | 'lax' | 'strict' | 'none' | 'auto' | undefined
  declare partitioned?: boolean | undefined
  declare priority?: 'low' | 'medium' | 'high' | undefined
  private _expires: Date | null | undefined = undefined
  declare private readonly clock: () => number

  /** `now` is tessera's: the clock `maxAge` counts from. @default Date.now */
  constructor(options?: CookieOptions | CookieData, now: () => number = Date.now) {
    Object.defineProperty(this, 'clock', { value: now })
    this.maxAge = null
    if (options !== undefined && options !== null) {
      if (typeof options !== 'object') throw new TypeError('argument options must be a object')
      for (const key of Object.keys(options)) {
        if (key !== 'data') {
          ;(this as unknown as Record<string, unknown>)[key] = (
            options as unknown as Record<string, unknown>
          )[key]
        }
      }
    }
    if (this.originalMaxAge === undefined || this.originalMaxAge === null) {
      this.originalMaxAge = this.maxAge
    }
  }

  /** Absolute expiry; setting it makes `originalMaxAge` the time left. */
  set expires(date: Date | null | undefined) {
    this._expires = date
    this.originalMaxAge = this.maxAge ?? null
  }

  get expires(): Date | null | undefined {
    return this._expires
  }

  /**
   * Milliseconds left until `expires` (counting down), or `null`. A Date sets `expires` to it,
   * as in express-session (which deprecates that form).
   */
  set maxAge(ms: number | Date | null | undefined) {
    if (ms !== null && ms !== undefined && typeof ms !== 'number' && !(ms instanceof Date)) {
      throw new TypeError('maxAge must be a number or Date')
    }
    this.expires = typeof ms === 'number' ? new Date(this.clock() + ms) : ms
  }

  get maxAge(): number | null | undefined {
    return this._expires instanceof Date ? this._expires.valueOf() - this.clock() : this._expires
  }

  /** The settings as stored with the session. */
  get data(): CookieData {
    return {
      originalMaxAge: this.originalMaxAge,
      partitioned: this.partitioned,
      priority: this.priority,
      expires: this._expires,
      secure: this.secure === 'auto' ? undefined : this.secure,
      httpOnly: this.httpOnly,
      domain: this.domain,
      path: this.path,
      sameSite: this.sameSite === 'auto' ? undefined : this.sameSite,
    }
  }

  /**
   * A `Set-Cookie` value for `name=value` with these settings.
   *
   * @throws TesseraError `invalid_argument` "option expires is invalid" (express-session's
   *   words) for an invalid Date, `cookie_invalid` for what tessera's cookie codec refuses
   */
  serialize(name: string, value: string): string {
    const attributes = toAttributes(this)
    if (attributes.expires !== undefined && Number.isNaN(attributes.expires.valueOf())) {
      throw new TesseraError('invalid_argument', 'option expires is invalid')
    }
    // express-session sends `SameSite=None` and `Partitioned` as configured, with or without
    // `Secure` (`sameSite: 'auto'` with `secure: false` behind an https proxy, for one). The core
    // codec refuses those two without `Secure`, since browsers drop such a cookie; the drop-in
    // keeps express-session's output: the cookie is serialized without them and they are added.
    const insecure = attributes.secure !== true
    const none = insecure && attributes.sameSite === 'None'
    const partitioned = insecure && attributes.partitioned === true
    if (none) attributes.sameSite = 'Lax'
    if (partitioned) attributes.partitioned = false
    let header = serializeCookie(name, encodeURIComponent(value), attributes)
    if (none) header = header.replace('; SameSite=Lax', '; SameSite=None')
    if (partitioned) header += '; Partitioned'
    return header
  }

  toJSON(): CookieData {
    return this.data
  }
}

export function toAttributes(cookie: Cookie): CookieAttributes {
  const attributes: CookieAttributes = {
    path: cookie.path,
    httpOnly: cookie.httpOnly !== false,
    secure: cookie.secure === true,
  }
  const expires = cookie.expires
  if (expires instanceof Date) attributes.expires = expires
  if (cookie.domain !== undefined) attributes.domain = cookie.domain
  const sameSite = cookie.sameSite
  if (sameSite === true || sameSite === 'strict') attributes.sameSite = 'Strict'
  else if (sameSite === 'none') attributes.sameSite = 'None'
  else attributes.sameSite = 'Lax'
  if (cookie.partitioned === true) attributes.partitioned = true
  if (cookie.priority !== undefined) {
    attributes.priority = (cookie.priority.charAt(0).toUpperCase() + cookie.priority.slice(1)) as
      'Low' | 'Medium' | 'High'
  }
  return attributes
}
