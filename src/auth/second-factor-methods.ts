import { TesseraError } from '../core/errors.js'
import type { AuthMethod } from '../core/session-manager.js'
import type { RequestContext } from './audit.js'
import type { SecondFactorMethod } from './sign-in.js'

/*
 * The second-factor methods of a sign-in's second step and of a re-authentication, as one small
 * registry: TOTP and recovery codes (second-factors.ts) register here, passkeys (issue 14) add
 * a `passkey` method the same way. The second step (mfa-challenges.ts) and
 * `POST /auth/reauthenticate` only ever call the registry.
 */

/** What a client sent for a method: `code` (TOTP, recovery code) or `response` (WebAuthn). */
export interface SecondFactorProof {
  code?: unknown
  response?: unknown
}

/** Where a verification happens. */
export interface SecondFactorVerifyContext extends RequestContext {
  /**
   * The sign-in challenge the proof answers (its opaque value, as the client sent it), or
   * `null` for a re-authentication of a signed-in user. A passkey binds its WebAuthn challenge
   * to it (`POST /auth/mfa/passkey-options`).
   */
  challenge: string | null
}

/** One method: how to tell whether a user has it, and how to check a proof of it. */
export interface SecondFactorVerifier {
  readonly method: SecondFactorMethod
  /** RFC 8176 methods a success proves (`['otp']`, `['mca']`, `['hwk']`). */
  readonly amr: readonly AuthMethod[]
  /**
   * `true` for a factor of its own (TOTP, passkey); `false` for one that only stands in for
   * another (recovery codes): an account whose only method is not primary asks for nothing.
   */
  readonly primary: boolean
  /** Whether the user has this method, active. */
  enabled(userId: string): Promise<boolean>
  /**
   * Checks a proof, consuming what must be used once (a TOTP step, a recovery code) by
   * compare-and-set. `false` for a wrong or malformed proof: never throws on input.
   * @throws TesseraError `store_unavailable`
   */
  verify(
    userId: string,
    proof: SecondFactorProof,
    context: SecondFactorVerifyContext,
  ): Promise<boolean>
}

/** The methods of a deployment, looked up by name. */
export interface SecondFactorRegistry {
  /** The user's usable methods, primary first; `[]` unless at least one primary is active. */
  methodsOf(userId: string): Promise<SecondFactorMethod[]>
  /** The verifier of `method`, or `undefined` for a name the deployment does not know. */
  find(method: unknown): SecondFactorVerifier | undefined
  /**
   * Checks a proof for a method the user has: the methods it proved, or `null` (unknown method,
   * method not enabled for the user, wrong proof).
   */
  verify(
    userId: string,
    method: unknown,
    proof: SecondFactorProof,
    context: SecondFactorVerifyContext,
  ): Promise<{ method: SecondFactorMethod; amr: readonly AuthMethod[] } | null>
}

/**
 * Builds the registry over a list of methods; add one by passing it in the list (the server
 * does in `services.ts`).
 * @throws TesseraError `config_invalid` when a method is registered twice
 * @example
 * ```ts
 * const registry = createSecondFactorRegistry([...factors.verifiers, passkeyVerifier])
 * const auth = createAuthService(db, { ..., secondFactors: (user) => registry.methodsOf(user.id) })
 * ```
 */
export function createSecondFactorRegistry(
  verifiers: readonly SecondFactorVerifier[],
): SecondFactorRegistry {
  const byName = new Map<string, SecondFactorVerifier>()
  for (const verifier of verifiers) {
    if (byName.has(verifier.method)) {
      throw new TesseraError(
        'config_invalid',
        `createSecondFactorRegistry: the method ${verifier.method} is registered twice`,
      )
    }
    byName.set(verifier.method, verifier)
  }
  const ordered = [...verifiers].sort((a, b) => Number(b.primary) - Number(a.primary))

  return {
    async methodsOf(userId): Promise<SecondFactorMethod[]> {
      const enabled: SecondFactorVerifier[] = []
      for (const verifier of ordered) {
        // Primary methods come first: without one, the others are not even looked up (one
        // query for a password sign-in of an account without a factor).
        if (!verifier.primary && enabled.length === 0) break
        if (await verifier.enabled(userId)) enabled.push(verifier)
      }
      return enabled.map((verifier) => verifier.method)
    },
    find(method): SecondFactorVerifier | undefined {
      return typeof method === 'string' ? byName.get(method) : undefined
    },
    async verify(userId, method, proof, context) {
      const verifier = typeof method === 'string' ? byName.get(method) : undefined
      if (verifier === undefined) return null
      if (!(await verifier.enabled(userId))) return null
      if (!(await verifier.verify(userId, proof, context))) return null
      return { method: verifier.method, amr: verifier.amr }
    },
  }
}
