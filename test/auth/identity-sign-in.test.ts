/*
 * The library form of identity-provider sign-in (`tessera-auth/auth`): the settings as
 * arguments, over a real OpenID provider (oidc-provider in this process), SQLite, the session
 * manager over the memory store and the sign-in pipeline. What the server's routes add (HTTP) is
 * tested in test/server/oidc.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { createDatabase, migrateToLatest } from '../../src/auth/db/database.js'
import { createIdentities } from '../../src/auth/identities.js'
import { createIdentityProviders } from '../../src/auth/identity-providers.js'
import {
  createIdentitySignIn,
  IDENTITY_CALLBACK_ACTION,
  safeReturnTo,
  type IdentitySignInDeps,
} from '../../src/auth/identity-sign-in.js'
import { createActionLimiter } from '../../src/auth/action-limiter.js'
import { createFileOutboxMailer } from '../../src/auth/mailer.js'
import { createMemoryRateLimitStore } from '../../src/auth/rate-limit.js'
import { createAuthService } from '../../src/auth/service.js'
import { createTrustedOrigins } from '../../src/core/csrf.js'
import { TesseraError } from '../../src/core/errors.js'
import { createKeyring } from '../../src/core/keyring.js'
import { createTestHasher, createTestSessions } from '../helpers/auth-fixtures.js'
import { ProviderBrowser, startTestProvider, type TestProvider } from '../helpers/oidc-provider.js'

const PUBLIC_URL = 'http://127.0.0.1:4555'
const SECRET = 'k7Pq2LmX9vR4pZc8KsY1dHf6gJb3nQa5eUoIiWrVyEt'

describe('createIdentitySignIn (the library form)', () => {
  let op: TestProvider

  beforeAll(async () => {
    op = await startTestProvider({
      redirectUris: [`${PUBLIC_URL}/auth/oidc/test/callback`],
      cookiePrefix: 'lib',
    })
  })
  afterAll(async () => {
    await op?.close()
  })

  async function setup(
    options: {
      secondFactorFor?: Set<string>
      signup?: 'open' | 'closed'
      verified?: string[]
    } = {},
  ) {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-idp-'))
    const db = await createDatabase(`sqlite:${join(dir, 'accounts.db')}`)
    onTestFinished(async () => {
      await db.destroy()
      rmSync(dir, { recursive: true, force: true })
    })
    await migrateToLatest(db)
    const now = Date.now
    const sessions = createTestSessions(now)
    const auth = createAuthService(db, {
      sessions,
      passwords: createTestHasher(),
      publicUrl: PUBLIC_URL,
      mailer: createFileOutboxMailer({ from: 'tessera@example.test', directory: join(dir, 'out') }),
      secondFactors: (user) =>
        Promise.resolve(options.secondFactorFor?.has(user.email) === true ? ['totp'] : []),
    })
    const providers = createIdentityProviders(
      [{ name: 'test', issuer: op.issuer, clientId: op.clientId, clientSecret: op.clientSecret }],
      { publicUrl: PUBLIC_URL, onWarning: () => undefined },
    )
    const verified = options.verified ?? []
    const deps: IdentitySignInDeps = {
      providers,
      identities: createIdentities(db, { audit: auth.audit }),
      accounts: auth.accounts,
      signIn: auth.signIn,
      audit: auth.audit,
      keyring: createKeyring(SECRET),
      publicUrl: PUBLIC_URL,
      trustedOrigins: createTrustedOrigins([PUBLIC_URL]),
      signup: options.signup ?? 'open',
      markEmailVerified: (userId) => {
        verified.push(userId)
        return Promise.resolve()
      },
    }
    return { idp: createIdentitySignIn(deps), deps, auth, sessions, verified }
  }

  async function roundTrip(idp: ReturnType<typeof createIdentitySignIn>, login: string) {
    const started = await idp.begin('test', { returnTo: '/next' })
    const cookieHeader = started.setCookie.split(';')[0] ?? ''
    const back = await new ProviderBrowser().signIn(started.location, login)
    return idp.callback('test', { url: back, cookieHeader, ip: '192.0.2.1', userAgent: 'test' })
  }

  it('signs a new identity in with a session of amr fed; e-mail verification follows the provider', async () => {
    const { idp, verified } = await setup()
    op.accounts.set('lib-verified', { email: 'lib-verified@example.test', emailVerified: true })
    op.accounts.set('lib-unverified', {
      email: 'lib-unverified@example.test',
      emailVerified: false,
    })
    const first = await roundTrip(idp, 'lib-verified')
    expect(first).toMatchObject({ ok: true, kind: 'signed_in', returnTo: '/next' })
    if (!first.ok || first.kind !== 'signed_in') return
    expect(first.signedIn.session).toMatchObject({ amr: ['fed'], aal: 1 })
    expect(first.signedIn.setCookie).toMatch(/^tessera_session=/)
    expect(first.clearCookie).toMatch(/^tessera_oidc=; Max-Age=0/)
    const second = await roundTrip(idp, 'lib-unverified')
    expect(second.ok).toBe(true)
    // Only the account whose provider said email_verified: true.
    expect(verified).toEqual([first.signedIn.user.id])
  })

  it('still asks for the second factor of an account that has one: no session until it is given', async () => {
    const { idp, auth, sessions } = await setup({
      secondFactorFor: new Set(['lib-mfa@example.test']),
    })
    op.accounts.set('lib-mfa', { email: 'lib-mfa@example.test', emailVerified: true })
    // The first sign-in creates the account and is already asked for the factor.
    const result = await roundTrip(idp, 'lib-mfa')
    expect(result).toMatchObject({ ok: false, code: 'second_factor_required' })
    if (result.ok || result.code !== 'second_factor_required') return
    expect(result.secondFactor.methods).toEqual(['totp'])
    expect(await sessions.list(result.identity.userId)).toEqual([])
    // The MFA step, once the factor is verified, completes the same continuation.
    const done = await auth.signIn.complete(result.secondFactor.continuation, { amr: ['otp'] })
    expect(done.ok).toBe(true)
    if (done.ok) expect(done.session).toMatchObject({ aal: 2, amr: ['fed', 'otp', 'mfa'] })
  })

  it('creates no account when signup is closed, and signs in an identity already linked', async () => {
    const { idp } = await setup({ signup: 'closed' })
    const refused = await roundTrip(idp, 'lib-closed')
    expect(refused).toMatchObject({ ok: false, code: 'refused', reason: 'signup_closed' })
  })

  it('names the state cookie __Host- on https: Secure, HttpOnly, SameSite=Lax, Path=/, 10 minutes', async () => {
    const { deps } = await setup()
    const idp = createIdentitySignIn({ ...deps, secure: true })
    expect(idp.cookieName).toBe('__Host-tessera_oidc')
    const { setCookie } = await idp.begin('test')
    expect(setCookie).toMatch(
      /^__Host-tessera_oidc=s1\.[^;]+; Max-Age=600; Path=\/; Secure; HttpOnly; SameSite=Lax$/,
    )
  })

  it('limits callbacks with a state per client IP, before any request to the provider', async () => {
    const { deps } = await setup()
    const idp = createIdentitySignIn({
      ...deps,
      limiter: createActionLimiter({
        store: createMemoryRateLimitStore(),
        policies: { [IDENTITY_CALLBACK_ACTION]: { ip: { limit: 2, window: 900 } } },
      }),
    })
    const started = await idp.begin('test')
    const cookieHeader = started.setCookie.split(';')[0] ?? ''
    const url = new URL(`${PUBLIC_URL}/auth/oidc/test/callback?code=guess&state=guess`)
    for (let attempt = 0; attempt < 2; attempt++) {
      expect(await idp.callback('test', { url, cookieHeader, ip: '198.51.100.7' })).toMatchObject({
        reason: 'state_mismatch',
      })
    }
    const limited = await idp.callback('test', { url, cookieHeader, ip: '198.51.100.7' })
    expect(limited).toMatchObject({ ok: false, reason: 'rate_limited' })
    if (!limited.ok && limited.code === 'refused')
      expect(limited.retryAfterSeconds).toBeGreaterThan(0)
    // Another client is not limited by it.
    expect(await idp.callback('test', { url, cookieHeader, ip: '198.51.100.8' })).toMatchObject({
      reason: 'state_mismatch',
    })
  })

  it('throws not_found for an unknown provider at begin, and refuses it at the callback', async () => {
    const { idp } = await setup()
    await expect(idp.begin('nosuch')).rejects.toThrow(TesseraError)
    const refused = await idp.callback('nosuch', {
      url: new URL(`${PUBLIC_URL}/x?code=1&state=2`),
      cookieHeader: '',
    })
    expect(refused).toMatchObject({ ok: false, reason: 'unknown_provider' })
  })

  it('does not open a tampered state cookie', async () => {
    const { idp } = await setup()
    const started = await idp.begin('test')
    const back = await new ProviderBrowser().signIn(started.location, 'lib-foreign')
    const tampered = (started.setCookie.split(';')[0] ?? '').replace(/.$/, (c) =>
      c === 'A' ? 'B' : 'A',
    )
    expect(await idp.callback('test', { url: back, cookieHeader: tampered })).toMatchObject({
      ok: false,
      reason: 'state_missing',
    })
  })
})

describe('safeReturnTo', () => {
  const trusted = createTrustedOrigins(['https://app.example.com'])

  it('keeps paths of the site and URLs on trusted origins, and nothing else', () => {
    expect(safeReturnTo('/a/b?c=1#d', 'https://auth.example.com', trusted)).toBe('/a/b?c=1#d')
    expect(safeReturnTo('https://app.example.com/x', 'https://auth.example.com', trusted)).toBe(
      'https://app.example.com/x',
    )
    expect(safeReturnTo('https://auth.example.com/y', 'https://auth.example.com', trusted)).toBe(
      'https://auth.example.com/y',
    )
    for (const bad of [
      'https://evil.example',
      '//evil.example/x',
      '/\\evil.example',
      '\\\\evil.example',
      'https://app.example.com.evil.example/',
      'https://user@app.example.com/',
      'javascript:alert(1)',
      'data:text/html,x',
      '/\t/evil.example',
      '/.//evil.example',
      '/a/..//evil.example',
      'http://app.example.com/',
      '',
    ]) {
      expect(safeReturnTo(bad, 'https://auth.example.com', trusted), bad).toBe('/')
    }
  })

  it('never answers a URL on an untrusted origin, whatever the input (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.webUrl(), fc.webPath()), (value) => {
        const out = safeReturnTo(value, 'https://auth.example.com', trusted)
        const resolved = new URL(out, 'https://auth.example.com')
        expect(['https://auth.example.com', 'https://app.example.com']).toContain(resolved.origin)
      }),
      { numRuns: 500 },
    )
  })
})
