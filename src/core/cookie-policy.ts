import { serializeCookie } from './cookie.js'
import type { CookieAttributes } from './cookie.js'
import { TesseraError } from './errors.js'
import type { JSONValue } from './session-store.js'

/**
 * The cookie policy shared by every kind of session tessera keeps in a cookie (server-side
 * sessions, sealed cookie sessions, the Next.js helpers): how the cookie is named and which
 * attributes it gets, how lifetimes are checked, and how session data is changed without
 * touching a prototype. One module, so the three cannot drift apart.
 */

/** The cookie options a session kind takes. */
export interface CookiePolicyOptions {
  /**
   * Cookie name. The default is the kind's base name, `__Host-<base>` with `secure`, or
   * `__Secure-<base>` when a `domain` or a path other than `/` rules out `__Host-`.
   */
  cookieName?: string | undefined
  /** `Secure` (https only). @default false */
  secure?: boolean | undefined
  /** Cookie `Domain`; unset for a host-only cookie. */
  domain?: string | undefined
  /** Cookie `Path`. @default '/' */
  path?: string | undefined
  /** Cookie `SameSite`. @default 'Lax' */
  sameSite?: 'Strict' | 'Lax' | 'None' | undefined
}

/** A checked cookie name and the attributes every `Set-Cookie` of it carries. */
export interface CookiePolicy {
  readonly name: string
  /** `HttpOnly` always; `Path`, `Secure`, `SameSite` and `Domain` from the options. */
  readonly attributes: Readonly<CookieAttributes>
}

/**
 * The cookie name and attributes of a session kind. A `secure` cookie without a name of its own
 * gets the strongest prefix its scope allows (RFC 6265bis 4.1.3): `__Host-` binds it to this
 * host and path `/`, so a sibling host cannot set or overwrite it; `__Secure-` at least keeps a
 * plain-http page from setting it.
 *
 * @param baseName the kind's default name (`tessera_session`, `tessera_state`, `tessera_seal`)
 * @param context names the factory in error messages (`session manager`)
 * @throws TesseraError `config_invalid` when the name or attributes could never be sent
 */
export function createCookiePolicy(
  baseName: string,
  options: CookiePolicyOptions,
  context: string,
): CookiePolicy {
  const path = options.path ?? '/'
  const secure = options.secure ?? false
  const attributes: CookieAttributes = {
    path,
    secure,
    httpOnly: true,
    sameSite: options.sameSite ?? 'Lax',
  }
  if (options.domain !== undefined) attributes.domain = options.domain
  const name =
    options.cookieName ??
    (!secure
      ? baseName
      : options.domain === undefined && path === '/'
        ? `__Host-${baseName}`
        : `__Secure-${baseName}`)
  try {
    serializeCookie(name, 'x', attributes)
  } catch (error) {
    throw new TesseraError(
      'config_invalid',
      `${context}: cookie options are unusable: ${(error as Error).message}`,
      { cause: error },
    )
  }
  return Object.freeze({ name, attributes: Object.freeze(attributes) })
}

/**
 * A duration option in seconds, checked at setup.
 * @throws TesseraError `config_invalid` unless it is a positive finite number
 */
export function positiveSeconds(value: number, option: string, context: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TesseraError(
      'config_invalid',
      `${context}: ${option} must be a positive number of seconds`,
    )
  }
  return value
}

/** The lifetime options every session kind takes, in seconds. */
export interface LifetimeOptions {
  /** A session ends after this many seconds without a request (sliding). @default 604800 (7 days) */
  idleTimeout?: number | undefined
  /** A session ends this many seconds after it was created, however active. @default 2592000 (30 days) */
  absoluteTimeout?: number | undefined
  /** The idle expiry moves forward at most once per this many seconds. @default idleTimeout / 10 */
  touchInterval?: number | undefined
}

/** The lifetimes a session kind gets when its options name none, in seconds. */
export const DEFAULT_LIFETIMES = Object.freeze({
  idleTimeout: 7 * 86_400,
  absoluteTimeout: 30 * 86_400,
})

/** Checked lifetimes, in milliseconds. */
export interface Lifetimes {
  readonly idleMs: number
  readonly absoluteMs: number
  readonly touchMs: number
}

/**
 * The idle, absolute and touch lifetimes of a session kind, checked at setup.
 * @throws TesseraError `config_invalid` for a non-positive timeout or a touch interval that is
 *   negative or not below the idle timeout
 */
export function sessionLifetimes(
  options: LifetimeOptions,
  defaults: { idleTimeout: number; absoluteTimeout: number },
  context: string,
): Lifetimes {
  const idle = positiveSeconds(options.idleTimeout ?? defaults.idleTimeout, 'idleTimeout', context)
  const absolute = positiveSeconds(
    options.absoluteTimeout ?? defaults.absoluteTimeout,
    'absoluteTimeout',
    context,
  )
  const touch = options.touchInterval ?? idle / 10
  if (typeof touch !== 'number' || !Number.isFinite(touch) || touch < 0 || touch >= idle) {
    throw new TesseraError(
      'config_invalid',
      `${context}: touchInterval must be seconds >= 0 and below idleTimeout`,
    )
  }
  return { idleMs: idle * 1000, absoluteMs: absolute * 1000, touchMs: touch * 1000 }
}

/** Changes to session data: a key set to `undefined` is removed. */
export type DataChanges = Record<string, JSONValue | undefined>

/**
 * `data` with `changes` merged key by key (a key set to `undefined` removed), as a new object.
 *
 * SECURITY: a `__proto__` key from untrusted JSON becomes an own property, never the object's
 * prototype (prototype pollution, CWE-1321): plain assignment would swap the prototype.
 */
export function mergeData(
  data: Readonly<Record<string, JSONValue>>,
  changes: DataChanges,
): Record<string, JSONValue> {
  const next: Record<string, JSONValue> = { ...data }
  for (const key of Object.keys(changes)) {
    const value = changes[key]
    if (value === undefined) delete next[key]
    else if (key === '__proto__') {
      Object.defineProperty(next, key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      })
    } else next[key] = value
  }
  return next
}
