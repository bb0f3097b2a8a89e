import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it, onTestFinished } from 'vitest'
import { createAuditLog } from '../../src/auth/audit.js'
import { createFileOutboxMailer } from '../../src/auth/mailer.js'
import {
  createPasskeySecondFactor,
  secondFactorBinding,
} from '../../src/auth/passkey-second-factor.js'
import { createPasskeys } from '../../src/auth/passkeys.js'
import { createAuthService } from '../../src/auth/service.js'
import { createMemoryStore } from '../../src/stores/memory.js'
import { createTestHasher, createTestSessions } from '../helpers/auth-fixtures.js'
import { describeEachDatabase } from '../helpers/databases.js'
import { createCredential, getAssertion } from '../helpers/webauthn.js'

const ORIGIN = 'https://auth.example.com'
const PASSWORD = 'correct horse battery staple'

describeEachDatabase('a passkey as second factor', (open) => {
  it('after a password: bound to the user and the sign-in challenge; the session is aal 2 with pwd and hwk', async () => {
    const db = await open()
    const now = (): number => 1_800_000_000_000
    const outbox = mkdtempSync(join(tmpdir(), 'tessera-outbox-'))
    onTestFinished(() => rmSync(outbox, { recursive: true, force: true }))
    const sessions = createTestSessions(now)
    const audit = createAuditLog(db, { now })
    const passkeys = createPasskeys({
      db,
      store: createMemoryStore({ now }),
      publicUrl: ORIGIN,
      audit,
      now,
    })
    const factor = createPasskeySecondFactor(passkeys)
    const auth = createAuthService(db, {
      audit,
      passwords: createTestHasher(),
      sessions,
      mailer: createFileOutboxMailer({ from: 'no-reply@example.com', directory: outbox }),
      publicUrl: `${ORIGIN}/`,
      now,
      secondFactors: async (user) => ((await factor.enabled(user.id)) ? ['passkey'] : []),
    })
    const signedUp = await auth.signup({ email: 'ada@example.com', password: PASSWORD })
    const bob = await auth.signup({ email: 'bob@example.com', password: PASSWORD })
    if (!signedUp.ok || !bob.ok) throw new Error('signup failed')
    const add = async (userId: string, email: string) => {
      const options = await passkeys.registrationOptions({ id: userId, email })
      const made = createCredential(options, { origin: ORIGIN })
      expect((await passkeys.register(userId, made.response)).ok).toBe(true)
      return made.credential
    }
    const mine = await add(signedUp.user.id, 'ada@example.com')
    const bobs = await add(bob.user.id, 'bob@example.com')

    const first = await auth.login({ email: 'ada@example.com', password: PASSWORD })
    expect(first).toMatchObject({ ok: false, code: 'second_factor_required', methods: ['passkey'] })
    if (first.ok || first.code !== 'second_factor_required') throw new Error('no second step')
    const userId = first.continuation.userId
    const context = { challenge: 'the-sign-in-challenge' }

    // Bob's passkey, answering options issued for Ada's sign-in.
    const o1 = await factor.options(userId, context.challenge)
    expect(o1.allowCredentials?.map((c) => c.id)).toEqual([mine.id])
    expect(
      await factor.verify(
        userId,
        { response: getAssertion(o1, bobs, { origin: ORIGIN }) },
        context,
      ),
    ).toBe(false)
    // Options of another sign-in challenge.
    const o2 = await factor.options(userId, 'another-challenge')
    expect(
      await factor.verify(
        userId,
        { response: getAssertion(o2, mine, { origin: ORIGIN }) },
        context,
      ),
    ).toBe(false)
    // Malformed.
    expect(await factor.verify(userId, { response: 'x' }, context)).toBe(false)
    expect(await factor.verify(userId, {}, context)).toBe(false)

    const o3 = await factor.options(userId, context.challenge)
    const answer = getAssertion(o3, mine, { origin: ORIGIN, userVerified: false })
    expect(await factor.verify(userId, { response: answer }, context)).toBe(true)
    // Once.
    expect(await factor.verify(userId, { response: answer }, context)).toBe(false)
    const done = await auth.signIn.complete(first.continuation, { amr: factor.amr })
    expect(done.ok).toBe(true)
    if (!done.ok) return
    expect(done.session).toMatchObject({ aal: 2, amr: ['pwd', 'hwk', 'mfa'] })

    expect(secondFactorBinding('the-sign-in-challenge')).not.toContain('sign-in')
    expect(secondFactorBinding(null)).toBe('reauthenticate')
  })
})
