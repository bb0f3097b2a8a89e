/*
 * The sign-in pipeline over real parts: SQLite and PostgreSQL, the argon2id hasher (counting its
 * calls, so timing parity is checked by counting verifications, not by measuring time), the
 * session manager over the memory store, the login limiter over memory counters, the audit log.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it, onTestFinished } from 'vitest'
import { createAccounts } from '../../src/auth/accounts.js'
import { createAuditLog } from '../../src/auth/audit.js'
import type { TesseraDB } from '../../src/auth/db/database.js'
import { createCredentials, type Credentials } from '../../src/auth/credentials.js'
import { createFileOutboxMailer } from '../../src/auth/mailer.js'
import { createAuthService, type AuthServiceOptions } from '../../src/auth/service.js'
import {
  createSignIn,
  MAX_PASSWORD_INPUT,
  type SecondFactorMethod,
  type SignInOptions,
} from '../../src/auth/sign-in.js'
import { createKeyring } from '../../src/core/keyring.js'
import { createSessionManager } from '../../src/core/session-manager.js'
import { createMemoryStore } from '../../src/stores/memory.js'
import {
  createTestHasher,
  createTestLimiter,
  createTestSessions,
  djangoPbkdf2Hash,
} from '../helpers/auth-fixtures.js'
import { describeEachDatabase } from '../helpers/databases.js'

const PASSWORD = 'correct horse battery'
const START = 1_700_000_000_000

/** The real credentials module, counting how often the pipeline asks it for an e-mail. */
function countingCredentials(db: TesseraDB, now: () => number) {
  const real = createCredentials(db, { now })
  const calls = { findCredentialsByEmail: 0 }
  const credentials: Credentials = {
    ...real,
    findCredentialsByEmail(email) {
      calls.findCredentialsByEmail += 1
      return real.findCredentialsByEmail(email)
    },
  }
  return { credentials, calls }
}

function setup(db: TesseraDB, extra: Partial<AuthServiceOptions> = {}) {
  let clock = START
  const now = (): number => clock
  const outbox = mkdtempSync(join(tmpdir(), 'tessera-outbox-'))
  onTestFinished(() => rmSync(outbox, { recursive: true, force: true }))
  const passwords = createTestHasher()
  const sessions = createTestSessions(now)
  const limiter = createTestLimiter(now)
  const counted = countingCredentials(db, now)
  const auth = createAuthService(db, {
    passwords,
    sessions,
    limiter,
    credentials: counted.credentials,
    mailer: createFileOutboxMailer({ from: 'no-reply@example.com', directory: outbox }),
    publicUrl: 'https://auth.example.com/',
    now,
    ...extra,
  })
  // The admin panel's kind of session manager: its own key purpose, cookie and lifetimes.
  const adminSessions = createSessionManager(
    createMemoryStore({ now }),
    createKeyring('aT9wq2LmX7vR4pZc8KsY1dHf6gJb3nQa5eUoIiWrVyE'),
    {
      purpose: 'admin-session',
      cookieName: 'tessera_admin',
      path: '/admin',
      idleTimeout: 1800,
      absoluteTimeout: 43_200,
      now,
    },
  )
  return {
    auth,
    passwords,
    sessions,
    adminSessions,
    limiter,
    queries: counted.calls,
    tick: (ms: number): number => (clock += ms),
  }
}

type Fixture = ReturnType<typeof setup>

async function user(t: Fixture, email = 'alice@example.com', isAdmin = false) {
  const result = await t.auth.createUser({ email, password: PASSWORD, isAdmin })
  if (!result.ok) throw new Error(result.code)
  return result.user
}

/** What the admin panel passes (docs/accounts.md "Signing in elsewhere"). */
function adminOptions(t: Fixture, extra: SignInOptions = {}): SignInOptions {
  return {
    sessions: t.adminSessions,
    require: { permission: 'admin.access', reason: 'not_admin' },
    audit: { action: 'admin_login', detail: { panel: 'admin' } },
    ...extra,
  }
}

describeEachDatabase('sign-in pipeline', (open) => {
  it('a password sign-in records authTime, aal 1 and amr pwd on the session, and audits it', async () => {
    const t = setup(await open())
    const alice = await user(t)
    t.tick(7000)
    const result = await t.auth.signIn.password(
      { email: 'Alice@Example.com', password: PASSWORD },
      { ip: '198.51.100.4', userAgent: 'ua' },
    )
    if (!result.ok) throw new Error(result.code)
    expect(result.session).toMatchObject({ authTime: START + 7000, aal: 1, amr: ['pwd'] })
    const stored = await t.sessions.validateToken(result.token)
    expect(stored?.session).toMatchObject({ authTime: START + 7000, aal: 1, amr: ['pwd'] })
    expect(result.user).toMatchObject({ id: alice.id, groups: [], permissions: [] })
    const [event] = await t.auth.audit.list({ type: 'login' })
    expect(event).toMatchObject({
      outcome: 'success',
      userId: alice.id,
      ip: '198.51.100.4',
      detail: { amr: 'pwd' },
    })
    expect((await t.auth.accounts.findUserById(alice.id))?.lastLoginAt).toBe(START + 7000)
  })

  it('one credentials query and one verification whether or not the e-mail is known', async () => {
    const t = setup(await open())
    await user(t)
    const before = { ...t.passwords.calls }
    const unknown = await t.auth.signIn.password({ email: 'nobody@example.com', password: 'x' })
    expect(t.queries.findCredentialsByEmail).toBe(1)
    expect(t.passwords.calls.dummy - before.dummy).toBe(1)
    expect(t.passwords.calls.verify - before.verify).toBe(0)
    const wrong = await t.auth.signIn.password({ email: 'alice@example.com', password: 'x' })
    expect(t.queries.findCredentialsByEmail).toBe(2)
    expect(t.passwords.calls.dummy - before.dummy).toBe(1)
    expect(t.passwords.calls.verify - before.verify).toBe(1)
    expect(unknown).toEqual(wrong)
    expect(wrong).toEqual({
      ok: false,
      code: 'invalid_credentials',
      message: 'email or password is incorrect',
    })
    // An account without a password costs the dummy verification too, with the same answer.
    await t.auth.accounts.createUser({ email: 'nopass@example.com' })
    expect(await t.auth.signIn.password({ email: 'nopass@example.com', password: 'x' })).toEqual(
      wrong,
    )
    expect(t.passwords.calls.dummy - before.dummy).toBe(2)
  })

  it('a disabled account gets the same answer after a real verification', async () => {
    const t = setup(await open())
    const alice = await user(t)
    await t.auth.accounts.disableUser(alice.id)
    const before = t.passwords.calls.verify
    const result = await t.auth.signIn.password({ email: 'alice@example.com', password: PASSWORD })
    expect(result).toMatchObject({ ok: false, code: 'invalid_credentials' })
    expect(t.passwords.calls.verify - before).toBe(1)
    const [event] = await t.auth.audit.list({ type: 'login' })
    expect(event?.detail.reason).toBe('inactive')
  })

  it('the limiter decides before any query or hash; it says so with the seconds to wait', async () => {
    const t = setup(await open())
    await user(t)
    for (let i = 0; i < 5; i += 1) {
      await t.auth.signIn.password({ email: 'alice@example.com', password: 'wrong' })
    }
    const calls = { ...t.passwords.calls }
    const queries = t.queries.findCredentialsByEmail
    const locked = await t.auth.signIn.password(
      { email: 'alice@example.com', password: PASSWORD },
      { ip: '203.0.113.1' },
    )
    expect(locked).toEqual({
      ok: false,
      code: 'rate_limited',
      message: 'too many attempts; try again later',
      retryAfterSeconds: 1,
    })
    expect(t.passwords.calls).toEqual(calls)
    expect(t.queries.findCredentialsByEmail).toBe(queries)
    t.tick(1000)
    expect(
      (await t.auth.signIn.password({ email: 'alice@example.com', password: PASSWORD })).ok,
    ).toBe(true)
  })

  it('caps the password length before any lookup or hash, with the wrong-password answer', async () => {
    const t = setup(await open())
    await user(t)
    const before = { ...t.passwords.calls }
    const long = 'x'.repeat(MAX_PASSWORD_INPUT + 1)
    const result = await t.auth.signIn.password({ email: 'alice@example.com', password: long })
    expect(result).toEqual({
      ok: false,
      code: 'invalid_credentials',
      message: 'email or password is incorrect',
    })
    expect(t.passwords.calls).toEqual(before)
    expect(t.queries.findCredentialsByEmail).toBe(0)
    const [event] = await t.auth.audit.list({ type: 'login' })
    expect(event?.detail.reason).toBe('password_too_long')
    // At the cap it is an ordinary (wrong) password: one verification.
    await t.auth.signIn.password({
      email: 'alice@example.com',
      password: 'x'.repeat(MAX_PASSWORD_INPUT),
    })
    expect(t.passwords.calls.verify - before.verify).toBe(1)
    // An over-long attempt is counted by the limiter like any failure.
    for (let i = 0; i < 4; i += 1) {
      await t.auth.signIn.password({ email: 'alice@example.com', password: long })
    }
    expect(
      await t.auth.signIn.password({ email: 'alice@example.com', password: PASSWORD }),
    ).toMatchObject({ code: 'rate_limited' })
  })

  it('rehashes an outdated hash on a right password, and only then', async () => {
    const db = await open()
    const t = setup(db)
    const old = djangoPbkdf2Hash(PASSWORD)
    const created = await t.auth.accounts.createUser({
      email: 'old@example.com',
      passwordHash: old,
    })
    const credentials = createCredentials(db)
    await t.auth.signIn.password({ email: 'old@example.com', password: 'wrong one' })
    expect(await credentials.getPasswordHash(created.id)).toBe(old)
    expect(
      (await t.auth.signIn.password({ email: 'old@example.com', password: PASSWORD })).ok,
    ).toBe(true)
    const upgraded = await credentials.getPasswordHash(created.id)
    expect(upgraded).toMatch(/^\$argon2id\$/)
    expect(t.passwords.needsRehash(upgraded ?? '')).toBe(false)
    const hashes = t.passwords.calls.hash
    expect(
      (await t.auth.signIn.password({ email: 'old@example.com', password: PASSWORD })).ok,
    ).toBe(true)
    expect(t.passwords.calls.hash).toBe(hashes) // a current hash is not rehashed
  })

  it('the API login and the token grant are signIn.password: the same audit, limiter and session', async () => {
    const t = setup(await open())
    await user(t)
    const login = await t.auth.login({ email: 'alice@example.com', password: PASSWORD })
    const direct = await t.auth.signIn.password({ email: 'alice@example.com', password: PASSWORD })
    if (!login.ok || !direct.ok) throw new Error('sign-in failed')
    expect({ aal: login.session.aal, amr: login.session.amr }).toEqual({
      aal: direct.session.aal,
      amr: direct.session.amr,
    })
    expect(t.queries.findCredentialsByEmail).toBe(2)
    expect(await t.auth.login({ email: 'alice@example.com' })).toMatchObject({
      code: 'invalid_request',
    })
  })

  it('admin options: refuses, after the right password only, an account that may not use the panel', async () => {
    const t = setup(await open())
    const alice = await user(t)
    const wrong = await t.auth.signIn.password(
      { email: 'alice@example.com', password: 'wrong' },
      adminOptions(t),
    )
    // No hint before the password is right.
    expect(wrong).toMatchObject({ code: 'invalid_credentials' })
    const refused = await t.auth.signIn.password(
      { email: 'alice@example.com', password: PASSWORD },
      adminOptions(t, { ip: '192.0.2.9' }),
    )
    expect(refused).toEqual({
      ok: false,
      code: 'forbidden',
      message: 'this account may not sign in here',
    })
    expect(await t.adminSessions.list(alice.id)).toEqual([])
    expect(await t.sessions.list(alice.id)).toEqual([])
    const events = await t.auth.audit.list({ type: 'login' })
    expect(events.map((e) => [e.outcome, e.detail])).toEqual([
      ['denied', { panel: 'admin', reason: 'not_admin' }],
      ['failure', { panel: 'admin', reason: 'wrong_password' }],
    ])
    // The permission opens the panel; an active administrator has every permission.
    await t.auth.accounts.grantPermission(alice.id, 'admin.access')
    const allowed = await t.auth.signIn.password(
      { email: 'alice@example.com', password: PASSWORD },
      adminOptions(t),
    )
    expect(allowed.ok).toBe(true)
    await user(t, 'root@example.com', true)
    expect(
      (
        await t.auth.signIn.password(
          { email: 'root@example.com', password: PASSWORD },
          adminOptions(t),
        )
      ).ok,
    ).toBe(true)
  })

  it('admin options: the session comes from the admin manager, with its data; the one sent along ends', async () => {
    const t = setup(await open())
    const root = await user(t, 'root@example.com', true)
    const first = await t.auth.signIn.password(
      { email: 'root@example.com', password: PASSWORD },
      adminOptions(t),
    )
    if (!first.ok) throw new Error(first.code)
    expect(first.setCookie).toMatch(/^tessera_admin=.*Path=\/admin/)
    expect(await t.sessions.list(root.id)).toEqual([]) // not an application session
    expect(await t.sessions.validate(first.setCookie.split(';')[0])).toBeNull()
    const second = await t.auth.signIn.password(
      { email: 'root@example.com', password: PASSWORD },
      adminOptions(t, { session: first.session, data: { flash: 'Signed in.' } }),
    )
    if (!second.ok) throw new Error(second.code)
    expect(second.session.absoluteExpiresAt - second.session.createdAt).toBe(43_200_000)
    expect(second.session.data).toEqual({ flash: 'Signed in.' })
    expect(second.session).toMatchObject({ aal: 1, amr: ['pwd'] })
    expect(await t.adminSessions.validateToken(first.token)).toBeNull()
    expect((await t.adminSessions.list(root.id)).map((s) => s.id)).toEqual([second.session.id])
    const [event] = await t.auth.audit.list({ type: 'login' })
    expect(event?.detail).toEqual({ panel: 'admin', amr: 'pwd' })
  })

  it('admin options: the same limiter, length cap and dummy verification, with the panel in the audit', async () => {
    const t = setup(await open())
    await user(t, 'root@example.com', true)
    const before = { ...t.passwords.calls }
    await t.auth.signIn.password({ email: 'ghost@example.com', password: 'x' }, adminOptions(t))
    expect(t.passwords.calls.dummy - before.dummy).toBe(1)
    const long = 'x'.repeat(MAX_PASSWORD_INPUT + 1)
    expect(
      await t.auth.signIn.password({ email: 'root@example.com', password: long }, adminOptions(t)),
    ).toMatchObject({ code: 'invalid_credentials' })
    expect(t.passwords.calls.verify - before.verify).toBe(0)
    for (let i = 0; i < 3; i += 1) {
      await t.auth.signIn.password({ email: 'root@example.com', password: 'x' }, adminOptions(t))
    }
    // The API's failures and the panel's count against one limit.
    expect(await t.auth.login({ email: 'root@example.com', password: 'x' })).toMatchObject({
      code: 'invalid_credentials',
    })
    const locked = await t.auth.signIn.password(
      { email: 'root@example.com', password: PASSWORD },
      adminOptions(t),
    )
    expect(locked).toMatchObject({ ok: false, code: 'rate_limited', retryAfterSeconds: 1 })
    const [limited] = await t.auth.audit.list({ type: 'rate_limited' })
    expect(limited?.detail).toMatchObject({
      panel: 'admin',
      action: 'admin_login',
      scope: 'account',
    })
    const failures = await t.auth.audit.list({ type: 'login' })
    expect(failures.filter((e) => e.detail.panel === 'admin')).toHaveLength(5)
  })

  it('verifyPassword: the same protections, no session; the caller records the proof on its own', async () => {
    const t = setup(await open())
    const alice = await user(t)
    t.tick(1000)
    const before = { ...t.passwords.calls }
    const unknown = await t.auth.verifyPassword({ email: 'nobody@example.com', password: 'x' })
    const wrong = await t.auth.verifyPassword({ email: 'alice@example.com', password: 'x' })
    expect(unknown).toEqual(wrong)
    expect(t.passwords.calls.dummy - before.dummy).toBe(1)
    expect(t.passwords.calls.verify - before.verify).toBe(1)
    expect(
      await t.auth.verifyPassword({
        email: 'alice@example.com',
        password: 'x'.repeat(MAX_PASSWORD_INPUT + 1),
      }),
    ).toMatchObject({ code: 'invalid_credentials' })
    expect(t.passwords.calls.verify - before.verify).toBe(1)

    const verified = await t.auth.verifyPassword(
      { email: 'ALICE@example.com', password: PASSWORD, isAdmin: true },
      { ip: '192.0.2.3' },
    )
    if (!verified.ok) throw new Error(verified.code)
    expect(verified.user).toMatchObject({ id: alice.id, isAdmin: false })
    expect(verified.auth).toEqual({ time: START + 1000, aal: 1, amr: ['pwd'] })
    expect(await t.sessions.list(alice.id)).toEqual([])
    const [event] = await t.auth.audit.list({ type: 'login' })
    expect(event).toMatchObject({ outcome: 'success', detail: { amr: 'pwd', session: 'external' } })
    // What an adapter's signIn does with it:
    const made = await t.sessions.create(alice.id, { auth: verified.auth })
    expect(made.session).toMatchObject({ authTime: START + 1000, aal: 1, amr: ['pwd'] })

    for (let i = 0; i < 5; i += 1) {
      await t.auth.verifyPassword({ email: 'alice@example.com', password: 'x' })
    }
    const calls = { ...t.passwords.calls }
    expect(
      await t.auth.verifyPassword({ email: 'alice@example.com', password: PASSWORD }),
    ).toMatchObject({ code: 'rate_limited' })
    expect(t.passwords.calls).toEqual(calls)
  })

  it('a second factor: no session after the password, the same wrong-password answer, then aal 2', async () => {
    const factors = new Map<string, readonly SecondFactorMethod[]>()
    const t = setup(await open(), {
      secondFactors: (u) => Promise.resolve(factors.get(u.id) ?? []),
    })
    const alice = await user(t)
    const bob = await user(t, 'bob@example.com')
    factors.set(alice.id, ['totp', 'recovery_code'])
    const wrongA = await t.auth.login({ email: 'alice@example.com', password: 'wrong' })
    const wrongB = await t.auth.login({ email: 'bob@example.com', password: 'wrong' })
    expect(wrongA).toEqual(wrongB)

    const first = await t.auth.login(
      { email: 'alice@example.com', password: PASSWORD },
      { ip: '192.0.2.5' },
    )
    if (first.ok || first.code !== 'second_factor_required') throw new Error('no second step')
    expect(first.methods).toEqual(['totp', 'recovery_code'])
    expect(await t.sessions.list(alice.id)).toEqual([])
    expect((await t.auth.login({ email: 'bob@example.com', password: PASSWORD })).ok).toBe(true)
    expect(bob.id).not.toBe(alice.id)

    // The continuation is JSON: the MFA step stores it in its challenge and hands it back.
    const continuation = JSON.parse(JSON.stringify(first.continuation)) as typeof first.continuation
    t.tick(30_000)
    const done = await t.auth.signIn.complete(continuation, { amr: ['otp'] }, { ip: '192.0.2.5' })
    if (!done.ok) throw new Error(done.code)
    expect(done.session).toMatchObject({
      aal: 2,
      amr: ['pwd', 'otp', 'mfa'],
      authTime: START + 30_000,
    })
    const events = await t.auth.audit.list({ userId: alice.id, type: 'login' })
    expect(events[0]?.detail).toEqual({ amr: 'pwd otp mfa' })

    // A disabled account cannot finish.
    const again = await t.auth.login({ email: 'alice@example.com', password: PASSWORD })
    if (again.ok || again.code !== 'second_factor_required') throw new Error('no second step')
    await t.auth.accounts.disableUser(alice.id)
    expect(await t.auth.signIn.complete(again.continuation, { amr: ['otp'] })).toMatchObject({
      code: 'invalid_credentials',
    })
  })

  it('a known password does not reset the backoff until the second factor is right too', async () => {
    const t = setup(await open(), { secondFactors: () => Promise.resolve(['totp'] as const) })
    await user(t)
    for (let i = 0; i < 4; i += 1) {
      await t.auth.login({ email: 'alice@example.com', password: 'wrong' })
    }
    const first = await t.auth.login({ email: 'alice@example.com', password: PASSWORD })
    if (first.ok || first.code !== 'second_factor_required') throw new Error('no second step')
    // Still counted: the fifth attempt started the lock.
    expect(await t.auth.login({ email: 'alice@example.com', password: PASSWORD })).toMatchObject({
      code: 'rate_limited',
    })
    expect((await t.auth.signIn.complete(first.continuation, { amr: ['otp'] })).ok).toBe(true)
    // The whole sign-in succeeded: the account's failures are forgotten.
    expect(await t.auth.login({ email: 'alice@example.com', password: PASSWORD })).toMatchObject({
      code: 'second_factor_required',
    })
  })

  it('afterFirstFactor: where passkeys, identity providers and e-mailed codes join', async () => {
    const factors: readonly SecondFactorMethod[] = ['totp']
    const t = setup(await open(), { secondFactors: () => Promise.resolve(factors) })
    const alice = await user(t)
    const passkey = await t.auth.signIn.afterFirstFactor(alice.id, { amr: ['hwk', 'user'], aal: 2 })
    if (!passkey.ok) throw new Error(passkey.code)
    expect(passkey.session).toMatchObject({ aal: 2, amr: ['hwk', 'user'] })
    const code = await t.auth.signIn.afterFirstFactor(alice.id, { amr: ['otp'] })
    expect(code).toMatchObject({ ok: false, code: 'second_factor_required', methods: ['totp'] })
    const admin = await t.auth.signIn.afterFirstFactor(
      alice.id,
      { amr: ['fed'], aal: 2 },
      adminOptions(t),
    )
    expect(admin).toMatchObject({ code: 'forbidden' })
    await t.auth.accounts.disableUser(alice.id)
    expect(await t.auth.signIn.afterFirstFactor(alice.id, { amr: ['fed'], aal: 2 })).toMatchObject({
      code: 'invalid_credentials',
    })
    expect(await t.auth.signIn.afterFirstFactor('no-such-user', { amr: ['fed'] })).toMatchObject({
      code: 'invalid_credentials',
    })
  })

  it('verifyUserPassword (a password change, a re-authentication): the sign-in limiter and cap, no session', async () => {
    const t = setup(await open())
    const alice = await user(t)
    const ok = await t.auth.signIn.verifyUserPassword(alice.id, PASSWORD)
    expect(ok).toMatchObject({
      ok: true,
      user: { id: alice.id },
      auth: { time: START, aal: 1, amr: ['pwd'] },
    })
    expect(await t.sessions.list(alice.id)).toEqual([])
    expect(await t.auth.audit.list({ type: 'login' })).toEqual([])
    const before = { ...t.passwords.calls }
    const long = 'x'.repeat(MAX_PASSWORD_INPUT + 1)
    expect(await t.auth.signIn.verifyUserPassword(alice.id, long)).toMatchObject({
      code: 'invalid_credentials',
    })
    expect(t.passwords.calls).toEqual(before)
    // Guesses here and at sign-in count against one account limit.
    for (let i = 0; i < 3; i += 1) await t.auth.signIn.verifyUserPassword(alice.id, 'wrong')
    await t.auth.login({ email: 'alice@example.com', password: 'wrong' })
    const locked = await t.auth.signIn.verifyUserPassword(alice.id, PASSWORD, {
      audit: { action: 'reauthenticate' },
    })
    expect(locked).toMatchObject({ code: 'rate_limited', retryAfterSeconds: 1 })
    expect(t.passwords.calls.verify - before.verify).toBe(4)
    const [limited] = await t.auth.audit.list({ type: 'rate_limited' })
    expect(limited).toMatchObject({ userId: alice.id, detail: { action: 'reauthenticate' } })
    await t.auth.accounts.disableUser(alice.id)
    t.tick(60_000)
    expect(await t.auth.signIn.verifyUserPassword(alice.id, PASSWORD)).toMatchObject({
      code: 'invalid_credentials',
    })
  })

  it('createSignIn works on its own parts, without the auth service', async () => {
    const db = await open()
    const now = (): number => START
    const sessions = createTestSessions(now)
    const audit = createAuditLog(db, { now })
    const accounts = createAccounts(db, { sessions, audit, now })
    const passwords = createTestHasher()
    await accounts.createUser({
      email: 'a@example.com',
      passwordHash: await passwords.hash(PASSWORD),
    })
    const signIn = createSignIn({
      accounts,
      credentials: createCredentials(db, { now }),
      passwords,
      sessions,
      audit,
      now,
    })
    const result = await signIn.password({ email: 'a@example.com', password: PASSWORD })
    expect(result.ok).toBe(true)
  })
})
