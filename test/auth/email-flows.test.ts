import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { simpleParser } from 'mailparser'
import { expect, it, onTestFinished } from 'vitest'
import { createActionLimiter } from '../../src/auth/action-limiter.js'
import type { TesseraDB } from '../../src/auth/db/database.js'
import { createFileOutboxMailer } from '../../src/auth/mailer.js'
import { createMemoryRateLimitStore } from '../../src/auth/rate-limit.js'
import { createAuthService, type AuthServiceOptions } from '../../src/auth/service.js'
import { createTestHasher, createTestSessions } from '../helpers/auth-fixtures.js'
import { describeEachDatabase } from '../helpers/databases.js'

// The e-mail flows of the auth service (issue 16) on SQLite and PostgreSQL: what the HTTP tests
// do not see (second factors, audit events, the limiter's configuration).

const PASSWORD = 'correct horse battery'

function setup(db: TesseraDB, extra: Partial<AuthServiceOptions> = {}) {
  const clock = 1_700_000_000_000
  const now = (): number => clock
  const outbox = mkdtempSync(join(tmpdir(), 'tessera-email-'))
  onTestFinished(() => rmSync(outbox, { recursive: true, force: true }))
  const sessions = createTestSessions(now)
  const auth = createAuthService(db, {
    passwords: createTestHasher(),
    sessions,
    mailer: createFileOutboxMailer({ from: 'no-reply@example.com', directory: outbox }),
    publicUrl: 'https://auth.example.com',
    now,
    ...extra,
  })
  const mails = async (): Promise<Array<{ to: string; subject: string; text: string }>> => {
    await auth.idle()
    let files: string[] = []
    try {
      files = readdirSync(outbox).filter((f) => f.endsWith('.eml'))
    } catch {
      return []
    }
    return Promise.all(
      files.sort().map(async (f) => {
        const parsed = await simpleParser(readFileSync(join(outbox, f)))
        const to = Array.isArray(parsed.to) ? '' : (parsed.to?.text ?? '')
        return { to, subject: parsed.subject ?? '', text: parsed.text ?? '' }
      }),
    )
  }
  return { auth, sessions, mails }
}

describeEachDatabase('e-mail flows of the auth service', (open) => {
  it('a sign-in code still asks for the second factor of an account that has one', async () => {
    const t = setup(await open(), { secondFactors: () => Promise.resolve(['totp'] as const) })
    const signup = await t.auth.signup({ email: 'ada@example.com', password: PASSWORD })
    expect(signup.ok).toBe(true)
    await t.auth.email.requestCode('ADA@example.com')
    const mail = (await t.mails()).find((m) => m.subject.includes('sign-in code'))
    expect(mail?.to).toBe('ada@example.com')
    const code = /^(\d{8})$/m.exec(mail?.text ?? '')?.[1] ?? ''
    const result = await t.auth.email.verifyCode({ email: 'ada@example.com', code })
    expect(result).toMatchObject({ ok: false, code: 'second_factor_required', methods: ['totp'] })
    if (result.ok || result.code !== 'second_factor_required') return
    expect(result.continuation.firstFactor.amr).toEqual(['otp'])
    const done = await t.auth.signIn.complete(result.continuation, { amr: ['otp'] })
    expect(done.ok && done.session.aal).toBe(2)
  })

  it('audits the change of address (requested, changed with from and to)', async () => {
    const t = setup(await open())
    const signup = await t.auth.signup({ email: 'ada@example.com', password: PASSWORD })
    if (!signup.ok) throw new Error(signup.code)
    const asked = await t.auth.email.requestChange(signup.user.id, {
      newEmail: 'ada@new.example',
      password: PASSWORD,
    })
    expect(asked).toEqual({ ok: true })
    const confirm = (await t.mails()).find((m) => m.to === 'ada@new.example')
    const token = /confirm-email\?token=([A-Za-z0-9_-]{43})/.exec(confirm?.text ?? '')?.[1] ?? ''
    expect((await t.auth.email.confirmChange(token)).ok).toBe(true)
    const [requested] = await t.auth.audit.list({ type: 'email_change_requested' })
    expect(requested?.detail.newEmail).toBe('ada@new.example')
    const [changed] = await t.auth.audit.list({ type: 'email_changed' })
    expect(changed).toMatchObject({
      outcome: 'success',
      userId: signup.user.id,
      detail: { from: 'ada@example.com', to: 'ada@new.example' },
    })
    // a taken address is refused before anything is mailed
    const other = await t.auth.signup({ email: 'bob@example.com', password: PASSWORD })
    if (!other.ok) throw new Error(other.code)
    const taken = await t.auth.email.requestChange(other.user.id, {
      newEmail: 'ADA@new.example',
      password: PASSWORD,
    })
    expect(taken).toMatchObject({ ok: false, code: 'conflict' })
  })

  it('refuses at setup an action limiter without the e-mail actions', async () => {
    const db = await open()
    const limiter = createActionLimiter({
      store: createMemoryRateLimitStore(),
      policies: { password_reset_request: { ip: { limit: 1, window: 60 } } },
    })
    expect(() => setup(db, { actionLimiter: limiter })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    )
  })
})
