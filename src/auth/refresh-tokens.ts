import { createHash, randomBytes } from 'node:crypto'
import { TesseraError } from '../core/errors.js'
import type { JSONValue, SessionMeta, SessionRecord, SessionStore } from '../core/session-store.js'
import type { AccessTokens } from './access-tokens.js'

/** A new access + refresh token pair. */
export interface TokenPair {
  accessToken: string
  tokenType: 'Bearer'
  /** Access-token lifetime in seconds. */
  expiresIn: number
  refreshToken: string
  /** The family the refresh token belongs to (also the access token's `sid` by default). */
  familyId: string
}

/** Why a refresh token was refused. */
export type RefreshRejection = 'unknown' | 'malformed' | 'expired' | 'revoked' | 'reused'

/** The outcome of {@link RefreshTokens.refresh}: never an exception for a bad token. */
export type RefreshResult =
  | ({ ok: true; userId: string } & TokenPair)
  | { ok: false; code: 'token_invalid'; reason: Exclude<RefreshRejection, 'reused'> }
  | { ok: false; code: 'token_reused'; reason: 'reused' }

/** What the reuse hook is told. Never contains a token or hash. */
export interface RefreshReuseEvent {
  familyId: string
  userId: string
  /** The session the family belonged to, if it was bound to one. */
  sessionId: string | null
  /** Epoch milliseconds. */
  at: number
  meta: SessionMeta
}

/** Options of {@link createRefreshTokens}. */
export interface RefreshTokenOptions {
  /**
   * Where families and tokens live. Use a store instance of its own (its own table or key
   * prefix), so refresh families do not appear among a user's browser sessions.
   */
  store: SessionStore
  /** Issues the access token of each pair. */
  accessTokens: AccessTokens
  /** A family dies after this many seconds without a refresh. @default 604800 (7 days) */
  idle?: number
  /** A family dies this many seconds after it was issued, whatever happens. @default 2592000 (30 days) */
  absolute?: number
  /**
   * Seconds during which the token just rotated away may be used once more without counting as
   * theft (two tabs racing). Each such use starts a parallel branch of the family. @default 0
   */
  grace?: number
  /**
   * Called when a retired token comes back: the family is already revoked when it runs. Write
   * the audit event here.
   */
  onReuse?: (event: RefreshReuseEvent) => void | Promise<void>
  /** Revokes the session a family was bound to (`sessionId` at issue), on reuse. */
  revokeSession?: (sessionId: string) => Promise<void>
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number
}

/** Rotating refresh tokens with reuse detection. */
export interface RefreshTokens {
  /** Starts a family for `userId` and returns its first pair. */
  issue(
    userId: string,
    options?: { sessionId?: string; claims?: Record<string, JSONValue>; meta?: SessionMeta },
  ): Promise<TokenPair>
  /** Trades a refresh token for a new pair, retiring it in one compare-and-set. */
  refresh(token: string, options?: { meta?: SessionMeta }): Promise<RefreshResult>
  /**
   * Revokes the token's family (RFC 7009: an unknown or malformed token is not an error).
   * Resolves to the family's user and bound session, so the caller can end that session too
   * (RFC 7009 section 2.1's SHOULD), or `null` when no live family was found.
   */
  revoke(token: string): Promise<{ userId: string; sessionId: string | null } | null>
  /** Revokes a family by id. */
  revokeFamily(familyId: string): Promise<void>
  /** True while the family can still refresh: the strict-mode check for `sid`. */
  isFamilyAlive(familyId: string): Promise<boolean>
}

interface FamilyData {
  [key: string]: JSONValue
  kind: 'refresh-family'
  familyId: string
  sessionId: string | null
  /** The generation of the newest token issued (the first token is generation 0). */
  generation: number
  /** Hashes of the tokens that may refresh now (one, or a few within a grace window). */
  live: string[]
  /** Hash of the most recently retired token and when it was retired. */
  lastRetired: string | null
  lastRetiredAt: number
  revoked: null | 'reuse' | 'revoked'
  claims: { [key: string]: JSONValue }
}

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/
const FAMILY_ID_PATTERN = /^[A-Za-z0-9_-]{22}$/
/**
 * A token is 32 bytes, base64url: the family's handle (12 random bytes, the same in every token
 * of the family), the token's generation (4 bytes, big-endian) and a secret (16 random bytes).
 * The store keeps one record per family: the hashes of its live tokens and the newest
 * generation. A token of the family that is not live and whose generation was issued is an
 * older one: reuse. The handle is in no record (the family id is its hash), so only someone who
 * held a token of the family can present one.
 */
const HANDLE_BYTES = 12
const GENERATION_BYTES = 4
const SECRET_BYTES = 16
const MAX_GENERATION = 0xffff_ffff
/** Live branches a grace window may open before a reuse counts as theft anyway. */
const MAX_LIVE = 4
const MAX_ATTEMPTS = 8

function hash(value: string): string {
  return createHash('sha256').update(value).digest('base64url')
}

function familyRecordId(familyId: string): string {
  return hash(`refresh-family:${familyId}`)
}

/** The public id of the family a handle names: a hash, so it reveals no token part. */
function familyIdOf(handle: Buffer): string {
  return createHash('sha256')
    .update('refresh-family-handle:')
    .update(handle)
    .digest()
    .subarray(0, 16)
    .toString('base64url')
}

function makeToken(handle: Buffer, generation: number): string {
  const token = Buffer.alloc(HANDLE_BYTES + GENERATION_BYTES + SECRET_BYTES)
  handle.copy(token, 0)
  token.writeUInt32BE(generation, HANDLE_BYTES)
  randomBytes(SECRET_BYTES).copy(token, HANDLE_BYTES + GENERATION_BYTES)
  return token.toString('base64url')
}

interface ParsedToken {
  handle: Buffer
  generation: number
  /** Hash of the whole token, as the family record keeps it. */
  tokenHash: string
  /** The family's record in the store. */
  recordId: string
}

function parseToken(token: unknown): ParsedToken | null {
  if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) return null
  const bytes = Buffer.from(token, 'base64url')
  const handle = bytes.subarray(0, HANDLE_BYTES)
  return {
    handle,
    generation: bytes.readUInt32BE(HANDLE_BYTES),
    tokenHash: hash(token),
    recordId: familyRecordId(familyIdOf(handle)),
  }
}

function isFamily(record: SessionRecord | null): record is SessionRecord & { data: FamilyData } {
  return (
    record !== null &&
    record.data.kind === 'refresh-family' &&
    Array.isArray(record.data.live) &&
    typeof record.data.generation === 'number'
  )
}

/**
 * Creates rotating refresh tokens over any {@link SessionStore}: opaque 32-byte tokens stored as
 * SHA-256 hashes, grouped in families; each refresh retires the old token with a compare-and-set
 * on the family record, and a retired token presented again revokes the family. The store holds
 * one record per family, however often it refreshes: each token carries its family's handle and
 * its generation, so any older token of a live family is recognised as reuse without a record
 * of its own.
 *
 * @throws TesseraError `config_invalid` for non-positive lifetimes or a negative grace
 * @example
 * ```ts
 * const refresh = createRefreshTokens({ store, accessTokens, onReuse: (e) => audit.write(e) })
 * const pair = await refresh.issue(user.id)
 * const next = await refresh.refresh(pair.refreshToken)
 * if (!next.ok && next.code === 'token_reused') reply(401, 'token_reused')
 * ```
 */
export function createRefreshTokens(options: RefreshTokenOptions): RefreshTokens {
  const { store, accessTokens, onReuse, revokeSession } = options
  const idle = options.idle ?? 7 * 24 * 3600
  const absolute = options.absolute ?? 30 * 24 * 3600
  const grace = options.grace ?? 0
  if (!(idle > 0) || !(absolute > 0)) {
    throw new TesseraError('config_invalid', 'idle and absolute must be positive seconds')
  }
  if (!(grace >= 0) || grace > idle) {
    throw new TesseraError('config_invalid', 'grace must be 0 or more seconds, under idle')
  }
  const now = options.now ?? Date.now

  async function pairFor(
    family: SessionRecord & { data: FamilyData },
    refreshToken: string,
  ): Promise<TokenPair> {
    const sid = family.data.sessionId ?? family.data.familyId
    const access = await accessTokens.issue(family.userId as string, sid, {
      claims: family.data.claims,
    })
    return {
      accessToken: access.token,
      tokenType: 'Bearer',
      expiresIn: access.expiresIn,
      refreshToken,
      familyId: family.data.familyId,
    }
  }

  async function revokeById(recordId: string): Promise<void> {
    await store.delete(recordId)
  }

  return {
    async issue(userId, issueOptions = {}): Promise<TokenPair> {
      if (typeof userId !== 'string' || userId.length === 0) {
        throw new TesseraError('invalid_argument', 'issue: userId must be a non-empty string')
      }
      const at = now()
      const handle = randomBytes(HANDLE_BYTES)
      const familyId = familyIdOf(handle)
      const token = makeToken(handle, 0)
      const data: FamilyData = {
        kind: 'refresh-family',
        familyId,
        sessionId: issueOptions.sessionId ?? null,
        generation: 0,
        live: [hash(token)],
        lastRetired: null,
        lastRetiredAt: 0,
        revoked: null,
        claims: issueOptions.claims ?? {},
      }
      const family = {
        id: familyRecordId(familyId),
        userId,
        version: 0,
        createdAt: at,
        lastSeenAt: at,
        expiresAt: at + Math.min(idle, absolute) * 1000,
        absoluteExpiresAt: at + absolute * 1000,
        data,
        meta: issueOptions.meta ?? {},
      }
      // SECURITY: one record per family, holding only hashes; the token is nowhere in the store.
      await store.create(family)
      return pairFor(family, token)
    },

    async refresh(token, refreshOptions = {}): Promise<RefreshResult> {
      const parsed = parseToken(token)
      if (parsed === null) return { ok: false, code: 'token_invalid', reason: 'malformed' }
      const { tokenHash } = parsed
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
        const family = await store.get(parsed.recordId)
        if (!isFamily(family) || family.userId === null) {
          return { ok: false, code: 'token_invalid', reason: 'unknown' }
        }
        const data = family.data
        const isLive = data.live.includes(tokenHash)
        // A generation never issued is no token of ours (a forgery by someone who knows the
        // handle): refused, and it revokes nothing.
        const issued = parsed.generation <= data.generation
        if (data.revoked !== null) {
          return isLive || !issued || data.revoked === 'revoked'
            ? { ok: false, code: 'token_invalid', reason: 'revoked' }
            : { ok: false, code: 'token_reused', reason: 'reused' }
        }
        const at = now()
        if (at >= family.expiresAt || at >= family.absoluteExpiresAt) {
          return { ok: false, code: 'token_invalid', reason: 'expired' }
        }
        const inGrace =
          !isLive &&
          grace > 0 &&
          data.lastRetired === tokenHash &&
          at < data.lastRetiredAt + grace * 1000 &&
          data.live.length < MAX_LIVE

        if (isLive || inGrace) {
          if (data.generation >= MAX_GENERATION) {
            return { ok: false, code: 'token_invalid', reason: 'expired' }
          }
          const successor = makeToken(parsed.handle, data.generation + 1)
          const live = isLive ? data.live.filter((entry) => entry !== tokenHash) : [...data.live]
          live.push(hash(successor))
          const next = {
            ...family,
            version: family.version + 1,
            lastSeenAt: at,
            expiresAt: Math.min(at + idle * 1000, family.absoluteExpiresAt),
            data: {
              ...data,
              generation: data.generation + 1,
              live,
              lastRetired: isLive ? tokenHash : data.lastRetired,
              lastRetiredAt: isLive ? at : data.lastRetiredAt,
            },
            meta: refreshOptions.meta ?? family.meta,
          }
          // SECURITY: one compare-and-set retires the old token and installs its successor:
          // of any number of concurrent refreshes exactly one wins (RFC 9700 4.14.2).
          if (!(await store.update(next, family.version))) continue
          const pair = await pairFor(next, successor)
          return { ok: true, userId: family.userId, ...pair }
        }

        if (!issued) return { ok: false, code: 'token_invalid', reason: 'unknown' }
        // SECURITY: a retired token came back (any older generation, not only the last): someone
        // holds a copy. Revoke the whole family and its session (RFC 9700 4.14.2, refresh token
        // rotation with reuse detection).
        const revoked = {
          ...family,
          version: family.version + 1,
          data: { ...data, revoked: 'reuse' as const },
        }
        if (!(await store.update(revoked, family.version))) continue
        if (data.sessionId !== null && revokeSession !== undefined) {
          await revokeSession(data.sessionId)
        }
        if (onReuse !== undefined) {
          await onReuse({
            familyId: data.familyId,
            userId: family.userId,
            sessionId: data.sessionId,
            at,
            meta: refreshOptions.meta ?? {},
          })
        }
        return { ok: false, code: 'token_reused', reason: 'reused' }
      }
      throw new TesseraError('store_conflict', 'refresh: the family kept changing under us')
    },

    async revoke(token): Promise<{ userId: string; sessionId: string | null } | null> {
      const parsed = parseToken(token)
      if (parsed === null) return null
      const family = await store.get(parsed.recordId)
      // Only a token the family issued may revoke it (a guess at the handle's generation
      // space is no token of ours).
      if (!isFamily(family) || family.userId === null) return null
      if (parsed.generation > family.data.generation) return null
      await revokeById(parsed.recordId)
      return { userId: family.userId, sessionId: family.data.sessionId }
    },

    async revokeFamily(familyId): Promise<void> {
      if (typeof familyId !== 'string' || !FAMILY_ID_PATTERN.test(familyId)) return
      await revokeById(familyRecordId(familyId))
    },

    async isFamilyAlive(familyId): Promise<boolean> {
      if (typeof familyId !== 'string' || !FAMILY_ID_PATTERN.test(familyId)) return false
      const family = await store.get(familyRecordId(familyId))
      if (!isFamily(family) || family.data.revoked !== null) return false
      const at = now()
      return at < family.expiresAt && at < family.absoluteExpiresAt
    },
  }
}
