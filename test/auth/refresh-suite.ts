import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createAccessTokens, type AccessTokens } from '../../src/auth/access-tokens.js'
import {
  createKeySet,
  createMemoryKeyStorage,
  type KeySet,
  createKeyringSealer,
} from '../../src/auth/keys.js'
import {
  createRefreshTokens,
  type RefreshReuseEvent,
  type RefreshTokenOptions,
  type RefreshTokens,
} from '../../src/auth/refresh-tokens.js'
import type { SessionStore } from '../../src/core/session-store.js'
import { testKeyring } from '../helpers/tokens.js'

const DAY = 24 * 3600 * 1000

/** A store for one test, and how to release it. */
export interface StoreHandle {
  store: SessionStore
  /** How many records the store holds (every kind, live or not). */
  records: () => Promise<number>
  close: () => Promise<void>
}

/**
 * The refresh-token behaviour every store must give: rotation, reuse detection, the parallel
 * race, grace, expiry and revocation. Runs against any SessionStore.
 */
export function refreshTokenSuite(
  name: string,
  open: (now: () => number) => Promise<StoreHandle>,
): void {
  describe(`refresh tokens on ${name}`, () => {
    let handle: StoreHandle
    let now: number
    let access: AccessTokens
    let keys: KeySet
    let reuses: RefreshReuseEvent[]
    let revokedSessions: string[]

    beforeEach(async () => {
      now = 1_800_000_000_000
      handle = await open(() => now)
      reuses = []
      revokedSessions = []
      keys = createKeySet({
        storage: createMemoryKeyStorage(),
        sealer: createKeyringSealer(testKeyring()),
        now: () => now,
      })
      await keys.load()
      access = createAccessTokens({
        keys,
        issuer: 'https://auth.test',
        audience: 'api',
        now: () => now,
      })
    })
    afterEach(async () => {
      await handle.close()
    })

    function make(options: Partial<RefreshTokenOptions> = {}): RefreshTokens {
      return createRefreshTokens({
        store: handle.store,
        accessTokens: access,
        now: () => now,
        onReuse: (event) => {
          reuses.push(event)
        },
        revokeSession: (sid) => {
          revokedSessions.push(sid)
          return Promise.resolve()
        },
        ...options,
      })
    }

    it('issues an opaque 32-byte token and an access token bound to the family', async () => {
      const refresh = make()
      const pair = await refresh.issue('user-1')
      expect(pair.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(Buffer.from(pair.refreshToken, 'base64url')).toHaveLength(32)
      expect(pair.tokenType).toBe('Bearer')
      const verified = await access.verify(pair.accessToken)
      expect(verified.ok && verified.claims.sid).toBe(pair.familyId)
      expect(verified.ok && verified.claims.sub).toBe('user-1')
      // SECURITY: only the hash is stored; the token itself is nowhere in the store.
      const records = await handle.store.listByUser('user-1')
      expect(JSON.stringify(records)).not.toContain(pair.refreshToken)
    })

    it('each use returns a new pair and retires the old token; reuse revokes the family', async () => {
      const refresh = make()
      const first = await refresh.issue('user-1', { sessionId: 'sess-1', meta: { ip: '10.0.0.1' } })
      now += 1000
      const second = await refresh.refresh(first.refreshToken)
      expect(second.ok).toBe(true)
      if (!second.ok) return
      expect(second.refreshToken).not.toBe(first.refreshToken)
      expect(second.familyId).toBe(first.familyId)
      expect(second.userId).toBe('user-1')
      const claims = await access.verify(second.accessToken)
      expect(claims.ok && claims.claims.sid).toBe('sess-1')

      now += 1000
      const third = await refresh.refresh(second.refreshToken)
      expect(third.ok).toBe(true)

      // The thief replays the first token: the whole family dies, the session too.
      expect(await refresh.refresh(first.refreshToken)).toEqual({
        ok: false,
        code: 'token_reused',
        reason: 'reused',
      })
      expect(reuses).toHaveLength(1)
      expect(reuses[0]).toMatchObject({
        familyId: first.familyId,
        userId: 'user-1',
        sessionId: 'sess-1',
      })
      expect(JSON.stringify(reuses)).not.toContain(first.refreshToken)
      expect(revokedSessions).toEqual(['sess-1'])
      if (third.ok) {
        expect(await refresh.refresh(third.refreshToken)).toEqual({
          ok: false,
          code: 'token_invalid',
          reason: 'revoked',
        })
      }
      expect(await refresh.isFamilyAlive(first.familyId)).toBe(false)
      // Presented again, it is still reported as reuse, and the hook is not called twice.
      expect(await refresh.refresh(first.refreshToken)).toMatchObject({ code: 'token_reused' })
      expect(reuses).toHaveLength(1)
    })

    it('storage is bounded by live families: one record per family, however often it refreshes', async () => {
      const refresh = make()
      const families = await Promise.all([refresh.issue('user-1'), refresh.issue('user-2')])
      for (const family of families) {
        let token = family.refreshToken
        for (let round = 0; round < 25; round += 1) {
          now += 15 * 60 * 1000
          const next = await refresh.refresh(token)
          if (!next.ok) throw new Error(`refresh ${round} failed`)
          token = next.refreshToken
        }
      }
      expect(await handle.records()).toBe(2)
    })

    it('reuse of any older token of a live family (not only the last) revokes it', async () => {
      const refresh = make()
      const first = await refresh.issue('user-1', { sessionId: 'sess-old' })
      const tokens = [first.refreshToken]
      for (let round = 0; round < 5; round += 1) {
        now += 1000
        const next = await refresh.refresh(tokens[tokens.length - 1] as string)
        if (!next.ok) throw new Error('refresh failed')
        tokens.push(next.refreshToken)
      }
      // The second token of six: four rotations old.
      expect(await refresh.refresh(tokens[1] as string)).toEqual({
        ok: false,
        code: 'token_reused',
        reason: 'reused',
      })
      expect(revokedSessions).toEqual(['sess-old'])
      expect(await refresh.refresh(tokens[5] as string)).toMatchObject({ code: 'token_invalid' })
      expect(await refresh.isFamilyAlive(first.familyId)).toBe(false)
    })

    it('a token of a generation the family never issued is refused and revokes nothing', async () => {
      const refresh = make()
      const pair = await refresh.issue('user-1')
      // Same handle (the first 12 bytes), a later generation, any secret: not a token of ours.
      const bytes = Buffer.from(pair.refreshToken, 'base64url')
      bytes.writeUInt32BE(7, 12)
      const forged = bytes.toString('base64url')
      expect(await refresh.refresh(forged)).toEqual({
        ok: false,
        code: 'token_invalid',
        reason: 'unknown',
      })
      expect(await refresh.revoke(forged)).toBeNull()
      expect(reuses).toHaveLength(0)
      expect((await refresh.refresh(pair.refreshToken)).ok).toBe(true)
    })

    it('ten parallel uses of one token produce exactly one successor', async () => {
      const refresh = make()
      const pair = await refresh.issue('user-1')
      const results = await Promise.all(
        Array.from({ length: 10 }, () => refresh.refresh(pair.refreshToken)),
      )
      const winners = results.filter((result) => result.ok)
      expect(winners).toHaveLength(1)
      for (const loser of results.filter((result) => !result.ok)) {
        expect(loser).toEqual({ ok: false, code: 'token_reused', reason: 'reused' })
      }
      // With no grace window the losers are indistinguishable from a thief: the family is revoked.
      expect(reuses).toHaveLength(1)
      const winner = winners[0]
      if (winner?.ok) {
        expect(await refresh.refresh(winner.refreshToken)).toMatchObject({
          ok: false,
          code: 'token_invalid',
        })
      }
    })

    it('ten parallel uses with a grace window: one rotation, the rest get branches, nobody is revoked', async () => {
      const refresh = make({ grace: 10 })
      const pair = await refresh.issue('user-1')
      const results = await Promise.all(
        Array.from({ length: 10 }, () => refresh.refresh(pair.refreshToken)),
      )
      const successes = results.filter((result) => result.ok)
      // One rotation plus at most 3 grace branches (4 live tokens at most), the rest are reuse.
      expect(successes.length).toBeGreaterThanOrEqual(1)
      expect(successes.length).toBeLessThanOrEqual(4)
      expect(new Set(successes.map((r) => (r.ok ? r.refreshToken : ''))).size).toBe(
        successes.length,
      )
    })

    it('a grace window tolerates one racing tab, and only for its duration', async () => {
      const refresh = make({ grace: 30 })
      const pair = await refresh.issue('user-1')
      const tabA = await refresh.refresh(pair.refreshToken)
      now += 29_999
      const tabB = await refresh.refresh(pair.refreshToken)
      expect(tabA.ok && tabB.ok).toBe(true)
      expect(reuses).toHaveLength(0)
      // Both branches keep working.
      if (tabA.ok && tabB.ok) {
        expect((await refresh.refresh(tabA.refreshToken)).ok).toBe(true)
        expect((await refresh.refresh(tabB.refreshToken)).ok).toBe(true)
      }
      const other = await refresh.issue('user-2')
      await refresh.refresh(other.refreshToken)
      now += 30_000
      expect(await refresh.refresh(other.refreshToken)).toMatchObject({ code: 'token_reused' })
    })

    it('idle expiry after 7 days without use, absolute after 30 days whatever happens', async () => {
      const refresh = make()
      const idle = await refresh.issue('user-1')
      now += 7 * DAY - 1
      const kept = await refresh.refresh(idle.refreshToken)
      expect(kept.ok).toBe(true)
      now += 7 * DAY
      if (kept.ok) {
        // 'expired', or 'revoked' from a store that hides expired records (memory, Redis).
        expect(await refresh.refresh(kept.refreshToken)).toMatchObject({
          ok: false,
          code: 'token_invalid',
        })
      }

      const busy = await refresh.issue('user-2')
      const start = now
      let token = busy.refreshToken
      while (now + 6 * DAY < start + 30 * DAY) {
        now += 6 * DAY
        const next = await refresh.refresh(token)
        expect(next.ok).toBe(true)
        if (next.ok) token = next.refreshToken
      }
      now = start + 30 * DAY
      expect(await refresh.refresh(token)).toMatchObject({ ok: false, code: 'token_invalid' })
    })

    it('revoke by token ends the family; unknown and malformed tokens are fine (RFC 7009)', async () => {
      const refresh = make()
      const pair = await refresh.issue('user-1', { sessionId: 'session-of-user-1' })
      const next = await refresh.refresh(pair.refreshToken)
      if (!next.ok) throw new Error('refresh failed')
      // It says which session the family was bound to, so the caller can end it (RFC 7009 2.1).
      expect(await refresh.revoke(next.refreshToken)).toEqual({
        userId: 'user-1',
        sessionId: 'session-of-user-1',
      })
      expect(await refresh.refresh(next.refreshToken)).toMatchObject({
        ok: false,
        code: 'token_invalid',
      })
      expect(await refresh.isFamilyAlive(pair.familyId)).toBe(false)
      await expect(refresh.revoke('A'.repeat(43))).resolves.toBeNull()
      await expect(refresh.revoke('not a token')).resolves.toBeNull()
      await expect(refresh.revoke(42 as unknown as string)).resolves.toBeNull()
      expect(reuses).toHaveLength(0)
    })

    it('revokeFamily by id; strict-mode access tokens die with their family', async () => {
      const refresh = make()
      const strict = createAccessTokens({
        keys,
        issuer: 'https://auth.test',
        audience: 'api',
        now: () => now,
        isSessionAlive: (sid) => refresh.isFamilyAlive(sid),
      })
      const pair = await refresh.issue('user-1')
      expect((await strict.verify(pair.accessToken)).ok).toBe(true)
      expect(await refresh.isFamilyAlive(pair.familyId)).toBe(true)
      await refresh.revokeFamily(pair.familyId)
      expect(await refresh.isFamilyAlive(pair.familyId)).toBe(false)
      expect(await strict.verify(pair.accessToken)).toMatchObject({ reason: 'session_revoked' })
      expect(await refresh.refresh(pair.refreshToken)).toMatchObject({
        ok: false,
        code: 'token_invalid',
      })
    })

    it('unknown, malformed and non-string tokens are token_invalid, never thrown', async () => {
      const refresh = make()
      for (const token of ['A'.repeat(43), 'short', '', 'A'.repeat(44), null, 7]) {
        expect(await refresh.refresh(token as string)).toMatchObject({
          ok: false,
          code: 'token_invalid',
        })
      }
    })
  })
}
