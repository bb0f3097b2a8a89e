import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createKeyring } from '../../src/core/keyring.js'
import {
  checkPermissionName,
  createRequestAuth,
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
    expect(result.state.user).toEqual({ id: 'u1', permissions: ['a.b'], via: 'session' })
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
