/**
 * Every error tessera throws on purpose is a {@link TesseraError} with a stable `code`.
 * Codes are never renamed or reused; `docs/errors.md` lists each one (a test keeps the two equal).
 */
export const ERROR_CODES = [
  'config_invalid',
  'invalid_argument',
  'cookie_invalid',
  'cookie_too_large',
  'store_unavailable',
  'store_conflict',
  'conflict',
  'not_found',
  'token_invalid',
  'token_reused',
  'jwks_unavailable',
  'overloaded',
] as const

/** The stable machine-readable reason of a {@link TesseraError}. */
export type TesseraErrorCode = (typeof ERROR_CODES)[number]

/**
 * The one error class of tessera.
 *
 * Messages name the option and what was expected; they never contain a token, cookie value,
 * secret, password or hash.
 *
 * @example
 * ```ts
 * try { createKeyring('keyboard cat') } catch (error) {
 *   if (error instanceof TesseraError && error.code === 'config_invalid') console.error(error.message)
 * }
 * ```
 */
export class TesseraError extends Error {
  /** Stable snake_case reason; safe to branch on and to show in logs. */
  readonly code: TesseraErrorCode

  constructor(code: TesseraErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'TesseraError'
    this.code = code
  }
}

/** True when `error` is a {@link TesseraError}, optionally with the given code. */
export function isTesseraError(error: unknown, code?: TesseraErrorCode): error is TesseraError {
  return error instanceof TesseraError && (code === undefined || error.code === code)
}
