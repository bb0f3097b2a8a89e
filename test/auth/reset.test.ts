import { expect, it } from 'vitest'
import {
  consumeResetToken,
  hashResetToken,
  isResetTokenShape,
  issueResetToken,
  peekResetToken,
  pruneResetTokens,
} from '../../src/auth/reset.js'
import type { TesseraDB } from '../../src/auth/db/database.js'
import { describeEachDatabase, openPostgres } from '../helpers/databases.js'
import { describeWithService } from '../helpers/services.js'

const NOW = 1_700_000_000_000

async function user(db: TesseraDB, id = 'u1', active = 1): Promise<string> {
  await db
    .insertInto('users')
    .values({
      id,
      email: `${id}@x.io`,
      password_hash: 'old',
      is_active: active,
      created_at: NOW,
      last_login_at: null,
      password_changed_at: NOW,
    })
    .execute()
  return id
}

describeEachDatabase('reset tokens', (open) => {
  it('stores only SHA-256 of a 32-byte token', async () => {
    const db = await open()
    const token = await issueResetToken(db, await user(db), { now: NOW, ttlSeconds: 1800 })
    expect(isResetTokenShape(token)).toBe(true)
    expect(Buffer.from(token, 'base64url')).toHaveLength(32)
    const rows = await db.selectFrom('password_reset_tokens').selectAll().execute()
    expect(rows.map((r) => r.token_hash)).toEqual([hashResetToken(token)])
    expect(await peekResetToken(db, token, NOW)).toBe('u1')
    expect(await peekResetToken(db, token, NOW + 1800 * 1000)).toBeNull()
  })

  it('a consumed token voids the other tokens of the user, not those of others', async () => {
    const db = await open()
    const first = await issueResetToken(db, await user(db), { now: NOW, ttlSeconds: 1800 })
    const second = await issueResetToken(db, 'u1', { now: NOW, ttlSeconds: 1800 })
    const others = await issueResetToken(db, await user(db, 'u2'), { now: NOW, ttlSeconds: 1800 })
    expect(await consumeResetToken(db, second, 'new', NOW)).toBe('u1')
    expect(await consumeResetToken(db, first, 'newer', NOW)).toBeNull()
    expect(await consumeResetToken(db, others, 'theirs', NOW)).toBe('u2')
  })

  it('refuses a token of a disabled user and malformed tokens', async () => {
    const db = await open()
    const token = await issueResetToken(db, await user(db, 'u3', 0), { now: NOW, ttlSeconds: 1800 })
    expect(await peekResetToken(db, token, NOW)).toBeNull()
    expect(await consumeResetToken(db, token, 'new', NOW)).toBeNull()
    const row = await db.selectFrom('users').select('password_hash').executeTakeFirstOrThrow()
    expect(row.password_hash).toBe('old')
    for (const bad of ['', 'short', `${token}x`, token.replace(/./, '!')]) {
      expect(await peekResetToken(db, bad, NOW)).toBeNull()
      expect(await consumeResetToken(db, bad, 'new', NOW)).toBeNull()
    }
  })

  it('prunes expired and used tokens', async () => {
    const db = await open()
    await user(db)
    const live = await issueResetToken(db, 'u1', { now: NOW, ttlSeconds: 1800 })
    await issueResetToken(db, 'u1', { now: NOW - 3_600_000, ttlSeconds: 1800 })
    expect(await pruneResetTokens(db, NOW)).toBe(1)
    expect(await peekResetToken(db, live, NOW)).toBe('u1')
  })
})

// Two pools on one schema, as two server processes would have. (On SQLite, two connections in
// one process cannot show this: better-sqlite3 waits for a lock synchronously, blocking the very
// event loop that would release it; one process uses one connection, serialised by Kysely, which
// the service suite's concurrency case covers.)
describeWithService('postgres', 'reset tokens across connections [postgres]', (url) => {
  it('two connections (as two processes) consuming one token at once: exactly one wins', async () => {
    const [a, b] = await openPostgres(url).pair()
    const token = await issueResetToken(a, await user(a), { now: NOW, ttlSeconds: 1800 })
    for (let round = 0; round < 3; round += 1) {
      const fresh =
        round === 0 ? token : await issueResetToken(a, 'u1', { now: NOW, ttlSeconds: 1800 })
      const results = await Promise.all([
        consumeResetToken(a, fresh, `hash-a-${round}`, NOW + 1),
        consumeResetToken(b, fresh, `hash-b-${round}`, NOW + 1),
        consumeResetToken(a, fresh, `hash-c-${round}`, NOW + 1),
        consumeResetToken(b, fresh, `hash-d-${round}`, NOW + 1),
      ])
      expect(results.filter((r) => r === 'u1')).toHaveLength(1)
      expect(results.filter((r) => r === null)).toHaveLength(3)
      const stored = await b
        .selectFrom('users')
        .select('password_hash')
        .where('id', '=', 'u1')
        .executeTakeFirstOrThrow()
      const winner = ['a', 'b', 'c', 'd'][results.indexOf('u1')] ?? ''
      expect(stored.password_hash).toBe(`hash-${winner}-${round}`)
    }
  })
})
