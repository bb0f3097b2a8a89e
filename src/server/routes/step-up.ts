import { assuranceRefusal, freshnessRefusal } from '../../core/refusals.js'
import { TesseraError } from '../../core/errors.js'
import type { Session } from '../../core/session-manager.js'

const HOW = 'POST /auth/reauthenticate'

/**
 * The step-up rule of API.md's sensitive changes, on the caller's session: `authTime` within
 * `maxAgeSeconds` (core's `requireFresh` rule), and with `secondFactor` an `aal` of 2 (core's
 * `requireAAL` rule).
 * @throws TesseraError `reauthentication_required` (403) with what to do next
 */
export function requireRecentAuth(
  session: Session,
  maxAgeSeconds: number,
  now: number,
  options: { secondFactor?: boolean } = {},
): void {
  // SECURITY: step-up before a sensitive change (ASVS 3.7.1): the rules are core's, the same as
  // every adapter's requireFresh / requireAAL guard.
  if (freshnessRefusal(session.authTime, maxAgeSeconds, now) !== null) {
    throw new TesseraError(
      'reauthentication_required',
      `this change needs a sign-in within the last ${Math.round(maxAgeSeconds / 60)} minutes: ${HOW} with your password or a second factor, then try again`,
    )
  }
  if (options.secondFactor === true && assuranceRefusal(session.aal, 2) !== null) {
    throw new TesseraError(
      'reauthentication_required',
      `this change needs a recent sign-in with a second factor: ${HOW} with {method, code}, then try again`,
    )
  }
}
