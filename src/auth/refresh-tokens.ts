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
/** Live branches a grace window may open before a reuse counts as theft anyway. */
const MAX_LIVE = 4
const MAX_ATTEMPTS = 8

function hash(value: string): string {
  return createHash('sha256').update(value).digest('base64url')
}

function familyRecordId(familyId: string): string {
  return hash(`refresh-family:${familyId}`)
}

function isFamily(record: SessionRecord | null): record is SessionRecord & { data: FamilyData } {
  return record !== null && record.data.kind === 'refresh-family' && Array.isArray(record.data.live)
}

/**
 * Creates rotating refresh tokens over any {@link SessionStore}: opaque 32-byte tokens stored as
 * SHA-256 hashes, grouped in families; each refresh retires the old token with a compare-and-set
 * on the family record, and a retired token presented again revokes the family.
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

  async function storeToken(
    token: string,
    family: SessionRecord & { data: FamilyData },
    at: number,
  ): Promise<void> {
    await store.create({
      id: hash(token),
      userId: null,
      version: 0,
      createdAt: at,
      lastSeenAt: at,
      // Kept until the family's absolute end, so a retired token is still recognised.
      expiresAt: family.absoluteExpiresAt,
      absoluteExpiresAt: family.absoluteExpiresAt,
      data: { kind: 'refresh-token', family: family.id },
      meta: {},
    })
  }

  async function findFamily(
    token: string,
  ): Promise<{ tokenHash: string; familyId: string | null } | null> {
    if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) return null
    const tokenHash = hash(token)
    const record = await store.get(tokenHash)
    if (record === null || record.data.kind !== 'refresh-token')
      return { tokenHash, familyId: null }
    const family = record.data.family
    return { tokenHash, familyId: typeof family === 'string' ? family : null }
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
      const familyId = randomBytes(16).toString('base64url')
      const token = randomBytes(32).toString('base64url')
      const data: FamilyData = {
        kind: 'refresh-family',
        familyId,
        sessionId: issueOptions.sessionId ?? null,
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
      await store.create(family)
      await storeToken(token, family, at)
      return pairFor(family, token)
    },

    async refresh(token, refreshOptions = {}): Promise<RefreshResult> {
      const found = await findFamily(token)
      if (found === null) return { ok: false, code: 'token_invalid', reason: 'malformed' }
      if (found.familyId === null) return { ok: false, code: 'token_invalid', reason: 'unknown' }
      const { tokenHash } = found
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
        const family = await store.get(found.familyId)
        if (!isFamily(family) || family.userId === null) {
          return { ok: false, code: 'token_invalid', reason: 'revoked' }
        }
        const data = family.data
        const isLive = data.live.includes(tokenHash)
        if (data.revoked !== null) {
          return isLive || data.revoked === 'revoked'
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
          const successor = randomBytes(32).toString('base64url')
          const live = isLive ? data.live.filter((entry) => entry !== tokenHash) : [...data.live]
          live.push(hash(successor))
          const next = {
            ...family,
            version: family.version + 1,
            lastSeenAt: at,
            expiresAt: Math.min(at + idle * 1000, family.absoluteExpiresAt),
            data: {
              ...data,
              live,
              lastRetired: isLive ? tokenHash : data.lastRetired,
              lastRetiredAt: isLive ? at : data.lastRetiredAt,
            },
            meta: refreshOptions.meta ?? family.meta,
          }
          // SECURITY: one compare-and-set retires the old token and installs its successor:
          // of any number of concurrent refreshes exactly one wins (RFC 9700 4.14.2).
          if (!(await store.update(next, family.version))) continue
          await storeToken(successor, next, at)
          const pair = await pairFor(next, successor)
          return { ok: true, userId: family.userId, ...pair }
        }

        // SECURITY: a retired token came back: someone holds a copy. Revoke the whole family
        // and its session (RFC 9700 4.14.2, refresh token rotation with reuse detection).
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
      const found = await findFamily(token)
      if (found === null) return null
      let revoked: { userId: string; sessionId: string | null } | null = null
      if (found.familyId !== null) {
        const family = await store.get(found.familyId)
        if (isFamily(family) && family.userId !== null) {
          revoked = { userId: family.userId, sessionId: family.data.sessionId }
        }
        await revokeById(found.familyId)
      }
      await store.delete(found.tokenHash)
      return revoked
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
