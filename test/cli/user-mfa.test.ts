import { afterEach, expect, it } from 'vitest'
import { createSecondFactors } from '../../src/auth/second-factors.js'
import { totpCode } from '../../src/auth/totp.js'
import { openCliContext } from '../../src/cli/context.js'
import { sqliteFixture, type CliFixture } from './cli-harness.js'

const PASSWORD = 'correct horse battery staple'
const fixtures: CliFixture[] = []
afterEach(() => {
  for (const fx of fixtures.splice(0)) fx.cleanup()
})

it('tessera user mfa shows the factors; mfa reset removes them, audited', async () => {
  const fx = sqliteFixture()
  fixtures.push(fx)
  expect(
    (await fx.run(['user', 'create', 'ada@example.com'], { stdin: `${PASSWORD}\n` })).code,
  ).toBe(0)
  const none = await fx.run(['user', 'mfa', 'ada@example.com'])
  expect(none.code).toBe(0)
  expect(none.stdout).toContain('authenticator app none; 0 recovery code(s) left')

  // Enrol through the library over the same database and secret, as the server would.
  const context = await openCliContext({ env: fx.env, cwd: fx.dir, err: () => undefined })
  try {
    const factors = createSecondFactors(context.backends.db, {
      keyring: context.keyring,
      audit: context.audit,
    })
    const user = await context.accounts.findUserByEmail('ada@example.com')
    if (user === null) throw new Error('no user')
    const started = await factors.startTOTP(user)
    if (!started.ok) throw new Error('refused')
    expect(
      (await factors.confirmTOTP(user.id, totpCode(started.secret, { now: Date.now() }))).ok,
    ).toBe(true)
  } finally {
    await context.close()
  }

  const shown = await fx.run(['user', 'mfa', 'ada@example.com', '--json'])
  expect(JSON.parse(shown.stdout)).toMatchObject({
    totp: { enabled: true },
    recoveryCodes: { remaining: 10 },
  })
  const reset = await fx.run(['user', 'mfa', 'reset', 'ada@example.com'])
  expect(reset.code).toBe(0)
  expect(reset.stdout).toContain('removed the second factors of ada@example.com')
  expect((await fx.run(['user', 'mfa', 'ada@example.com'])).stdout).toContain('none')
  const again = await fx.run(['user', 'mfa', 'reset', 'ada@example.com'])
  expect(again.stdout).toContain('had no second factor')

  const audit = await openCliContext({ env: fx.env, cwd: fx.dir, err: () => undefined })
  try {
    const events = await audit.audit.list({ type: 'mfa_reset' })
    expect(events).toHaveLength(2)
    expect(events[0]?.userAgent).toBe('tessera-cli')
  } finally {
    await audit.close()
  }
  expect((await fx.run(['user', 'mfa', 'nobody@example.com'])).code).not.toBe(0)
  expect((await fx.run(['user', 'mfa'])).code).not.toBe(0)
})
