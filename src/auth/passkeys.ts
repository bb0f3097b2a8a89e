import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransport,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server'
import { TesseraError } from '../core/errors.js'
import type { AuthMethod } from '../core/session-manager.js'
import type { SessionStore } from '../core/session-store.js'
import type { AuditLog, RequestContext } from './audit.js'
import type { TesseraDB } from './db/database.js'
import {
  PASSKEY_CHALLENGE_TTL_SECONDS,
  createPasskeyChallenges,
  type PasskeyChallengePurpose,
  type PasskeyChallenges,
} from './passkey-challenges.js'
import {
  createPasskeyCredentials,
  type Passkey,
  type PasskeyCredentials,
} from './passkey-credentials.js'
import { readAuthenticationResponse, readRegistrationResponse } from './passkey-input.js'
import { failure, type AuthFailure } from './results.js'

export type { Passkey } from './passkey-credentials.js'

/** Options of {@link createPasskeys}. */
export interface PasskeysOptions {
  /** The migrated accounts database (the `passkeys` table of migration 0007). */
  db: TesseraDB
  /**
   * Where challenges live for their 5 minutes: the session store, so every process sharing it
   * accepts an answer to a challenge another one issued.
   */
  store: SessionStore
  /**
   * The public URL of the site (`TESSERA_PUBLIC_URL`): its host is the relying party id and its
   * origin an expected origin. Never derived from a request's `Host`.
   */
  publicUrl: string
  /**
   * Every origin a ceremony may come from (`TESSERA_TRUSTED_ORIGINS`); the public URL's origin
   * is always one. Each must be the relying party id's host or a subdomain of it, or browsers
   * refuse to use the passkeys there.
   */
  origins?: readonly string[]
  /** The relying party name browsers show. @default the relying party id */
  rpName?: string
  audit: AuditLog
  /** @default Date.now */
  now?: () => number
}

/** The account a passkey is registered for. */
export interface PasskeyUser {
  id: string
  /** Shown by the authenticator as the account's name. */
  email: string
}

/** A verified assertion: who it proved, and what it proved. */
export interface PasskeyProof {
  ok: true
  userId: string
  passkey: Passkey
  /** The authenticator verified the user (PIN, biometrics). */
  userVerified: boolean
  /**
   * What to record on the session: with user verification a passkey is two factors on its own
   * (`aal: 2`, `amr: ['hwk' | 'swk', 'user', 'mfa']`), without it one (`aal: 1`, `['hwk' |
   * 'swk']`). `swk` is a synced (backed-up) passkey, `hwk` one bound to its device.
   */
  aal: 1 | 2
  amr: AuthMethod[]
}

/** Why a passkey ceremony was refused (one answer for every reason; the audit log says which). */
export type PasskeyRefusal = AuthFailure<'invalid_request' | 'invalid_credentials'>

/** Registration and authentication with passkeys (WebAuthn), and the user's list of them. */
export interface Passkeys {
  /** The relying party id (the public URL's host). */
  readonly rpId: string
  /** The origins client data may name. */
  readonly origins: readonly string[]
  /** The table of stored passkeys. */
  readonly credentials: PasskeyCredentials
  /** The single-use challenges. */
  readonly challenges: PasskeyChallenges
  /**
   * Creation options (JSON form) for a new discoverable passkey of `user`, excluding the ones
   * it has; the challenge is bound to the user.
   */
  registrationOptions(user: PasskeyUser): Promise<PublicKeyCredentialCreationOptionsJSON>
  /**
   * Verifies the browser's answer to {@link Passkeys.registrationOptions} and stores the
   * passkey. `invalid_request` for anything that does not verify: a malformed or replayed
   * answer, another origin, another user's challenge, a credential already registered.
   */
  register(
    userId: string,
    response: unknown,
    options?: { name?: string | undefined } & RequestContext,
  ): Promise<{ ok: true; passkey: Passkey } | PasskeyRefusal>
  /**
   * Request options for a sign-in with any discoverable passkey: no user, no credential list,
   * so every caller gets the same answer (but for the challenge); conditional UI ready.
   */
  authenticationOptions(): Promise<PublicKeyCredentialRequestOptionsJSON>
  /**
   * Request options for the second factor of `userId`: its passkeys as `allowCredentials`,
   * the challenge bound to the user and to `bind` (the second-factor challenge).
   */
  secondFactorOptions(userId: string, bind: string): Promise<PublicKeyCredentialRequestOptionsJSON>
  /**
   * Verifies an assertion: for a usernameless sign-in (`expect` absent), or the second factor of
   * `expect.userId` bound to `expect.bind`. The challenge is consumed first (it is single use
   * whatever follows); then the credential must exist (and be the expected user's), the user
   * handle match, origin, relying party and signature verify, and the sign counter move forward
   * (zero stays allowed). Every refusal is audited and answered `invalid_credentials`.
   */
  authenticate(
    response: unknown,
    context?: RequestContext & { expect?: { userId: string; bind: string } | undefined },
  ): Promise<PasskeyProof | PasskeyRefusal>
  /** The user's passkeys, oldest first. */
  list(userId: string): Promise<Passkey[]>
  /** Renames one of the user's passkeys (1 to 64 characters); false when it is not theirs. */
  rename(
    userId: string,
    id: string,
    name: string,
    context?: RequestContext & { actorId?: string },
  ): Promise<boolean>
  /**
   * Removes one of the user's passkeys, audited: false when it is not theirs, and
   * `'last_sign_in_method'` (audited as denied, nothing removed) when it is the account's only
   * way to sign in (no password, no identity, no other passkey).
   */
  remove(
    userId: string,
    id: string,
    context?: RequestContext & { actorId?: string },
  ): Promise<boolean | 'last_sign_in_method'>
  /** True when the user has at least one passkey (a second factor, API.md). */
  hasPasskeys(userId: string): Promise<boolean>
}

const NAME_MAX = 64
const DEFAULT_NAME = 'Passkey'
const REFUSED = 'the passkey could not be verified'

function relyingPartyOf(publicUrl: string): { rpId: string; origin: string } {
  let url: URL
  try {
    url = new URL(publicUrl)
  } catch (cause) {
    throw new TesseraError('config_invalid', 'passkeys: publicUrl must be an absolute URL', {
      cause,
    })
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TesseraError('config_invalid', 'passkeys: publicUrl must be http(s)')
  }
  return { rpId: url.hostname, origin: url.origin }
}

/** A passkey's name as the user typed it: trimmed, control characters removed, 1 to 64 long. */
export function cleanPasskeyName(name: unknown): string | null {
  if (typeof name !== 'string') return null
  // eslint-disable-next-line no-control-regex -- control characters are what is removed
  const cleaned = name.replace(/[\u0000-\u001f\u007f]/g, '').trim()
  if (cleaned.length === 0 || cleaned.length > NAME_MAX) return null
  return cleaned
}

function userHandleOf(userId: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(userId, 'utf8'))
}

function bytesOf(challenge: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(challenge, 'base64url'))
}

/** The challenge in a response's client data, read without trusting anything else in it. */
function challengeOf(clientDataJSON: string): string | null {
  try {
    const data: unknown = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8'))
    if (typeof data !== 'object' || data === null) return null
    const challenge = (data as { challenge?: unknown }).challenge
    return typeof challenge === 'string' ? challenge : null
  } catch {
    return null
  }
}

function isLibraryRefusal(error: unknown): boolean {
  // The library throws plain Errors for answers that do not verify; ours (a store that is down)
  // are TesseraErrors and pass through.
  return !(error instanceof TesseraError)
}

/**
 * Passkeys on `@simplewebauthn/server` (attestation, CBOR and signatures are the library's).
 *
 * @throws TesseraError `config_invalid` for a bad `publicUrl`
 * @example
 * ```ts
 * const passkeys = createPasskeys({ db, store, publicUrl: 'https://auth.example.com', audit })
 * const options = await passkeys.authenticationOptions()      // to the browser
 * const proof = await passkeys.authenticate(body.response, { ip, userAgent })
 * if (proof.ok) await auth.signIn.afterFirstFactor(proof.userId, proof, { ip, userAgent })
 * ```
 */
export function createPasskeys(options: PasskeysOptions): Passkeys {
  const { db, audit } = options
  const now = options.now ?? Date.now
  const { rpId, origin } = relyingPartyOf(options.publicUrl)
  const origins = [...new Set([origin, ...(options.origins ?? [])])]
  const rpName = options.rpName ?? rpId
  const credentials = createPasskeyCredentials(db, { now })
  const challenges = createPasskeyChallenges(options.store, { now })
  const timeout = PASSKEY_CHALLENGE_TTL_SECONDS * 1000

  async function refuse(
    context: RequestContext | undefined,
    userId: string | null,
    reason: string,
    extra: Record<string, string | number> = {},
    outcome: 'failure' | 'denied' = 'failure',
  ): Promise<PasskeyRefusal> {
    await audit.record({
      type: 'login',
      outcome,
      userId,
      ip: context?.ip,
      userAgent: context?.userAgent,
      detail: { method: 'webauthn', reason, ...extra },
    })
    return failure('invalid_credentials', REFUSED)
  }

  async function requestOptions(
    purpose: PasskeyChallengePurpose,
    allow: Passkey[] | undefined,
    binding: { userId?: string; bind?: string },
  ): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const challenge = await challenges.issue({ purpose, ...binding })
    return generateAuthenticationOptions({
      rpID: rpId,
      challenge: bytesOf(challenge),
      timeout,
      userVerification: 'preferred',
      ...(allow === undefined
        ? {}
        : {
            allowCredentials: allow.map((p) => ({
              id: p.credentialId,
              transports: p.transports as AuthenticatorTransport[],
            })),
          }),
    })
  }

  return {
    rpId,
    origins,
    credentials,
    challenges,

    async registrationOptions(user): Promise<PublicKeyCredentialCreationOptionsJSON> {
      const existing = await credentials.listByUser(user.id)
      const challenge = await challenges.issue({ purpose: 'registration', userId: user.id })
      return generateRegistrationOptions({
        rpName,
        rpID: rpId,
        userName: user.email,
        userDisplayName: user.email,
        // The user handle is the account id: no e-mail address (it changes) or secret in it.
        userID: userHandleOf(user.id),
        challenge: bytesOf(challenge),
        timeout,
        attestationType: 'none',
        excludeCredentials: existing.map((p) => ({ id: p.credentialId, transports: p.transports })),
        authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
      })
    },

    async register(
      userId,
      raw,
      context = {},
    ): Promise<{ ok: true; passkey: Passkey } | PasskeyRefusal> {
      const invalid = (message: string): PasskeyRefusal => failure('invalid_request', message)
      const name = context.name === undefined ? DEFAULT_NAME : cleanPasskeyName(context.name)
      if (name === null) return invalid(`name must be 1 to ${NAME_MAX} characters`)
      const response: RegistrationResponseJSON | null = readRegistrationResponse(raw)
      if (response === null) return invalid('response is not a WebAuthn registration response')
      const challenge = challengeOf(response.response.clientDataJSON)
      // SECURITY: the challenge is taken before anything is verified, so it is single use
      // whatever the outcome; one issued to another user registers nothing here.
      const binding =
        challenge === null ? null : await challenges.consume(challenge, 'registration')
      if (binding === null || binding.userId !== userId || challenge === null) {
        return invalid('the registration challenge is unknown, used, expired or not yours')
      }
      let verified
      try {
        verified = await verifyRegistrationResponse({
          response,
          expectedChallenge: challenge,
          // SECURITY: only our origins and relying party id (API.md), never the Host header.
          expectedOrigin: origins,
          expectedRPID: rpId,
          // A passkey without user verification is accepted, as one factor (API.md).
          requireUserVerification: false,
        })
      } catch (error) {
        if (!isLibraryRefusal(error)) throw error
        return invalid(REFUSED)
      }
      if (!verified.verified) return invalid(REFUSED)
      const info = verified.registrationInfo
      const stored = await credentials.insert({
        userId,
        credentialId: info.credential.id,
        publicKey: info.credential.publicKey,
        counter: info.credential.counter,
        transports: info.credential.transports ?? response.response.transports ?? [],
        deviceType: info.credentialDeviceType,
        backedUp: info.credentialBackedUp,
        aaguid: info.aaguid,
        name,
      })
      if (stored === null) return invalid('this passkey is already registered')
      await audit.record({
        type: 'passkey_added',
        outcome: 'success',
        userId,
        ip: context.ip,
        userAgent: context.userAgent,
        detail: { webauthnId: stored.id, deviceType: stored.deviceType, name: stored.name },
      })
      return { ok: true, passkey: stored }
    },

    authenticationOptions(): Promise<PublicKeyCredentialRequestOptionsJSON> {
      // SECURITY: nothing about any account in the answer (no allowCredentials): it cannot tell
      // which e-mails have passkeys.
      return requestOptions('authentication', undefined, {})
    },

    async secondFactorOptions(userId, bind): Promise<PublicKeyCredentialRequestOptionsJSON> {
      return requestOptions('second_factor', await credentials.listByUser(userId), {
        userId,
        bind,
      })
    },

    async authenticate(raw, context = {}): Promise<PasskeyProof | PasskeyRefusal> {
      const response: AuthenticationResponseJSON | null = readAuthenticationResponse(raw)
      if (response === null) {
        return failure('invalid_request', 'response is not a WebAuthn authentication response')
      }
      const expected = context.expect
      const challenge = challengeOf(response.response.clientDataJSON)
      const purpose: PasskeyChallengePurpose =
        expected === undefined ? 'authentication' : 'second_factor'
      // SECURITY: single use (API.md): taken before any check, so a replay of even a valid
      // assertion finds nothing.
      const binding = challenge === null ? null : await challenges.consume(challenge, purpose)
      if (binding === null || challenge === null) {
        return refuse(context, expected?.userId ?? null, 'challenge_invalid')
      }
      if (
        expected !== undefined &&
        (binding.userId !== expected.userId || binding.bind !== expected.bind)
      ) {
        return refuse(context, expected.userId, 'challenge_not_bound')
      }
      const passkey = await credentials.findByCredentialId(response.id)
      if (passkey === null) return refuse(context, expected?.userId ?? null, 'unknown_passkey')
      // SECURITY: a second factor must be one of the signed-in user's own passkeys, and a
      // discoverable credential's user handle must name the account the credential is stored
      // for (WebAuthn 7.2 steps 6-7).
      if (expected !== undefined && passkey.userId !== expected.userId) {
        return refuse(context, expected.userId, 'foreign_passkey')
      }
      const handle = response.response.userHandle
      if (handle !== undefined && handle !== Buffer.from(passkey.userId).toString('base64url')) {
        return refuse(context, passkey.userId, 'user_handle_mismatch')
      }
      let verified
      try {
        verified = await verifyAuthenticationResponse({
          response,
          expectedChallenge: challenge,
          expectedOrigin: [...origins],
          expectedRPID: rpId,
          // The counter is checked below, once the signature is known to be right, so that a
          // counter going backwards is evidence of a cloned authenticator, not of a forgery.
          credential: { id: passkey.credentialId, publicKey: passkey.publicKey, counter: 0 },
          requireUserVerification: false,
        })
      } catch (error) {
        if (!isLibraryRefusal(error)) throw error
        return refuse(context, passkey.userId, 'not_verified', { webauthnId: passkey.id })
      }
      if (!verified.verified) {
        return refuse(context, passkey.userId, 'bad_signature', { webauthnId: passkey.id })
      }
      const info = verified.authenticationInfo
      // SECURITY: a sign counter that does not move forward means two authenticators hold the
      // key (a clone, WebAuthn 6.1.1): refused and audited. Zero on both sides is an
      // authenticator that keeps no counter (synced passkeys) and stays allowed. The update is a
      // compare-and-set on the counter, so two assertions racing with one counter value cannot
      // both pass.
      const regressed = (stored: number): boolean =>
        (info.newCounter > 0 || stored > 0) && info.newCounter <= stored
      let stored = passkey.counter
      for (;;) {
        if (regressed(stored)) {
          return refuse(
            context,
            passkey.userId,
            'counter_regressed',
            { webauthnId: passkey.id, storedCounter: stored, receivedCounter: info.newCounter },
            'denied',
          )
        }
        const use = { counter: info.newCounter, backedUp: info.credentialBackedUp, at: now() }
        if (await credentials.recordUse(passkey.id, stored, use)) break
        const again = await credentials.findByCredentialId(passkey.credentialId)
        if (again === null) return refuse(context, passkey.userId, 'unknown_passkey')
        stored = again.counter
      }
      const key: AuthMethod = info.credentialBackedUp ? 'swk' : 'hwk'
      return {
        ok: true,
        userId: passkey.userId,
        passkey: {
          ...passkey,
          counter: info.newCounter,
          backedUp: info.credentialBackedUp,
          lastUsedAt: now(),
        },
        userVerified: info.userVerified,
        aal: info.userVerified ? 2 : 1,
        amr: info.userVerified ? [key, 'user', 'mfa'] : [key],
      }
    },

    list(userId): Promise<Passkey[]> {
      return credentials.listByUser(userId)
    },

    async rename(userId, id, name, context = {}): Promise<boolean> {
      const cleaned = cleanPasskeyName(name)
      if (cleaned === null) {
        throw new TesseraError('invalid_argument', `name must be 1 to ${NAME_MAX} characters`)
      }
      if (!(await credentials.rename(userId, id, cleaned))) return false
      await audit.record({
        type: 'passkey_renamed',
        outcome: 'success',
        userId,
        ip: context.ip,
        userAgent: context.userAgent,
        detail: {
          webauthnId: id,
          name: cleaned,
          ...(context.actorId === undefined ? {} : { actorId: context.actorId }),
        },
      })
      return true
    },

    async remove(userId, id, context = {}): Promise<boolean | 'last_sign_in_method'> {
      const removed = await credentials.remove(userId, id)
      if (removed === null) return false
      if (removed === 'last_sign_in_method') {
        await audit.record({
          type: 'passkey_removed',
          outcome: 'denied',
          userId,
          ip: context.ip,
          userAgent: context.userAgent,
          detail: {
            webauthnId: id,
            reason: 'last_sign_in_method',
            ...(context.actorId === undefined ? {} : { actorId: context.actorId }),
          },
        })
        return 'last_sign_in_method'
      }
      await audit.record({
        type: 'passkey_removed',
        outcome: 'success',
        userId,
        ip: context.ip,
        userAgent: context.userAgent,
        detail: {
          webauthnId: id,
          name: removed.name,
          ...(context.actorId === undefined ? {} : { actorId: context.actorId }),
        },
      })
      return true
    },

    async hasPasskeys(userId): Promise<boolean> {
      return (await credentials.countByUser(userId)) > 0
    },
  }
}
