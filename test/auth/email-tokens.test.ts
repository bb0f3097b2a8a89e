import { createHash } from 'node:crypto'
import { expect, it } from 'vitest'
import { createAccounts } from '../../src/auth/accounts.js'
import type { TesseraDB } from '../../src/auth/db/database.js'
import {
  checkSignInCode,
  consumeEmailToken,
  issueEmailToken,
  issueSignInCode,
  MAX_CODE_ATTEMPTS,
} from '../../src/auth/email-tokens.js'
import { createTestSessions } from '../helpers/auth-fixtures.js'
import { describeEachDatabase } from '../helpers/databases.js'

const NOW = 1_700_000_000_000

async function user(db: TesseraDB, email = 'ada@example.com'): Promise<string> {
  const accounts = createAccounts(db, { sessions: createTestSessions(() => NOW) })
  return (await accounts.createUser({ email })).id
}

describeEachDatabase('mailed tokens and sign-in codes', (open) => {
  it('stores only hashes; a link works once, for its purpose, until it expires', async () => {
    const db = await open()
    const userId = await user(db)
    const token = await issueEmailToken(db, {
      userId,
      purpose: 'verify',
      email: 'ada@example.com',
      now: NOW,
      ttlSeconds: 60,
    })
    const rows = await db.selectFrom('email_tokens').selectAll().execute()
    expect(JSON.stringify(rows)).not.toContain(token)
    expect(rows[0]?.token_hash).toBe(createHash('sha256').update(token).digest('base64url'))
    expect(await consumeEmailToken(db, token, 'change', NOW)).toBeNull()
    expect(await consumeEmailToken(db, token, 'verify', NOW + 60_000)).toBeNull()
    const results = await Promise.all([
      consumeEmailToken(db, token, 'verify', NOW),
      consumeEmailToken(db, token, 'verify', NOW),
    ])
    expect(results.filter((r) => r !== null)).toEqual([{ userId, email: 'ada@example.com' }])
  })

  it('a code is 8 digits, stored hashed, and only the newest works', async () => {
    const db = await open()
    const userId = await user(db)
    const first = await issueSignInCode(db, {
      userId,
      email: 'ada@example.com',
      now: NOW,
      ttlSeconds: 600,
    })
    const second = await issueSignInCode(db, {
      userId,
      email: 'ada@example.com',
      now: NOW,
      ttlSeconds: 600,
    })
    expect(first).toMatch(/^\d{8}$/)
    const rows = await db.selectFrom('email_tokens').selectAll().execute()
    expect(JSON.stringify(rows)).not.toContain(`"${second}"`)
    if (first !== second) {
      expect(await checkSignInCode(db, userId, first, NOW)).toMatchObject({ ok: false })
    }
    expect(await checkSignInCode(db, userId, second, NOW)).toEqual({
      ok: true,
      email: 'ada@example.com',
    })
    expect(await checkSignInCode(db, userId, second, NOW)).toEqual({ ok: false, reason: 'no_code' })
  })

  it('SECURITY: at most 5 tries per code, even when the guesses arrive at once', async () => {
    const db = await open()
    const userId = await user(db)
    const code = await issueSignInCode(db, {
      userId,
      email: 'ada@example.com',
      now: NOW,
      ttlSeconds: 600,
    })
    const wrong = code === '00000000' ? '00000001' : '00000000'
    // 20 concurrent wrong guesses: each must first take one of the code's tries.
    const results = await Promise.all(
      Array.from({ length: 20 }, () => checkSignInCode(db, userId, wrong, NOW)),
    )
    expect(results.filter((r) => !r.ok && r.reason === 'wrong_code')).toHaveLength(
      MAX_CODE_ATTEMPTS,
    )
    // the right code no longer works: the code died with its fifth wrong try
    expect(await checkSignInCode(db, userId, code, NOW)).toEqual({ ok: false, reason: 'no_code' })
  })

  it('a code expires', async () => {
    const db = await open()
    const userId = await user(db)
    const code = await issueSignInCode(db, {
      userId,
      email: 'ada@example.com',
      now: NOW,
      ttlSeconds: 600,
    })
    expect(await checkSignInCode(db, userId, code, NOW + 600_000)).toEqual({
      ok: false,
      reason: 'no_code',
    })
  })
})
