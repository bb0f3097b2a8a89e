import { Secret, TOTP } from 'otpauth'
import QRCode from 'qrcode'

/*
 * TOTP (RFC 6238) on otpauth, the widely used implementation: SHA-1, 6 digits, 30-second steps,
 * the parameters every authenticator app supports. Only what tessera needs is exposed: a new
 * secret, its otpauth:// URI and QR code, and a check that names the time step a code matched,
 * so the caller can refuse a replay (the step is stored and compared-and-set).
 */

/** Seconds per step (RFC 6238 X). */
export const TOTP_PERIOD = 30
/** Digits of a code. */
export const TOTP_DIGITS = 6
/** Steps of clock drift accepted either way (RFC 6238 5.2). */
export const TOTP_WINDOW = 1

const CODE_SHAPE = /^\d{6}$/
const BASE32_SHAPE = /^[A-Z2-7]{16,128}$/

/** Options of {@link verifyTOTPCode} and {@link totpCode}. */
export interface TOTPCheckOptions {
  /** The time to check at, epoch ms. */
  now: number
  /** Steps accepted either way. @default 1 */
  window?: number
  /** Digits. @default 6 (the RFC's test vectors use 8) */
  digits?: number
}

function totp(secretBase32: string, digits: number): TOTP {
  return new TOTP({
    algorithm: 'SHA1',
    digits,
    period: TOTP_PERIOD,
    secret: Secret.fromBase32(secretBase32),
  })
}

/** A new TOTP secret: 160 random bits (RFC 4226 4 recommends 160), base32 without padding. */
export function generateTOTPSecret(): string {
  return new Secret({ size: 20 }).base32
}

/** True when `value` is a base32 secret this module made or accepts. */
export function isTOTPSecret(value: unknown): value is string {
  return typeof value === 'string' && BASE32_SHAPE.test(value)
}

/** The RFC 6238 time step of `now` (epoch ms). */
export function totpStep(now: number): number {
  return Math.floor(now / 1000 / TOTP_PERIOD)
}

/**
 * The `otpauth://totp/...` URI an authenticator app reads (the Key URI format): issuer and
 * account label, SHA1, 6 digits, 30 s.
 */
export function totpURI(secretBase32: string, options: { issuer: string; label: string }): string {
  const t = new TOTP({
    issuer: options.issuer,
    label: options.label,
    algorithm: 'SHA1',
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD,
    secret: Secret.fromBase32(secretBase32),
  })
  return t.toString()
}

/** The URI as a QR code, an inline SVG document (qrcode, no script, no external reference). */
export async function totpQRCodeSVG(uri: string): Promise<string> {
  return QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 })
}

/** The code of `secretBase32` at `options.now` (tests, the admin panel's browser test). */
export function totpCode(secretBase32: string, options: TOTPCheckOptions): string {
  return totp(secretBase32, options.digits ?? TOTP_DIGITS).generate({ timestamp: options.now })
}

/**
 * The time step `code` matches within `window` steps of `now`, or `null`. Never throws on
 * input: a code that is not six digits is `null` before any HMAC.
 */
export function verifyTOTPCode(
  secretBase32: string,
  code: unknown,
  options: TOTPCheckOptions,
): number | null {
  const digits = options.digits ?? TOTP_DIGITS
  if (typeof code !== 'string') return null
  if (
    digits === TOTP_DIGITS ? !CODE_SHAPE.test(code) : !new RegExp(`^\\d{${digits}}$`).test(code)
  ) {
    return null
  }
  if (!isTOTPSecret(secretBase32)) return null
  const window = options.window ?? TOTP_WINDOW
  // otpauth compares in constant time and returns the offset of the matching step.
  const delta = totp(secretBase32, digits).validate({ token: code, timestamp: options.now, window })
  return delta === null ? null : totpStep(options.now) + delta
}
