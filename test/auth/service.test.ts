import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { expect, it, onTestFinished } from 'vitest'
import { toPublicUser } from '../../src/auth/accounts.js'
import { createCredentials } from '../../src/auth/credentials.js'
import type { TesseraDB } from '../../src/auth/db/database.js'
import { createFileOutboxMailer } from '../../src/auth/mailer.js'
import { createAuthService, type AuthServiceOptions } from '../../src/auth/service.js'
import {
  createTestHasher,
  createTestLimiter,
  createTestSessions,
  djangoPbkdf2Hash,
} from '../helpers/auth-fixtures.js'
import { describeEachDatabase } from '../helpers/databases.js'

/** Undoes quoted-printable (soft breaks and =XX) so the link can be read from the .eml. */
function decodeQuotedPrintable(text: string): string {
  return text
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
}

const PASSWORD = 'correct horse battery'
const NEW_PASSWORD = 'staple gun lamp post'

function setup(db: TesseraDB, extra: Partial<AuthServiceOptions> = {}) {
  let clock = 1_700_000_000_000
  const now = (): number => clock
  const outbox = mkdtempSync(join(tmpdir(), 'tessera-outbox-'))
  onTestFinished(() => rmSync(outbox, { recursive: true, force: true }))
  const passwords = createTestHasher()
  const sessions = createTestSessions(now)
  const limiter = createTestLimiter(now)
  const errors: unknown[] = []
  const auth = createAuthService(db, {
    passwords,
    sessions,
    limiter,
    mailer: createFileOutboxMailer({ from: 'no-reply@example.com', directory: outbox }),
    publicUrl: 'https://auth.example.com/',
    now,
    onBackgroundError: (error) => errors.push(error),
    ...extra,
  })
  const mails = (): string[] => {
    let files: string[] = []
    try {
      files = readdirSync(outbox).filter((f) => f.endsWith('.eml'))
    } catch {
      return []
    }
    return files.sort().map((f) => readFileSync(join(outbox, f), 'utf8'))
  }
  const tokenFromMail = (mail: string): string => {
    const unfolded = decodeQuotedPrintable(mail)
    const match = /https:\/\/auth\.example\.com\/reset\?token=([A-Za-z0-9_-]{43})/.exec(unfolded)
    if (match?.[1] === undefined) throw new Error('no reset link in mail')
    return match[1]
  }
  return {
    auth,
    passwords,
    sessions,
    limiter,
    errors,
    mails,
    tokenFromMail,
    tick: (ms: number): number => (clock += ms),
  }
}

async function signedUp(t: ReturnType<typeof setup>, email = 'alice@example.com') {
  const result = await t.auth.signup({ email, password: PASSWORD })
  if (!result.ok) throw new Error(result.code)
  return result
}

async function resetToken(t: ReturnType<typeof setup>, email = 'alice@example.com') {
  await t.auth.requestPasswordReset({ email })
  await t.auth.idle()
  const mail = t.mails().at(-1)
  if (mail === undefined) throw new Error('no mail')
  return t.tokenFromMail(mail)
}

describeEachDatabase('auth service', (open) => {
  it('signup ignores unknown fields: no isAdmin from a body, no prototype pollution', async () => {
    const t = setup(await open())
    const body: unknown = JSON.parse(
      '{"email":"Mallory@Example.com","password":"correct horse battery","isAdmin":true,' +
        '"is_admin":1,"isActive":false,"id":"chosen","__proto__":{"isAdmin":true,"polluted":1},' +
        '"constructor":{"prototype":{"isAdmin":true,"polluted":1}}}',
    )
    const result = await t.auth.signup(body, { ip: '192.0.2.7', userAgent: 'test' })
    expect(result.ok).toBe(true)
    if (!result.ok) return
    expect(result.user.isAdmin).toBe(false)
    expect(result.user.isActive).toBe(true)
    expect(result.user.id).not.toBe('chosen')
    expect(result.user.email).toBe('mallory@example.com')
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined()
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(await t.auth.accounts.hasPermission(result.user, 'admin.access')).toBe(false)
    const live = await t.sessions.validateToken(result.token)
    expect(live?.session.userId).toBe(result.user.id)
    expect(live?.session.meta).toMatchObject({ ip: '192.0.2.7', userAgent: 'test' })
    // The password just chosen signs the user in like a password sign-in.
    expect(live?.session).toMatchObject({ aal: 1, amr: ['pwd'], authTime: 1_700_000_000_000 })
    expect(result.setCookie).toMatch(/^tessera_session=/)
  })

  it('signup ignores any extra fields (property)', async () => {
    const t = setup(await open())
    const key = fc.oneof(
      fc.constantFrom('isAdmin', 'is_admin', '__proto__', 'constructor', 'prototype', 'id'),
      fc.constantFrom('isActive', 'groups', 'permissions', 'passwordHash', 'password_hash'),
      fc.string({ maxLength: 12 }),
    )
    let n = 0
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(key, fc.jsonValue({ maxDepth: 2 })), { maxLength: 6 }),
        async (extras) => {
          n += 1
          const email = `user${n}@example.com`
          const fields = extras
            .filter(([k]) => k !== 'email' && k !== 'password')
            .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`)
          const body: unknown = JSON.parse(
            `{${[...fields, `"email":"${email}"`, `"password":"${PASSWORD}"`].join(',')}}`,
          )
          const result = await t.auth.signup(body)
          expect(result.ok).toBe(true)
          if (!result.ok) return
          expect(result.user).toMatchObject({
            email,
            isAdmin: false,
            isActive: true,
            groups: [],
            permissions: [],
          })
          expect(await t.auth.accounts.hasPermission(result.user, 'admin.access')).toBe(false)
          expect(Object.keys(Object.prototype)).toEqual([])
          expect(({} as Record<string, unknown>).isAdmin).toBeUndefined()
        },
      ),
      { numRuns: 15 },
    )
  })

  it('signup refuses weak passwords, taken e-mails (any variant), bad input and closed signup', async () => {
    const t = setup(await open())
    await signedUp(t)
    expect(await t.auth.signup({ email: 'b@x.io', password: 'short' })).toMatchObject({
      ok: false,
      code: 'weak_password',
    })
    expect(await t.auth.signup({ email: ' ALICE@example.com', password: PASSWORD })).toMatchObject({
      ok: false,
      code: 'conflict',
    })
    expect(await t.auth.signup({ email: 'nope', password: PASSWORD })).toMatchObject({
      code: 'invalid_request',
    })
    expect(await t.auth.signup(['b@x.io', PASSWORD])).toMatchObject({ code: 'invalid_request' })
    expect(await t.auth.signup(null)).toMatchObject({ code: 'invalid_request' })
    expect(t.passwords.calls.hash).toBe(1) // only the first signup hashed
    const closed = setup(await open(), { signup: 'closed' })
    expect(await closed.auth.signup({ email: 'b@x.io', password: PASSWORD })).toMatchObject({
      code: 'forbidden',
    })
  })

  it('login issues a fresh session every time and revokes the one it came with', async () => {
    const t = setup(await open())
    const { session: first, token: firstToken } = await signedUp(t)
    const login = await t.auth.login(
      { email: ' Alice@EXAMPLE.com ', password: PASSWORD },
      { session: first, ip: '198.51.100.1' },
    )
    expect(login.ok).toBe(true)
    if (!login.ok) return
    expect(login.session.id).not.toBe(first.id)
    expect(await t.sessions.validateToken(firstToken)).toBeNull()
    expect((await t.sessions.validateToken(login.token))?.session.id).toBe(login.session.id)
    expect(login.token).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(login.user).toMatchObject({ email: 'alice@example.com', groups: [], permissions: [] })
    t.tick(5000)
    const again = await t.auth.login({ email: 'alice@example.com', password: PASSWORD })
    expect(again.ok && again.session.id !== login.session.id).toBe(true)
    expect((await t.auth.accounts.findUserById(login.user.id))?.lastLoginAt).toBe(1_700_000_005_000)
    const events = await t.auth.audit.list({ userId: login.user.id, type: 'login' })
    expect(events.map((e) => e.outcome)).toEqual(['success', 'success'])
    expect(events[1]?.ip).toBe('198.51.100.1')
  })

  it('unknown e-mail and wrong password get the same answer, and both pay one verification', async () => {
    const t = setup(await open())
    await signedUp(t)
    const before = { ...t.passwords.calls }
    const unknown = await t.auth.login({ email: 'nobody@example.com', password: PASSWORD })
    const wrong = await t.auth.login({ email: 'alice@example.com', password: 'wrong password!' })
    const malformed = await t.auth.login({ email: 'not-an-email', password: PASSWORD })
    expect(unknown).toEqual(wrong)
    expect(malformed).toEqual(wrong)
    expect(wrong).toEqual({
      ok: false,
      code: 'invalid_credentials',
      message: 'email or password is incorrect',
    })
    expect(t.passwords.calls.dummy - before.dummy).toBe(2)
    expect(t.passwords.calls.verify - before.verify).toBe(1)
    const failures = await t.auth.audit.list({ type: 'login' })
    expect(failures.map((e) => e.detail.reason)).toEqual([
      'unknown_account',
      'wrong_password',
      'unknown_account',
    ])
  })

  it('a disabled account cannot log in, even with the right password', async () => {
    const t = setup(await open())
    const { user } = await signedUp(t)
    await t.auth.accounts.disableUser(user.id)
    expect(await t.sessions.list(user.id)).toEqual([])
    expect(await t.auth.login({ email: 'alice@example.com', password: PASSWORD })).toMatchObject({
      code: 'invalid_credentials',
    })
  })

  it('the limiter decides before any hashing; a locked account is refused with the right password', async () => {
    const t = setup(await open())
    await signedUp(t)
    for (let i = 0; i < 5; i += 1) {
      await t.auth.login({ email: 'alice@example.com', password: 'wrong password!' })
    }
    const before = { ...t.passwords.calls }
    const locked = await t.auth.login(
      { email: 'ALICE@example.com', password: PASSWORD },
      { ip: '203.0.113.9' },
    )
    expect(locked).toMatchObject({ ok: false, code: 'rate_limited', retryAfterSeconds: 1 })
    expect(t.passwords.calls).toEqual(before)
    const [event] = await t.auth.audit.list({ type: 'rate_limited' })
    expect(event).toMatchObject({ outcome: 'denied', ip: '203.0.113.9' })
  })

  it('login upgrades a Django PBKDF2 hash to argon2id and the password keeps working', async () => {
    const db = await open()
    const t = setup(db)
    const user = await t.auth.accounts.createUser({
      email: 'old@example.com',
      passwordHash: djangoPbkdf2Hash(PASSWORD),
    })
    const oldHash = await createCredentials(db).getPasswordHash(user.id)
    expect(t.passwords.needsRehash(oldHash ?? '')).toBe(true)
    expect((await t.auth.login({ email: 'old@example.com', password: PASSWORD })).ok).toBe(true)
    const newHash = await createCredentials(db).getPasswordHash(user.id)
    expect(newHash).not.toBe(oldHash)
    expect(newHash).toMatch(/^\$argon2id\$/)
    expect(t.passwords.needsRehash(newHash ?? '')).toBe(false)
    expect((await t.auth.login({ email: 'old@example.com', password: PASSWORD })).ok).toBe(true)
  })

  it('logout deletes the session', async () => {
    const t = setup(await open())
    const { session, user, token } = await signedUp(t)
    await t.auth.logout(session, { ip: '192.0.2.1' })
    expect(await t.sessions.validateToken(token)).toBeNull()
    expect((await t.auth.audit.list({ type: 'logout' }))[0]?.userId).toBe(user.id)
  })

  it('changePassword needs the current password and revokes every other session', async () => {
    const t = setup(await open())
    const { user, session: current, token: currentToken } = await signedUp(t)
    const other = await t.auth.login({ email: 'alice@example.com', password: PASSWORD })
    expect(other.ok).toBe(true)
    expect(
      await t.auth.changePassword(user.id, {
        currentPassword: 'wrong password!',
        newPassword: NEW_PASSWORD,
      }),
    ).toMatchObject({ code: 'invalid_credentials' })
    expect(
      await t.auth.changePassword(user.id, { currentPassword: PASSWORD, newPassword: 'short' }),
    ).toMatchObject({ code: 'weak_password' })
    expect(await t.sessions.list(user.id)).toHaveLength(2)

    const changed = await t.auth.changePassword(
      user.id,
      { currentPassword: PASSWORD, newPassword: NEW_PASSWORD },
      { session: current },
    )
    // The current session continues under a new token; the old token is dead.
    if (!changed.ok || changed.rotated === null) throw new Error('no rotated session')
    expect(changed.rotated.session.id).not.toBe(current.id)
    expect(await t.sessions.validateToken(currentToken)).toBeNull()
    expect((await t.sessions.validateToken(changed.rotated.token))?.session).toMatchObject({
      id: changed.rotated.session.id,
      authTime: current.authTime,
      amr: ['pwd'],
    })
    expect((await t.sessions.list(user.id)).map((s) => s.id)).toEqual([changed.rotated.session.id])
    expect((await t.auth.login({ email: 'alice@example.com', password: PASSWORD })).ok).toBe(false)
    expect((await t.auth.login({ email: 'alice@example.com', password: NEW_PASSWORD })).ok).toBe(
      true,
    )
    const events = await t.auth.audit.list({ type: 'password_changed' })
    expect(events.map((e) => e.outcome)).toEqual(['success', 'failure'])
  })

  it('reset request: same answer for unknown e-mails; mail with a link from the public URL only', async () => {
    const db = await open()
    const t = setup(db)
    await signedUp(t)
    const unknown = await t.auth.requestPasswordReset({ email: 'nobody@example.com' })
    const known = await t.auth.requestPasswordReset({ email: 'ALICE@example.com' })
    const invalid = await t.auth.requestPasswordReset({ email: 42 })
    expect(unknown).toEqual({ rateLimited: false })
    expect(known).toEqual({ rateLimited: false })
    expect(invalid).toEqual({ rateLimited: false })
    // nothing account-specific happened before the call returned
    expect(t.mails()).toHaveLength(0)
    await t.auth.idle()
    const mails = t.mails()
    expect(mails).toHaveLength(1)
    const mail = mails[0] ?? ''
    expect(mail).toMatch(/^To: alice@example\.com\r$/m)
    expect(mail).toMatch(/^From: no-reply@example\.com\r$/m)
    expect(mail).toMatch(/^Subject: Reset your password\r$/m)
    const token = t.tokenFromMail(mail)
    // SECURITY: only SHA-256 of the token is stored
    const rows = await db.selectFrom('password_reset_tokens').selectAll().execute()
    expect(rows).toHaveLength(1)
    expect(rows[0]?.token_hash).toBe(createHash('sha256').update(token).digest('base64url'))
    expect(JSON.stringify(rows)).not.toContain(token)
    expect(Number(rows[0]?.expires_at) - Number(rows[0]?.created_at)).toBe(30 * 60 * 1000)
    const requested = await t.auth.audit.list({ type: 'password_reset_requested' })
    expect(requested.map((e) => e.outcome).sort()).toEqual(['failure', 'success'])
    expect(t.errors).toEqual([])
  })

  it('reset confirm sets the password, revokes every session, and works once', async () => {
    const t = setup(await open())
    const { user } = await signedUp(t)
    await t.auth.login({ email: 'alice@example.com', password: PASSWORD })
    const token = await resetToken(t)
    expect(await t.sessions.list(user.id)).toHaveLength(2)
    const result = await t.auth.confirmPasswordReset({ token, newPassword: NEW_PASSWORD })
    expect(result).toEqual({ ok: true, userId: user.id })
    expect(await t.sessions.list(user.id)).toEqual([])
    expect((await t.auth.login({ email: 'alice@example.com', password: NEW_PASSWORD })).ok).toBe(
      true,
    )
    expect(
      await t.auth.confirmPasswordReset({ token, newPassword: 'another good password' }),
    ).toMatchObject({
      code: 'invalid_token',
    })
    expect((await t.auth.login({ email: 'alice@example.com', password: NEW_PASSWORD })).ok).toBe(
      true,
    )
  })

  it('two concurrent confirmations of one token: exactly one wins', async () => {
    const t = setup(await open())
    const { user } = await signedUp(t)
    const token = await resetToken(t)
    const results = await Promise.all([
      t.auth.confirmPasswordReset({ token, newPassword: 'first new password' }),
      t.auth.confirmPasswordReset({ token, newPassword: 'second new password' }),
      t.auth.confirmPasswordReset({ token, newPassword: 'third new password!' }),
    ])
    const winners = results.filter((r) => r.ok)
    expect(winners).toHaveLength(1)
    expect(results.filter((r) => !r.ok && r.code === 'invalid_token')).toHaveLength(2)
    const index = results.findIndex((r) => r.ok)
    const chosen = ['first new password', 'second new password', 'third new password!'][index] ?? ''
    expect((await t.auth.login({ email: 'alice@example.com', password: chosen })).ok).toBe(true)
    const used = await t.auth.audit.list({ userId: user.id, type: 'password_reset_used' })
    expect(used).toHaveLength(1)
  })

  it('a reset token expires after 30 minutes', async () => {
    const t = setup(await open())
    await signedUp(t)
    const token = await resetToken(t)
    t.tick(30 * 60 * 1000)
    expect(await t.auth.confirmPasswordReset({ token, newPassword: NEW_PASSWORD })).toMatchObject({
      code: 'invalid_token',
    })
    const fresh = await resetToken(t)
    t.tick(30 * 60 * 1000 - 1)
    expect(
      (await t.auth.confirmPasswordReset({ token: fresh, newPassword: NEW_PASSWORD })).ok,
    ).toBe(true)
  })

  it('a reset token is void once the password changes by any path', async () => {
    const t = setup(await open())
    const { user } = await signedUp(t)
    const viaChange = await resetToken(t)
    await t.auth.changePassword(user.id, { currentPassword: PASSWORD, newPassword: NEW_PASSWORD })
    expect(
      await t.auth.confirmPasswordReset({ token: viaChange, newPassword: 'yet another password' }),
    ).toMatchObject({ code: 'invalid_token' })

    const first = await resetToken(t)
    const second = await resetToken(t)
    expect(
      (await t.auth.confirmPasswordReset({ token: second, newPassword: 'reset number two' })).ok,
    ).toBe(true)
    expect(
      await t.auth.confirmPasswordReset({ token: first, newPassword: 'reset number one' }),
    ).toMatchObject({ code: 'invalid_token' })

    const viaAdmin = await resetToken(t)
    expect((await t.auth.setPassword(user.id, 'set by an admin')).ok).toBe(true)
    expect(
      await t.auth.confirmPasswordReset({ token: viaAdmin, newPassword: 'reset number three' }),
    ).toMatchObject({ code: 'invalid_token' })
  })

  it('a weak new password leaves the token usable; a bad token costs no hash', async () => {
    const t = setup(await open())
    await signedUp(t)
    const token = await resetToken(t)
    expect(await t.auth.confirmPasswordReset({ token, newPassword: 'short' })).toMatchObject({
      code: 'weak_password',
    })
    const before = t.passwords.calls.hash
    for (const bad of [
      'x',
      'A'.repeat(43),
      `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`,
    ]) {
      expect(
        await t.auth.confirmPasswordReset({ token: bad, newPassword: NEW_PASSWORD }),
      ).toMatchObject({
        code: 'invalid_token',
      })
    }
    expect(t.passwords.calls.hash).toBe(before)
    expect(
      await t.auth.confirmPasswordReset({ token: 5, newPassword: NEW_PASSWORD }),
    ).toMatchObject({
      code: 'invalid_request',
    })
    expect((await t.auth.confirmPasswordReset({ token, newPassword: NEW_PASSWORD })).ok).toBe(true)
  })

  it('a disabled account gets no reset mail and cannot use an earlier token', async () => {
    const t = setup(await open())
    const { user } = await signedUp(t)
    const token = await resetToken(t)
    await t.auth.accounts.disableUser(user.id)
    await t.auth.requestPasswordReset({ email: 'alice@example.com' })
    await t.auth.idle()
    expect(t.mails()).toHaveLength(1)
    expect(await t.auth.confirmPasswordReset({ token, newPassword: NEW_PASSWORD })).toMatchObject({
      code: 'invalid_token',
    })
  })

  it('revokes one own session, refuses another user’s, and revokes all others', async () => {
    const t = setup(await open())
    const a = await signedUp(t)
    const b = await signedUp(t, 'bob@example.com')
    const a2 = await t.auth.login({ email: 'alice@example.com', password: PASSWORD })
    const a3 = await t.auth.login({ email: 'alice@example.com', password: PASSWORD })
    if (!a2.ok || !a3.ok) throw new Error('login failed')
    expect(await t.auth.revokeSession(a.user.id, b.session.id)).toBe(false)
    expect(await t.sessions.validateToken(b.token)).not.toBeNull()
    expect(await t.auth.revokeSession(a.user.id, a2.session.id)).toBe(true)
    expect(await t.auth.revokeOtherSessions(a.user.id, { session: a.session })).toBe(1)
    expect((await t.sessions.list(a.user.id)).map((s) => s.id)).toEqual([a.session.id])
    expect(await t.auth.audit.list({ type: 'session_revoked' })).toHaveLength(2)
  })

  it('an administrator acting for a user is named in the audit log (actorId)', async () => {
    const t = setup(await open())
    const a = await signedUp(t)
    const a2 = await t.auth.login({ email: 'alice@example.com', password: PASSWORD })
    if (!a2.ok) throw new Error('login failed')
    expect(await t.auth.revokeSession(a.user.id, a2.session.id, { actorId: 'admin-1' })).toBe(true)
    expect(await t.auth.revokeOtherSessions(a.user.id, { actorId: 'admin-1' })).toBe(1)
    const revoked = await t.auth.audit.list({ type: 'session_revoked' })
    expect(revoked.map((e) => e.detail)).toEqual([
      { count: 1, actorId: 'admin-1' },
      { count: 1, actorId: 'admin-1' },
    ])
    await t.auth.requestPasswordReset({ email: 'alice@example.com' }, { actorId: 'admin-1' })
    await t.auth.requestPasswordReset({ email: 'nobody@example.com' }, { actorId: 'admin-1' })
    await t.auth.idle()
    const requested = await t.auth.audit.list({ type: 'password_reset_requested' })
    expect(requested.map((e) => e.detail.actorId)).toEqual(['admin-1', 'admin-1'])
    expect(await t.auth.revokeOtherSessions(a.user.id)).toBe(0)
    const [own] = await t.auth.audit.list({ type: 'session_revoked' })
    expect(own?.detail).toEqual({ count: 0 })
  })

  it('never writes a password, reset token or hash into the audit log', async () => {
    const db = await open()
    const t = setup(db)
    const { user } = await signedUp(t)
    await t.auth.login({ email: 'alice@example.com', password: 'wrong password!' })
    await t.auth.login({ email: 'alice@example.com', password: PASSWORD })
    await t.auth.changePassword(user.id, { currentPassword: PASSWORD, newPassword: NEW_PASSWORD })
    const token = await resetToken(t)
    await t.auth.confirmPasswordReset({ token, newPassword: 'the final password' })
    await t.auth.confirmPasswordReset({ token, newPassword: 'the final password' })
    const hash = (await createCredentials(db).getPasswordHash(user.id)) ?? ''
    const rows = await db.selectFrom('audit_events').selectAll().execute()
    expect(rows.length).toBeGreaterThan(6)
    const dump = JSON.stringify(rows)
    for (const secret of [
      PASSWORD,
      NEW_PASSWORD,
      'wrong password!',
      'the final password',
      token,
      hash,
      '$argon2id$',
    ]) {
      expect(dump).not.toContain(secret)
    }
    expect(dump).not.toContain(createHash('sha256').update(token).digest('base64url'))
  })

  it('an administrator creates a user with a password (policy checked, isAdmin allowed)', async () => {
    const t = setup(await open())
    const admin = await t.auth.createUser(
      { email: 'Root@Example.com', password: PASSWORD, isAdmin: true },
      { actorId: 'cli' },
    )
    expect(admin).toMatchObject({ ok: true, user: { email: 'root@example.com', isAdmin: true } })
    expect(
      await t.auth.createUser({ email: 'root@example.com', password: PASSWORD }),
    ).toMatchObject({
      code: 'conflict',
    })
    expect(await t.auth.createUser({ email: 'x@example.com', password: 'short' })).toMatchObject({
      code: 'weak_password',
    })
    expect(await t.auth.createUser({ email: 'nope', password: PASSWORD })).toMatchObject({
      code: 'invalid_request',
    })
    expect((await t.auth.login({ email: 'root@example.com', password: PASSWORD })).ok).toBe(true)
    const [created] = await t.auth.audit.list({ type: 'user_created' })
    expect(created?.detail).toEqual({ isAdmin: true, actorId: 'cli' })
  })

  it('an administrator sets a password: every session ends, reset tokens die', async () => {
    const t = setup(await open())
    const { user, token: sessionToken } = await signedUp(t)
    const resetLink = await resetToken(t)
    expect(await t.auth.setPassword(user.id, 'short')).toMatchObject({ code: 'weak_password' })
    expect(await t.auth.setPassword('missing', NEW_PASSWORD)).toMatchObject({ code: 'not_found' })
    expect(await t.auth.setPassword(user.id, NEW_PASSWORD, { actorId: 'admin-1' })).toEqual({
      ok: true,
    })
    expect(await t.sessions.validateToken(sessionToken)).toBeNull()
    expect(
      await t.auth.confirmPasswordReset({ token: resetLink, newPassword: 'another password!' }),
    ).toMatchObject({ code: 'invalid_token' })
    expect((await t.auth.login({ email: 'alice@example.com', password: NEW_PASSWORD })).ok).toBe(
      true,
    )
  })

  it('toPublicUser gives the API shape without internal fields', async () => {
    const t = setup(await open())
    const { user } = await signedUp(t)
    await t.auth.accounts.grantPermission(user.id, 'posts.publish')
    const full = await t.auth.accounts.getUserWithPermissions(user.id)
    if (full === null) throw new Error('missing')
    expect(toPublicUser(full)).toEqual({
      id: user.id,
      email: 'alice@example.com',
      isAdmin: false,
      createdAt: new Date(user.createdAt).toISOString(),
      groups: [],
      permissions: ['posts.publish'],
    })
  })

  it('refuses a public URL that is not http(s) or carries a query', async () => {
    const db = await open()
    for (const publicUrl of ['ftp://x.io', 'not a url', 'https://x.io/?a=1', 'https://x.io/#f']) {
      expect(() => setup(db, { publicUrl }), publicUrl).toThrow(
        expect.objectContaining({ code: 'config_invalid' }),
      )
    }
    const t = setup(db, { publicUrl: 'https://example.com/auth/' })
    await signedUp(t)
    await t.auth.requestPasswordReset({ email: 'alice@example.com' })
    await t.auth.idle()
    expect(decodeQuotedPrintable(t.mails()[0] ?? '')).toContain(
      'https://example.com/auth/reset?token=',
    )
  })
})
