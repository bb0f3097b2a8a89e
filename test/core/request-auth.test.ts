import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { TesseraError } from '../../src/core/errors.js'
import { createKeyring } from '../../src/core/keyring.js'
import {
  checkPermissionName,
  createRequestAuth,
  parseBearerToken,
  refusalBody,
  type BearerVerifier,
} from '../../src/core/request-auth.js'
import { createSessionManager } from '../../src/core/session-manager.js'
import { createMemoryStore } from '../../src/stores/memory.js'

const SITE = 'https://app.example.test'

function setup(bearer?: BearerVerifier): {
  auth: ReturnType<typeof createRequestAuth>
  sessions: ReturnType<typeof createSessionManager>
} {
  const keyring = createKeyring(Buffer.alloc(32, 3).toString('base64url') + 'Zq9!')
  const sessions = createSessionManager(createMemoryStore(), keyring)
  const auth = createRequestAuth({
    sessions,
    keyring,
    trustedOrigins: [SITE],
    ...(bearer === undefined ? {} : { bearer }),
  })
  return { auth, sessions }
}

describe('createRequestAuth', () => {
  it('fails at setup on unusable trusted origins and permission names', () => {
    const { sessions } = setup()
    expect(() => createRequestAuth({ sessions, trustedOrigins: ['null'] })).toThrow(/origin/)
    expect(() =>
      createRequestAuth({ sessions, trustedOrigins: ['https://a.example/path'] }),
    ).toThrow()
    expect(checkPermissionName('notes.read')).toBe('notes.read')
    for (const bad of ['notes', 'Notes.read', '.read', 'notes.', '']) {
      expect(() => checkPermissionName(bad)).toThrow(/app\.action/)
    }
  })

  it('emits the sign-in cookie, then the clearing cookie, and tracks session and user', async () => {
    const { auth, sessions } = setup()
    const emitted: string[] = []
    const result = await auth.authenticate({ method: 'POST', secFetchSite: 'same-origin' }, (v) =>
      emitted.push(v),
    )
    if (!result.ok) throw new Error('refused')
    const session = await result.state.signIn('u1', { data: { permissions: ['a.b'] } })
    expect(result.state.user).toEqual({
      id: 'u1',
      permissions: ['a.b'],
      via: 'session',
      record: undefined,
    })
    expect(emitted[0]?.startsWith(`${sessions.cookieName}=`)).toBe(true)
    expect(auth.requirePermission(result.state, 'a.b')).toBeNull()
    expect(auth.requirePermission(result.state, 'a.c')?.status).toBe(403)
    expect(result.state.csrfToken()).toMatch(/\./)
    await result.state.signOut()
    expect(result.state.user).toBeNull()
    expect(auth.requireAuth(result.state)?.code).toBe('unauthenticated')
    expect(emitted[1]).toBe(sessions.clearCookie())
    expect(await sessions.list('u1')).toEqual([])
    expect(session.userId).toBe('u1')
  })

  it('maps an unreachable JWKS to 503 and reads scope claims as permissions', async () => {
    const down: BearerVerifier = {
      verify: () => Promise.resolve({ ok: false, code: 'jwks_unavailable' }),
    }
    const refused = await setup(down).auth.authenticate(
      { method: 'GET', authorization: 'Bearer abc.def.ghi' },
      () => undefined,
    )
    expect(refused.ok ? null : refused.refusal.status).toBe(503)
    const scoped: BearerVerifier = {
      verify: () => Promise.resolve({ ok: true, claims: { sub: 'svc', scope: 'a.read  b.write' } }),
    }
    const result = await setup(scoped).auth.authenticate(
      { method: 'GET', authorization: 'Bearer abc.def.ghi' },
      () => undefined,
    )
    expect(result.ok && result.state.user?.permissions).toEqual(['a.read', 'b.write'])
    expect(refusalBody({ status: 401, code: 'invalid_token', message: 'm', headers: {} })).toEqual({
      error: { code: 'invalid_token', message: 'm' },
    })
  })

  it('never throws and never authenticates arbitrary header values', async () => {
    const { auth, sessions } = setup({
      verify: () => Promise.resolve({ ok: false, code: 'token_invalid' }),
    })
    const header = fc.option(fc.string({ maxLength: 200 }), { nil: undefined })
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'DELETE', 'get', 'PATCH', 'X'),
        header,
        header,
        header,
        header,
        header,
        async (method, value, authorization, secFetchSite, origin, csrfToken) => {
          const cookie = value === undefined ? undefined : `${sessions.cookieName}=${value}`
          const result = await auth.authenticate(
            { method, cookie, authorization, secFetchSite, origin, csrfToken },
            () => undefined,
          )
          if (result.ok) expect(result.state.user).toBeNull()
          else expect([401, 403]).toContain(result.refusal.status)
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe('createRequestAuth options the server and the admin panel need', () => {
  const keyring = createKeyring(Buffer.alloc(32, 5).toString('base64url') + 'Zq9!')

  function cookieOf(setCookie: string): string {
    return setCookie.split(';')[0] ?? ''
  }

  it('loadUser: the record and permissions come from it, a refused user makes the request anonymous', async () => {
    const sessions = createSessionManager(createMemoryStore(), keyring)
    const users = new Map([
      ['ann', { id: 'ann', active: true, grants: ['notes.read'] }],
      ['bob', { id: 'bob', active: false, grants: [] }],
    ])
    const auth = createRequestAuth({
      sessions,
      keyring,
      trustedOrigins: [SITE],
      loadUser: ({ userId }) => {
        const user = users.get(userId)
        return user?.active === true ? { permissions: user.grants, record: user } : null
      },
    })
    const ann = cookieOf((await sessions.create('ann')).setCookie)
    const result = await auth.authenticate({ method: 'GET', cookie: ann }, () => undefined)
    if (!result.ok) throw new Error('refused')
    expect(result.state.user?.record).toBe(users.get('ann'))
    expect(auth.requirePermission(result.state, 'notes.read')).toBeNull()
    // SECURITY: a disabled user's live session authenticates nothing, on the next request already.
    const bob = cookieOf((await sessions.create('bob')).setCookie)
    const refused = await auth.authenticate({ method: 'GET', cookie: bob }, () => undefined)
    expect(refused.ok && refused.state.user).toBeNull()
    expect(refused.ok && refused.state.session).toBeNull()
    // A cookie-authenticated unsafe request of a refused user still needs its proof.
    const post = await auth.authenticate({ method: 'POST', cookie: bob }, () => undefined)
    expect(post.ok ? null : post.refusal.code).toBe('csrf_failed')
    expect(() =>
      createRequestAuth({
        sessions,
        trustedOrigins: [SITE],
        permissions: () => [],
        loadUser: () => null,
      }),
    ).toThrow(/not both/)
  })

  it('bearer requireSession: the token works while its session lives, and stops when it ends', async () => {
    const sessions = createSessionManager(createMemoryStore(), keyring)
    const issued = await sessions.create('cy')
    const claims = { sub: 'cy', sid: issued.session.id }
    const verifier: BearerVerifier = { verify: () => Promise.resolve({ ok: true, claims }) }
    for (const onInvalid of ['refuse', 'anonymous'] as const) {
      const auth = createRequestAuth({
        sessions,
        trustedOrigins: [SITE],
        bearer: { verifier, requireSession: true, onInvalid },
      })
      const request = { method: 'GET', authorization: 'Bearer a.b.c' }
      const live = await auth.authenticate(request, () => undefined)
      expect(live.ok && live.state.session?.id).toBe(issued.session.id)
      expect(live.ok && live.state.user?.via).toBe('bearer')
    }
    await sessions.revoke(issued.session)
    const strict = createRequestAuth({
      sessions,
      trustedOrigins: [SITE],
      bearer: { verifier, requireSession: true },
    })
    const gone = await strict.authenticate(
      { method: 'GET', authorization: 'Bearer a.b.c' },
      () => undefined,
    )
    expect(gone.ok ? null : [gone.refusal.status, gone.refusal.code]).toEqual([
      401,
      'invalid_token',
    ])
    expect(gone.ok ? null : gone.refusal.headers['WWW-Authenticate']).toContain('invalid_token')
    // The server's contract: a refused token is no token (401 unauthenticated from the guard).
    const lenient = createRequestAuth({
      sessions,
      trustedOrigins: [SITE],
      bearer: { verifier, requireSession: true, onInvalid: 'anonymous' },
    })
    const anonymous = await lenient.authenticate(
      { method: 'GET', authorization: 'Bearer a.b.c' },
      () => undefined,
    )
    if (!anonymous.ok) throw new Error('refused')
    expect(anonymous.state.user).toBeNull()
    expect(lenient.requireAuth(anonymous.state)?.code).toBe('unauthenticated')
    // SECURITY: an anonymous request with a junk bearer header still meets the cross-site rule.
    const cross = await lenient.authenticate(
      { method: 'POST', authorization: 'Bearer junk', origin: 'https://evil.example' },
      () => undefined,
    )
    expect(cross.ok ? null : cross.refusal.code).toBe('csrf_failed')
  })

  it("bearer crossSite 'check' refuses a cross-site unsafe bearer request; 'skip' lets it through", async () => {
    const sessions = createSessionManager(createMemoryStore(), keyring)
    const verifier: BearerVerifier = {
      verify: () => Promise.resolve({ ok: true, claims: { sub: 'dee' } }),
    }
    const request = {
      method: 'POST',
      authorization: 'Bearer a.b.c',
      origin: 'https://other.example',
    }
    const checked = createRequestAuth({
      sessions,
      trustedOrigins: [SITE],
      bearer: { verifier, crossSite: 'check' },
    })
    const refused = await checked.authenticate(request, () => undefined)
    expect(refused.ok ? null : refused.refusal.code).toBe('csrf_failed')
    const skipped = createRequestAuth({ sessions, trustedOrigins: [SITE], bearer: verifier })
    const allowed = await skipped.authenticate(request, () => undefined)
    expect(allowed.ok && allowed.state.user?.id).toBe('dee')
  })

  it("csrf proof 'form-token': an unsafe request of a session needs the token bound to the scope, whatever the headers", async () => {
    const admin = createSessionManager(createMemoryStore(), keyring, {
      cookieName: 'tessera_admin',
      purpose: 'admin-session',
    })
    const auth = createRequestAuth({
      sessions: admin,
      keyring,
      trustedOrigins: [SITE],
      csrf: { proof: 'form-token', scope: 'admin' },
    })
    const cookie = cookieOf((await admin.create('root')).setCookie)
    const page = await auth.authenticate({ method: 'GET', cookie }, () => undefined)
    if (!page.ok) throw new Error('refused')
    const token = page.state.csrfToken()
    const post = (headers: Record<string, string | undefined>) =>
      auth.authenticate({ method: 'POST', cookie, ...headers }, () => undefined)
    // Same-origin headers alone are not enough for a form: the token is required.
    const noToken = await post({ secFetchSite: 'same-origin', origin: SITE })
    expect(noToken.ok ? null : noToken.refusal.code).toBe('csrf_failed')
    expect((await post({ csrfToken: token })).ok).toBe(true)
    expect((await post({ csrfToken: token, origin: SITE })).ok).toBe(true)
    // The Origin and Sec-Fetch-Site rules still apply with a valid token.
    const cross = await post({ csrfToken: token, origin: 'https://evil.example' })
    expect(cross.ok ? null : cross.refusal.code).toBe('csrf_failed')
    // A token bound to the bare session id (an API token) is not a form token of the scope.
    const { createCSRFToken } = await import('../../src/core/csrf.js')
    if (page.state.session === null) throw new Error('no session')
    const unscoped = createCSRFToken(keyring, page.state.session.id)
    expect((await post({ csrfToken: unscoped })).ok).toBe(false)
    expect(() =>
      createRequestAuth({ sessions: admin, trustedOrigins: [SITE], csrf: { proof: 'form-token' } }),
    ).toThrow(/keyring/)
    expect(() =>
      createRequestAuth({
        sessions: admin,
        keyring,
        trustedOrigins: [SITE],
        csrf: { scope: 'A:' },
      }),
    ).toThrow(/scope/)
  })

  it('answers a store outage with 503 and Retry-After from the one error table', async () => {
    const sessions = createSessionManager(createMemoryStore(), keyring)
    const cookie = cookieOf((await sessions.create('eve')).setCookie)
    const auth = createRequestAuth({
      sessions,
      trustedOrigins: [SITE],
      loadUser: () => {
        throw new TesseraError('store_unavailable', 'postgres at 10.0.0.5 refused')
      },
    })
    const result = await auth.authenticate({ method: 'GET', cookie }, () => undefined)
    if (result.ok) throw new Error('not refused')
    expect(result.refusal.status).toBe(503)
    expect(result.refusal.code).toBe('unavailable')
    expect(result.refusal.headers['Retry-After']).toBe('1')
    expect(result.refusal.message).not.toContain('10.0.0.5')
  })

  it('parseBearerToken is the one bearer parser: scheme in any case, one token, nothing else', () => {
    expect(parseBearerToken('Bearer abc.def')).toBe('abc.def')
    expect(parseBearerToken('bearer   abc')).toBe('abc')
    expect(parseBearerToken('BEARER\tabc=')).toBe('abc=')
    for (const malformed of ['Bearer', 'Bearer ', 'Bearer a b', 'Bearer a,b', 'Bearer \u00ff']) {
      expect(parseBearerToken(malformed)).toBe('')
    }
    for (const other of [undefined, null, 'Basic abc', 'Bearerabc', 'Negotiate x']) {
      expect(parseBearerToken(other)).toBeNull()
    }
  })
})
