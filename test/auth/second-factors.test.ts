import { expect, it } from 'vitest'
import { createAuditLog } from '../../src/auth/audit.js'
import type { TesseraDB } from '../../src/auth/db/database.js'
import { createSecondFactorRegistry } from '../../src/auth/second-factor-methods.js'
import {
  createSecondFactors,
  RECOVERY_CODE_COUNT,
  TOTP_SEAL_PURPOSE,
  type SecondFactors,
} from '../../src/auth/second-factors.js'
import { totpCode } from '../../src/auth/totp.js'
import { createKeyring } from '../../src/core/keyring.js'
import { unsealValue } from '../../src/core/sealing.js'
import { describeEachDatabase } from '../helpers/databases.js'

const SECRET = 'mfa-test-secret-0123456789abcdefghijklmnop'
const T0 = 1_700_000_000_000

async function addUser(db: TesseraDB, id = 'u1'): Promise<{ id: string; email: string }> {
  await db
    .insertInto('users')
    .values({
      id,
      email: `${id}@example.com`,
      password_hash: null,
      is_admin: 0,
      is_active: 1,
      created_at: T0,
      last_login_at: null,
      password_changed_at: null,
    })
    .execute()
  return { id, email: `${id}@example.com` }
}

function build(db: TesseraDB, clock: { t: number }): SecondFactors {
  return createSecondFactors(db, {
    keyring: createKeyring(SECRET),
    audit: createAuditLog(db, { now: () => clock.t }),
    now: () => clock.t,
  })
}

async function enrolled(
  factors: SecondFactors,
  user: { id: string; email: string },
  clock: { t: number },
): Promise<{ secret: string; recoveryCodes: string[] }> {
  const started = await factors.startTOTP(user)
  if (!started.ok) throw new Error('enrolment refused')
  const confirmed = await factors.confirmTOTP(user.id, totpCode(started.secret, { now: clock.t }))
  if (!confirmed.ok) throw new Error('confirm refused')
  return { secret: started.secret, recoveryCodes: confirmed.recoveryCodes }
}

describeEachDatabase('second factors', (open) => {
  it('enrolment is pending until a code confirms it; the secret is stored sealed', async () => {
    const db = await open()
    const clock = { t: T0 }
    const factors = build(db, clock)
    const user = await addUser(db)
    const started = await factors.startTOTP(user)
    if (!started.ok) throw new Error('refused')
    expect(await factors.hasTOTP(user.id)).toBe(false)
    expect((await factors.status(user.id)).totp).toEqual({ enabled: false, createdAt: T0 })
    const row = await db.selectFrom('mfa_totp').selectAll().executeTakeFirstOrThrow()
    expect(row.secret_sealed).not.toContain(started.secret)
    // Its own keyring purpose: the general `seal` purpose does not open it.
    expect(unsealValue(createKeyring(SECRET), 'seal', row.secret_sealed)).toBeNull()
    expect(unsealValue(createKeyring(SECRET), TOTP_SEAL_PURPOSE, row.secret_sealed)?.value).toBe(
      started.secret,
    )
    // Pending: a code does not sign in with it.
    expect(await factors.verifyTOTP(user.id, totpCode(started.secret, { now: T0 }))).toBe(false)
    const wrong = await factors.confirmTOTP(user.id, '000000')
    expect(wrong.ok).toBe(false)
    const ok = await factors.confirmTOTP(user.id, totpCode(started.secret, { now: T0 }))
    if (!ok.ok) throw new Error('confirm refused')
    expect(ok.recoveryCodes).toHaveLength(RECOVERY_CODE_COUNT)
    expect(new Set(ok.recoveryCodes).size).toBe(RECOVERY_CODE_COUNT)
    expect(await factors.status(user.id)).toEqual({
      totp: { enabled: true, createdAt: T0 },
      recoveryCodes: { remaining: 10 },
    })
    // The confirming code's step is recorded: it does not work again.
    expect(await factors.verifyTOTP(user.id, totpCode(started.secret, { now: T0 }))).toBe(false)
    // A second enrolment while one is active is refused.
    expect((await factors.startTOTP(user)).ok).toBe(false)
    const events = await createAuditLog(db).list({ userId: user.id })
    expect(events.map((e) => e.type).sort()).toEqual(['mfa_enrolled', 'mfa_failed'])
  })

  it('refuses a replayed code and an older step; accepts the next step', async () => {
    const db = await open()
    const clock = { t: T0 }
    const factors = build(db, clock)
    const user = await addUser(db)
    const { secret } = await enrolled(factors, user, clock)
    clock.t = T0 + 60_000
    const code = totpCode(secret, { now: clock.t })
    expect(await factors.verifyTOTP(user.id, code)).toBe(true)
    expect(await factors.verifyTOTP(user.id, code)).toBe(false)
    // The previous step's code is within the window but older than the accepted one.
    expect(await factors.verifyTOTP(user.id, totpCode(secret, { now: clock.t - 30_000 }))).toBe(
      false,
    )
    expect(await factors.verifyTOTP(user.id, totpCode(secret, { now: clock.t + 30_000 }))).toBe(
      true,
    )
  })

  it('drift: -2..+2 steps with the injected clock, only ±1 accepted', async () => {
    for (const drift of [-2, -1, 0, 1, 2]) {
      const db = await open()
      const clock = { t: T0 }
      const factors = build(db, clock)
      const user = await addUser(db)
      const { secret } = await enrolled(factors, user, clock)
      clock.t = T0 + 10 * 30_000
      const code = totpCode(secret, { now: clock.t + drift * 30_000 })
      expect(await factors.verifyTOTP(user.id, code)).toBe(Math.abs(drift) <= 1)
    }
  })

  it('two racing requests with one TOTP code on two connections: exactly one wins', async () => {
    const [a, b] = await open.pair()
    const clock = { t: T0 }
    const fa = build(a, clock)
    const fb = build(b, clock)
    const user = await addUser(a)
    const { secret } = await enrolled(fa, user, clock)
    clock.t = T0 + 90_000
    const code = totpCode(secret, { now: clock.t })
    const results = await Promise.all([
      fa.verifyTOTP(user.id, code),
      fb.verifyTOTP(user.id, code),
      fa.verifyTOTP(user.id, code),
      fb.verifyTOTP(user.id, code),
    ])
    expect(results.filter(Boolean)).toHaveLength(1)
  })

  it('recovery codes: hashed, each once (parallel uses: one wins), a new set voids the old', async () => {
    const [a, b] = await open.pair()
    const clock = { t: T0 }
    const fa = build(a, clock)
    const fb = build(b, clock)
    const user = await addUser(a)
    const { recoveryCodes } = await enrolled(fa, user, clock)
    const rows = await a.selectFrom('mfa_recovery_codes').selectAll().execute()
    expect(rows).toHaveLength(10)
    for (const code of recoveryCodes) {
      expect(code).toMatch(/^[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}$/)
      expect(JSON.stringify(rows)).not.toContain(code.replace(/-/g, ''))
    }
    const first = recoveryCodes[0] as string
    const results = await Promise.all([
      fa.useRecoveryCode(user.id, first),
      fb.useRecoveryCode(user.id, first),
      fa.useRecoveryCode(user.id, first.toUpperCase()),
      fb.useRecoveryCode(user.id, first.replace(/-/g, ' ')),
    ])
    expect(results.filter(Boolean)).toHaveLength(1)
    expect(await fa.remainingRecoveryCodes(user.id)).toBe(9)
    // Another user's code is not this user's.
    const other = await addUser(a, 'u2')
    const second = recoveryCodes[1] as string
    expect(await fa.useRecoveryCode(other.id, second)).toBe(false)
    const fresh = await fa.regenerateRecoveryCodes(user.id)
    expect(await fa.useRecoveryCode(user.id, second)).toBe(false)
    expect(await fa.remainingRecoveryCodes(user.id)).toBe(10)
    expect(await fb.useRecoveryCode(user.id, fresh[0])).toBe(true)
    for (const bad of [null, 42, '', 'x'.repeat(10_000), 'zzzz-zzzz-zzzz-zzz!']) {
      expect(await fa.useRecoveryCode(user.id, bad)).toBe(false)
    }
    expect(await fa.remainingRecoveryCodes(user.id)).toBe(9)
  })

  it('the registry: recovery codes alone ask for nothing; reset removes everything, audited with the actor', async () => {
    const db = await open()
    const clock = { t: T0 }
    const factors = build(db, clock)
    const registry = createSecondFactorRegistry(factors.verifiers)
    const user = await addUser(db)
    expect(await registry.methodsOf(user.id)).toEqual([])
    const { secret } = await enrolled(factors, user, clock)
    expect(await registry.methodsOf(user.id)).toEqual(['totp', 'recovery_code'])
    clock.t += 30_000
    const code = totpCode(secret, { now: clock.t })
    expect(await registry.verify(user.id, 'passkey', { code }, { challenge: null })).toBeNull()
    expect(await registry.verify(user.id, 'totp', { code }, { challenge: null })).toEqual({
      method: 'totp',
      amr: ['otp'],
    })
    await factors.removeTOTP(user.id)
    // The recovery codes remain but stand in for no factor.
    expect(await registry.methodsOf(user.id)).toEqual([])
    await enrolled(factors, user, clock)
    const admin = await addUser(db, 'admin1')
    expect(await factors.reset(user.id, { actorId: admin.id })).toEqual({
      totp: true,
      recoveryCodes: 10,
    })
    expect(await factors.status(user.id)).toEqual({ totp: null, recoveryCodes: { remaining: 0 } })
    const reset = await createAuditLog(db).list({ userId: user.id, type: 'mfa_reset' })
    expect(reset[0]?.detail).toMatchObject({ actorId: admin.id, authenticator: true })
  })
})
