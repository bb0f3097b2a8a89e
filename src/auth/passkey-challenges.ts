import { createHash, randomBytes } from 'node:crypto'
import type { JSONValue, SessionRecord, SessionStore } from '../core/session-store.js'

/** How long a WebAuthn challenge can be answered: 5 minutes (API.md "Passkeys"). */
export const PASSKEY_CHALLENGE_TTL_SECONDS = 300

/** `data.kind` of the store record of an issued challenge. */
const CHALLENGE_KIND = 'webauthn-challenge'
/** `data.kind` once one answer took it: no other answer can. */
const CONSUMED_KIND = 'webauthn-challenge-consumed'
/** A challenge as the library makes and the browser returns it: 32 random bytes, base64url. */
const CHALLENGE_PATTERN = /^[A-Za-z0-9_-]{43}$/

/**
 * What a challenge was issued for: a passkey to register (for `userId`), a sign-in with any
 * discoverable passkey, or the second factor of a sign-in already past its first factor (for
 * `userId`, bound to the second-factor challenge `bind`).
 */
export type PasskeyChallengePurpose = 'registration' | 'authentication' | 'second_factor'

/** What an issued challenge is bound to, given back when it is consumed. */
export interface PasskeyChallengeBinding {
  purpose: PasskeyChallengePurpose
  /** The user it was issued to; absent for a usernameless sign-in. */
  userId?: string
  /** An opaque value the caller bound it to (the second-factor challenge it belongs to). */
  bind?: string
}

/** The single-use challenges of the WebAuthn ceremonies, in a {@link SessionStore}. */
export interface PasskeyChallenges {
  /** A fresh challenge (32 random bytes, base64url) bound to `binding`, stored for 5 minutes. */
  issue(binding: PasskeyChallengeBinding): Promise<string>
  /**
   * Takes the challenge for one use and returns what it was bound to, or `null` when it is
   * unknown, expired, already taken, or was issued for another purpose. Of concurrent callers on
   * every process sharing the store, at most one gets it.
   * @throws TesseraError `store_unavailable`
   */
  consume(
    challenge: string,
    purpose: PasskeyChallengePurpose,
  ): Promise<PasskeyChallengeBinding | null>
}

function recordId(challenge: string): string {
  return createHash('sha256').update(`webauthn-challenge:${challenge}`).digest('base64url')
}

/**
 * Challenges kept as records of the session store (without a user, so no session list ever
 * shows one), under the SHA-256 of the challenge: several processes sharing the store (Redis,
 * PostgreSQL, one SQLite file) accept an answer wherever the options were asked for.
 */
export function createPasskeyChallenges(
  store: SessionStore,
  options: { now?: () => number; ttlSeconds?: number } = {},
): PasskeyChallenges {
  const now = options.now ?? Date.now
  const ttl = (options.ttlSeconds ?? PASSKEY_CHALLENGE_TTL_SECONDS) * 1000

  return {
    async issue(binding): Promise<string> {
      const challenge = randomBytes(32).toString('base64url')
      const at = now()
      const data: Record<string, JSONValue> = { kind: CHALLENGE_KIND, purpose: binding.purpose }
      if (binding.userId !== undefined) data.userId = binding.userId
      if (binding.bind !== undefined) data.bind = binding.bind
      await store.create({
        id: recordId(challenge),
        userId: null,
        version: 1,
        createdAt: at,
        lastSeenAt: at,
        expiresAt: at + ttl,
        absoluteExpiresAt: at + ttl,
        data,
        meta: {},
      })
      return challenge
    },

    async consume(challenge, purpose): Promise<PasskeyChallengeBinding | null> {
      if (typeof challenge !== 'string' || !CHALLENGE_PATTERN.test(challenge)) return null
      const id = recordId(challenge)
      const record = await store.get(id)
      if (record === null || record.userId !== null || record.data.kind !== CHALLENGE_KIND) {
        return null
      }
      // SECURITY: a challenge lives 5 minutes, decided here from the record, not by store TTLs.
      if (now() >= Math.min(record.expiresAt, record.absoluteExpiresAt)) return null
      if (record.data.purpose !== purpose) return null
      const taken: SessionRecord = {
        ...record,
        version: record.version + 1,
        data: { ...record.data, kind: CONSUMED_KIND },
      }
      // SECURITY: single use across processes (API.md): the record changes kind only if nobody
      // wrote it since we read it, so of two answers to one challenge (a replay, or a race on
      // two processes) exactly one goes on; nothing else ever writes a challenge record, so a
      // lost compare-and-set means it was taken.
      if (!(await store.update(taken, record.version))) return null
      await store.delete(id)
      const binding: PasskeyChallengeBinding = { purpose }
      if (typeof record.data.userId === 'string') binding.userId = record.data.userId
      if (typeof record.data.bind === 'string') binding.bind = record.data.bind
      return binding
    },
  }
}
