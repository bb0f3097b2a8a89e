import { createHash } from 'node:crypto'
import type { PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server'
import type { AuthMethod } from '../core/session-manager.js'
import type { RequestContext } from './audit.js'
import type { Passkeys } from './passkeys.js'

/*
 * A passkey as the second factor of a sign-in (after a password) or of a re-authentication: the
 * `passkey` method of `POST /auth/mfa/verify`. It has the shape of the second-factor registry's
 * methods (`SecondFactorVerifier`, src/auth/second-factor-methods.ts), so the server adds it to
 * that list; the WebAuthn challenge it checks is bound to the user and to the sign-in's
 * second-factor challenge (`POST /auth/mfa/passkey-options`).
 */

/** What the registry hands a method: the client's fields and where the check happens. */
export interface PasskeySecondFactorInput {
  code?: unknown
  response?: unknown
}

/** The second-factor challenge answered (`null` for a re-authentication), and the request. */
export interface PasskeySecondFactorContext extends RequestContext {
  challenge: string | null
}

/** The `passkey` method of the second-factor registry. */
export interface PasskeySecondFactor {
  readonly method: 'passkey'
  readonly amr: readonly AuthMethod[]
  readonly primary: true
  enabled(userId: string): Promise<boolean>
  verify(
    userId: string,
    proof: PasskeySecondFactorInput,
    context: PasskeySecondFactorContext,
  ): Promise<boolean>
  /**
   * The request options for it: the user's passkeys, a WebAuthn challenge bound to the user and
   * to `challenge` (the sign-in's second-factor challenge; `null` for a re-authentication).
   */
  options(userId: string, challenge: string | null): Promise<PublicKeyCredentialRequestOptionsJSON>
}

/**
 * What a WebAuthn challenge is bound to for a second-factor challenge: its SHA-256, so the store
 * record of the WebAuthn challenge never holds the second-factor challenge itself.
 */
export function secondFactorBinding(challenge: string | null): string {
  return challenge === null
    ? 'reauthenticate'
    : createHash('sha256').update(`mfa:${challenge}`).digest('base64url')
}

/**
 * The `passkey` second-factor method over {@link Passkeys}.
 *
 * @example
 * ```ts
 * const registry = createSecondFactorRegistry([...factors.verifiers, createPasskeySecondFactor(passkeys)])
 * ```
 */
export function createPasskeySecondFactor(passkeys: Passkeys): PasskeySecondFactor {
  return {
    method: 'passkey',
    // Whatever the passkey says about user verification, as a second factor it proves a key.
    amr: ['hwk'],
    primary: true,
    enabled: (userId) => passkeys.hasPasskeys(userId),
    async verify(userId, proof, context): Promise<boolean> {
      // SECURITY: the assertion must answer a WebAuthn challenge issued for this user and this
      // second-factor challenge, with one of this user's passkeys (passkeys.authenticate).
      const result = await passkeys.authenticate(proof.response, {
        ip: context.ip,
        userAgent: context.userAgent,
        expect: { userId, bind: secondFactorBinding(context.challenge) },
      })
      return result.ok
    },
    options(userId, challenge) {
      return passkeys.secondFactorOptions(userId, secondFactorBinding(challenge))
    },
  }
}
