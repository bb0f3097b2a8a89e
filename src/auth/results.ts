/** An expected failure: untrusted input never throws. `code` matches the HTTP API's codes. */
export interface AuthFailure<Code extends string> {
  ok: false
  code: Code
  message: string
  /** Seconds to wait, for `rate_limited`. */
  retryAfterSeconds?: number
}

/** Builds an {@link AuthFailure}. */
export function failure<Code extends string>(
  code: Code,
  message: string,
  retryAfterSeconds?: number,
): AuthFailure<Code> {
  return retryAfterSeconds === undefined
    ? { ok: false, code, message }
    : { ok: false, code, message, retryAfterSeconds }
}

/** The one answer for an unknown e-mail, a wrong password and a disabled account. */
export const INVALID_CREDENTIALS = 'email or password is incorrect'
