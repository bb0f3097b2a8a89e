import { describe, expect, it } from 'vitest'
import { describeWithPostgresAndRedis } from '../../helpers/services.js'
import { createCSRFToken } from '../../../src/core/csrf.js'
import { createSetupLink } from '../../../src/server/admin/index.js'
import { escapeHtml, html } from '../../../src/server/admin/html.js'
import { ADMIN_EMAIL, buildAdmin, Client, type AdminBackend } from './fixture.js'

/** A page's HTML without the `<wbr />` break opportunities e-mail addresses carry. */
async function pageText(response: Response): Promise<string> {
  return (await response.text()).replaceAll('<wbr />', '')
}

async function userByEmail(f: Awaited<ReturnType<typeof buildAdmin>>, email: string) {
  return f.auth.accounts.findUserByEmail(email)
}

/** Every HTTP case of the panel, on one backend (each case builds its own fixture on it). */
function adminSuite(name: string, backend: () => AdminBackend): void {
  const build = (options: Omit<Parameters<typeof buildAdmin>[0], 'backend'> = {}) =>
    buildAdmin({ ...options, backend: backend() })

  describe(name, () => {
    describe('admin panel: access control', () => {
      it('sends an anonymous visitor to the sign-in page, for pages and for actions', async () => {
        const f = await build()
        const client = new Client(f.app)
        for (const path of ['/admin', '/admin/users', '/admin/keys', '/admin/audit']) {
          const res = await client.get(path)
          expect(res.status, path).toBe(303)
          expect(res.headers.get('location')).toBe('/admin/login')
        }
        const post = await client.post('/admin/keys/rotate', { _csrf: 'x' })
        expect(post.status).toBe(303)
        expect(post.headers.get('location')).toBe('/admin/login')
      })

      it('redirects /admin/ to /admin', async () => {
        const f = await build()
        const res = await new Client(f.app).get('/admin/')
        expect(res.status).toBe(308)
        expect(res.headers.get('location')).toBe('/admin')
      })

      it('signs an administrator in with a fresh admin session cookie and shows the dashboard', async () => {
        const f = await build()
        const client = new Client(f.app)
        const res = await client.signIn()
        expect(res.status).toBe(303)
        expect(res.headers.get('location')).toBe('/admin')
        const cookie = res.headers.getSetCookie().find((c) => c.startsWith('tessera_admin='))
        expect(cookie).toMatch(/HttpOnly/i)
        expect(cookie).toMatch(/SameSite=Strict/i)
        expect(cookie).toMatch(/Path=\/admin/i)
        const page = await client.get('/admin')
        expect(page.status).toBe(200)
        const text = await page.text()
        expect(text).toContain('Signed in as root@example.com.')
        expect(text).toContain('id="count-users">1<')
        // The flash shows once.
        expect(await (await client.get('/admin')).text()).not.toContain('Signed in as')
      })

      it('counts the live sessions on the dashboard with the server’s own count', async () => {
        const f = await build()
        const client = new Client(f.app)
        await client.signIn() // an admin panel session: it lives in the same store
        const id = await f.createUser('counted@example.com')
        await f.appSessions.create(id)
        const ended = await f.appSessions.create(id)
        await f.appSessions.create(null)
        await f.appSessions.revoke(ended.session)
        const text = await (await client.get('/admin')).text()
        expect(text).toMatch(/id="count-sessions">\s*3\s*</)
        expect(text).not.toContain('the store cannot count')
        expect(await f.backends.countSessions?.()).toBe(3)
      })

      it('refuses a wrong password with one message and records a failed login', async () => {
        const f = await build()
        const client = new Client(f.app)
        const wrong = await client.signIn(ADMIN_EMAIL, 'not the password at all')
        expect(wrong.status).toBe(401)
        const unknown = await client.signIn('nobody@example.com', 'not the password at all')
        expect(unknown.status).toBe(401)
        expect(await wrong.text()).toContain('E-mail or password is incorrect.')
        expect(client.cookies.has('tessera_admin')).toBe(false)
        await client.signIn()
        expect(await (await client.get('/admin')).text()).toContain('id="count-failed">2<')
      })

      it('throttles sign-in with the login limiter: locked after the free failures, even with the right password', async () => {
        const f = await build()
        const client = new Client(f.app)
        for (let i = 0; i < 5; i++) {
          expect((await client.signIn(ADMIN_EMAIL, 'a wrong password here')).status).toBe(401)
        }
        const locked = await client.signIn()
        expect(locked.status).toBe(429)
        expect(Number(locked.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
        expect(await locked.text()).toContain('Too many attempts')
        expect(client.cookies.has('tessera_admin')).toBe(false)
        const events = await f.auth.audit.list({ type: 'rate_limited' })
        expect(events[0]?.detail.action).toBe('admin_login')
      })

      it('answers 403 to a user who is not an administrator, and admits admin.access', async () => {
        const f = await build()
        const userId = await f.createUser('plain@example.com', { password: 'plain user password' })
        const client = new Client(f.app)
        const res = await client.signIn('plain@example.com', 'plain user password')
        expect(res.status).toBe(403)
        expect(await res.text()).toContain('This account may not use the admin panel.')
        expect(client.cookies.has('tessera_admin')).toBe(false)
        // A session of that user (as if made before a demotion) is refused too.
        const issued = await f.adminSessions.create(userId)
        const direct = await f.app.request('/admin', {
          headers: { cookie: issued.setCookie.split(';')[0] ?? '' },
        })
        expect(direct.status).toBe(403)

        await f.auth.accounts.grantPermission(userId, 'admin.access')
        expect((await client.signIn('plain@example.com', 'plain user password')).status).toBe(303)
        expect((await client.get('/admin/users')).status).toBe(200)
      })

      it('ends access at once when the administrator is demoted or disabled', async () => {
        const f = await build()
        const client = new Client(f.app)
        await client.signIn()
        expect((await client.get('/admin')).status).toBe(200)
        const admin = await userByEmail(f, ADMIN_EMAIL)
        await f.auth.accounts.setAdmin(admin?.id ?? '', { isAdmin: false })
        expect((await client.get('/admin')).status).toBe(403)
      })

      it('signs out: the session is deleted, so a copy of the cookie no longer works', async () => {
        const f = await build()
        const client = new Client(f.app)
        await client.signIn()
        const copy = client.cookieHeader()
        const res = await client.submit('/admin/logout', {})
        expect(res.status).toBe(303)
        expect(res.headers.get('location')).toBe('/admin/login?signed_out=1')
        const again = await f.app.request('/admin', { headers: { cookie: copy } })
        expect(again.status).toBe(303)
        expect(again.headers.get('location')).toBe('/admin/login')
      })
    })

    describe('admin panel: headers', () => {
      it('sends a strict CSP with a per-response nonce used by the stylesheet, and no-store', async () => {
        const f = await build()
        const client = new Client(f.app)
        const first = await client.get('/admin/login')
        const second = await client.get('/admin/login')
        const csp = first.headers.get('content-security-policy') ?? ''
        expect(csp).toContain("script-src 'none'")
        expect(csp).not.toContain('unsafe-inline')
        expect(csp).not.toContain('unsafe-eval')
        expect(csp).toContain("frame-ancestors 'none'")
        expect(csp).toContain("form-action 'self'")
        const nonce = /'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1]
        expect(nonce).toBeDefined()
        expect(await first.text()).toContain(`<style nonce="${nonce}">`)
        expect(second.headers.get('content-security-policy')).not.toBe(csp)
        expect(first.headers.get('cache-control')).toBe('no-store')
        expect(first.headers.get('x-frame-options')).toBe('DENY')
        expect(first.headers.get('x-content-type-options')).toBe('nosniff')
        expect(first.headers.get('content-type')).toMatch(/^text\/html/)
      })

      it('has no script element, no inline handler and no javascript: URL on any page', async () => {
        const f = await build()
        const client = new Client(f.app)
        await client.signIn()
        const id = (await userByEmail(f, ADMIN_EMAIL))?.id ?? ''
        for (const path of [
          '/admin',
          '/admin/users',
          `/admin/users/${id}`,
          `/admin/users/${id}/sessions`,
          '/admin/sessions',
          '/admin/groups',
          '/admin/audit',
          '/admin/keys',
        ]) {
          const res = await client.get(path)
          expect(res.status, path).toBe(200)
          const text = await res.text()
          expect(text, path).not.toMatch(/<script/i)
          expect(text, path).not.toMatch(/\son[a-z]+=/i)
          expect(text, path).not.toMatch(/javascript:/i)
          expect(res.headers.get('content-security-policy'), path).toContain("script-src 'none'")
        }
      })
    })

    describe('admin panel: CSRF', () => {
      async function signedIn() {
        const f = await build()
        const client = new Client(f.app)
        await client.signIn()
        return { f, client }
      }

      it('refuses an action without a token, with a bad token, or with a token of another session', async () => {
        const { f, client } = await signedIn()
        const fields = { email: 'new@example.com', password: 'a new user password' }
        expect((await client.post('/admin/users', fields)).status).toBe(403)
        expect((await client.post('/admin/users', { ...fields, _csrf: 'forged' })).status).toBe(403)
        const other = createCSRFToken(f.keyring, 'admin:AAAAAAAAAAAAAAAAAAAAAA')
        const refused = await client.post('/admin/users', { ...fields, _csrf: other })
        expect(refused.status).toBe(403)
        expect(await refused.text()).toContain('csrf_failed')
        expect(await userByEmail(f, 'new@example.com')).toBeNull()
      })

      it('refuses a cross-site Origin or Sec-Fetch-Site even with a valid token', async () => {
        const { f, client } = await signedIn()
        const fields = { email: 'new@example.com', password: 'a new user password' }
        const token = await client.csrf('/admin/users')
        const evil = await client.post(
          '/admin/users',
          { ...fields, _csrf: token },
          { origin: 'https://evil.example' },
        )
        expect(evil.status).toBe(403)
        const site = await client.post(
          '/admin/users',
          { ...fields, _csrf: token },
          { 'sec-fetch-site': 'cross-site' },
        )
        expect(site.status).toBe(403)
        const nullOrigin = await client.post(
          '/admin/users',
          { ...fields, _csrf: token },
          { origin: 'null' },
        )
        expect(nullOrigin.status).toBe(403)
        expect(await userByEmail(f, 'new@example.com')).toBeNull()
        // The same token from the site itself works.
        expect((await client.post('/admin/users', { ...fields, _csrf: token })).status).toBe(303)
        expect(await userByEmail(f, 'new@example.com')).not.toBeNull()
      })

      it('protects the sign-in form (login CSRF): no token or a cross-site post signs nobody in', async () => {
        const f = await build()
        const client = new Client(f.app)
        const token = await client.csrf('/admin/login')
        const noToken = await client.post('/admin/login', {
          email: ADMIN_EMAIL,
          password: 'admin password for tests',
        })
        expect(noToken.status).toBe(403)
        const cross = await client.post(
          '/admin/login',
          { _csrf: token, email: ADMIN_EMAIL, password: 'admin password for tests' },
          { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
        )
        expect(cross.status).toBe(403)
        const fresh = new Client(f.app)
        const noCookie = await fresh.post('/admin/login', {
          _csrf: token,
          email: ADMIN_EMAIL,
          password: 'admin password for tests',
        })
        expect(noCookie.status).toBe(403)
        expect(client.cookies.has('tessera_admin')).toBe(false)
        expect(fresh.cookies.has('tessera_admin')).toBe(false)
      })
    })

    describe('admin panel: actions change the database', () => {
      async function signedIn() {
        const f = await build()
        const client = new Client(f.app)
        await client.signIn()
        return { f, client }
      }

      it('creates a user (and an administrator), with the form again on bad input', async () => {
        const { f, client } = await signedIn()
        const res = await client.submit('/admin/users', {
          email: 'Alice@Example.com',
          password: 'alice has a long password',
        })
        expect(res.status).toBe(303)
        const alice = await userByEmail(f, 'alice@example.com')
        expect(alice?.isAdmin).toBe(false)
        expect(res.headers.get('location')).toBe(`/admin/users/${alice?.id}`)
        expect(await (await client.get(res.headers.get('location') ?? '')).text()).toContain(
          'Created user alice@example.com.',
        )
        await client.submit('/admin/users', {
          email: 'boss@example.com',
          password: 'boss has a long password',
          isAdmin: '1',
        })
        expect((await userByEmail(f, 'boss@example.com'))?.isAdmin).toBe(true)

        const bad = await client.submit('/admin/users', {
          email: 'not an address',
          password: 'whatever long password',
        })
        expect(bad.status).toBe(400)
        const badText = await bad.text()
        expect(badText).toContain('email is not a valid address')
        expect(badText).toContain('value="not an address"')
        const weak = await client.submit('/admin/users', {
          email: 'weak@example.com',
          password: 'short',
        })
        expect(weak.status).toBe(400)
        const taken = await client.submit('/admin/users', {
          email: 'alice@example.com',
          password: 'alice has a long password',
        })
        expect(taken.status).toBe(409)
        const empty = await client.submit('/admin/users', {})
        expect(empty.status).toBe(400)
      })

      it('searches and pages users', async () => {
        const { f, client } = await signedIn()
        for (let i = 0; i < 30; i++) {
          await f.auth.accounts.createUser({
            email: `user${String(i).padStart(2, '0')}@example.com`,
          })
        }
        const first = await pageText(await client.get('/admin/users'))
        expect(first).toMatch(/31\s+users/)
        expect(first).toContain('rel="next"')
        const second = await pageText(await client.get('/admin/users?page=2'))
        expect(second).toContain('user29@example.com')
        expect(second).not.toContain('user00@example.com')
        const search = await pageText(await client.get('/admin/users?q=user07'))
        expect(search).toContain('user07@example.com')
        expect(search).not.toContain('user08@example.com')
        expect((await client.get('/admin/users?page=-1')).status).toBe(200)
        expect((await client.get('/admin/users?page=abc')).status).toBe(200)
      })

      it('disables, enables, sets admin, and deletes a user; refuses to do it to yourself', async () => {
        const { f, client } = await signedIn()
        const id = await f.createUser('bob@example.com')
        await f.appSessions.create(id)
        const path = `/admin/users/${id}`
        expect((await client.submit(`${path}/disable`, {}, path)).status).toBe(303)
        expect((await f.auth.accounts.findUserById(id))?.isActive).toBe(false)
        expect(await f.appSessions.list(id)).toHaveLength(0)
        expect(await (await client.get(path)).text()).toContain('Disabled bob@example.com')
        await client.submit(`${path}/enable`, {}, path)
        expect((await f.auth.accounts.findUserById(id))?.isActive).toBe(true)
        await client.submit(`${path}/admin`, { isAdmin: '1' }, path)
        expect((await f.auth.accounts.findUserById(id))?.isAdmin).toBe(true)
        await client.submit(`${path}/admin`, { isAdmin: '0' }, path)
        expect((await f.auth.accounts.findUserById(id))?.isAdmin).toBe(false)
        await client.submit(`${path}/delete`, {}, path)
        expect(await f.auth.accounts.findUserById(id)).not.toBeNull()
        await client.submit(`${path}/delete`, { confirm: 'yes' }, path)
        expect(await f.auth.accounts.findUserById(id)).toBeNull()
        expect(await (await client.get('/admin/users')).text()).toContain(
          'Deleted bob@example.com.',
        )

        const me = (await userByEmail(f, ADMIN_EMAIL))?.id ?? ''
        await client.submit(`/admin/users/${me}/disable`, {}, `/admin/users/${me}`)
        await client.submit(`/admin/users/${me}/delete`, { confirm: 'yes' }, `/admin/users/${me}`)
        await client.submit(`/admin/users/${me}/admin`, { isAdmin: '0' }, `/admin/users/${me}`)
        const self = await f.auth.accounts.findUserById(me)
        expect(self?.isActive).toBe(true)
        expect(self?.isAdmin).toBe(true)
        expect(await (await client.get(`/admin/users/${me}`)).text()).toContain('You cannot')
      })

      it('answers 404 for an unknown user id, for pages and actions', async () => {
        const { client } = await signedIn()
        expect((await client.get('/admin/users/nope')).status).toBe(404)
        expect((await client.get('/admin/users/%3Cscript%3E')).status).toBe(404)
        expect((await client.submit('/admin/users/nope/disable', {})).status).toBe(404)
      })

      it('sets groups and direct permissions of a user, with an error for a bad codename', async () => {
        const { f, client } = await signedIn()
        const id = await f.createUser('carol@example.com')
        const editors = await f.auth.accounts.createGroup('editors')
        const viewers = await f.auth.accounts.createGroup('viewers')
        const path = `/admin/users/${id}`
        await client.submit(`${path}/groups`, { group: [editors.id, viewers.id] }, path)
        expect((await f.auth.accounts.listUserGroups(id)).map((g) => g.name)).toEqual([
          'editors',
          'viewers',
        ])
        await client.submit(`${path}/groups`, { group: viewers.id }, path)
        expect((await f.auth.accounts.listUserGroups(id)).map((g) => g.name)).toEqual(['viewers'])
        const ghost = await client.submit(`${path}/groups`, { group: 'no-such-group' }, path)
        expect(ghost.status).toBe(303)
        expect(await (await client.get(path)).text()).toContain('no longer exists')

        await client.submit(
          `${path}/permissions`,
          { permissions: 'posts.publish\nposts.edit' },
          path,
        )
        expect(await f.auth.accounts.getUserPermissions(id)).toEqual([
          'posts.edit',
          'posts.publish',
        ])
        await client.submit(`${path}/permissions`, { permissions: 'posts.edit' }, path)
        expect(await f.auth.accounts.getUserPermissions(id)).toEqual(['posts.edit'])
        await client.submit(`${path}/permissions`, { permissions: 'Bad Codename' }, path)
        expect(await f.auth.accounts.getUserPermissions(id)).toEqual(['posts.edit'])
        expect(await (await client.get(path)).text()).toContain('is not a permission codename')
      })

      it('manages groups, group permissions and the permission catalogue', async () => {
        const { f, client } = await signedIn()
        await client.submit('/admin/groups', { name: 'support' }, '/admin/groups')
        const group = await f.auth.accounts.findGroupByName('support')
        expect(group).not.toBeNull()
        await client.submit('/admin/groups', { name: 'support' }, '/admin/groups')
        expect(await (await client.get('/admin/groups')).text()).toContain('Group not created')
        await client.submit('/admin/groups', { name: '   ' }, '/admin/groups')
        expect((await f.auth.accounts.listGroups()).length).toBe(1)

        await client.submit(
          `/admin/groups/${group?.id}/permissions`,
          { permissions: 'tickets.read, tickets.answer' },
          '/admin/groups',
        )
        const member = await f.createUser('dave@example.com')
        await f.auth.accounts.addUserToGroup(member, group?.id ?? '')
        expect(await f.auth.accounts.getUserPermissions(member)).toEqual([
          'tickets.answer',
          'tickets.read',
        ])

        await client.submit(
          '/admin/permissions',
          { codename: 'reports.view', description: 'See reports' },
          '/admin/groups',
        )
        expect(
          (await f.auth.accounts.listPermissions()).find((p) => p.codename === 'reports.view')
            ?.description,
        ).toBe('See reports')
        await client.submit(
          '/admin/permissions/delete',
          { codename: 'tickets.read' },
          '/admin/groups',
        )
        expect(await f.auth.accounts.getUserPermissions(member)).toEqual(['tickets.answer'])

        await client.submit(`/admin/groups/${group?.id}/delete`, {}, '/admin/groups')
        expect(await f.auth.accounts.listGroups()).toEqual([])
        expect((await client.submit('/admin/groups/nope/delete', {}, '/admin/groups')).status).toBe(
          404,
        )
      })

      it('lists a user’s sessions and revokes one or all', async () => {
        const { f, client } = await signedIn()
        const id = await f.createUser('erin@example.com')
        const one = await f.appSessions.create(id, {
          meta: { ip: '203.0.113.7', userAgent: 'Firefox on Linux' },
        })
        await f.appSessions.create(id, {
          meta: { ip: '198.51.100.2', userAgent: 'Safari on iPhone' },
        })
        await f.appSessions.create(id, {})
        const path = `/admin/users/${id}/sessions`
        const page = await (await client.get(path)).text()
        expect(page).toContain('Firefox on Linux')
        expect(page).toContain('203.0.113.7')
        expect(page).toContain('Safari on iPhone')
        const res = await client.submit(`${path}/${one.session.id}/revoke`, {}, path)
        expect(res.status).toBe(303)
        expect(await f.appSessions.validateToken(one.token)).toBeNull()
        expect(await f.appSessions.list(id)).toHaveLength(2)
        expect(await (await client.get(path)).text()).toContain(
          `Revoked session ${one.session.id.slice(0, 8)}`,
        )
        await client.submit(`${path}/bogus/revoke`, {}, path)
        expect(await (await client.get(path)).text()).toContain('already ended')
        await client.submit(`${path}/revoke-all`, {}, path)
        expect(await f.appSessions.list(id)).toHaveLength(0)
        expect(await (await client.get(path)).text()).toContain(
          'Revoked 2 sessions of erin@example.com.',
        )
      })

      it('records the acting administrator in the audit log for every action', async () => {
        const { f, client } = await signedIn()
        const me = (await userByEmail(f, ADMIN_EMAIL))?.id ?? ''
        const id = await f.createUser('hal@example.com')
        const path = `/admin/users/${id}`
        const group = await f.auth.accounts.createGroup('crew')
        const one = await f.appSessions.create(id)
        await f.appSessions.create(id)
        await f.appSessions.create(id)
        const actions: Array<[string, Record<string, string>, string]> = [
          ['/admin/users', { email: 'ivy@example.com', password: 'ivy has a long password' }, ''],
          [`${path}/sessions/${one.session.id}/revoke`, {}, `${path}/sessions`],
          [`${path}/sessions/revoke-all`, {}, `${path}/sessions`],
          [`${path}/reset`, {}, path],
          [`${path}/disable`, {}, path],
          [`${path}/enable`, {}, path],
          [`${path}/admin`, { isAdmin: '1' }, path],
          [`${path}/admin`, { isAdmin: '0' }, path],
          [`${path}/groups`, { group: group.id }, path],
          [`${path}/permissions`, { permissions: 'posts.edit' }, path],
          ['/admin/groups', { name: 'ops' }, '/admin/groups'],
          [`/admin/groups/${group.id}/permissions`, { permissions: 'x.y' }, '/admin/groups'],
          ['/admin/permissions/delete', { codename: 'x.y' }, '/admin/groups'],
          [`/admin/groups/${group.id}/delete`, {}, '/admin/groups'],
          [`${path}/delete`, { confirm: 'yes' }, path],
        ]
        for (const [action, fields, from] of actions) {
          const before = (await f.auth.audit.list({ limit: 500 })).length
          const res = await client.submit(action, fields, from === '' ? '/admin/users' : from)
          expect(res.status, action).toBe(303)
          await f.auth.idle() // the reset mail and its audit event are sent after the answer
          const all = await f.auth.audit.list({ limit: 500 })
          const events = all.slice(0, all.length - before)
          expect(events.length, action).toBeGreaterThan(0)
          for (const event of events) {
            expect(event.detail.actorId, `${action}: ${event.type}`).toBe(me)
          }
        }
        const revoked = await f.auth.audit.list({ type: 'session_revoked', userId: id })
        expect(revoked.map((e) => [e.detail.count, e.detail.actorId])).toEqual([
          [2, me],
          [1, me],
        ])
        // Signing out is the administrator's own action, recorded under their id.
        await client.submit('/admin/logout', {})
        const [logout] = await f.auth.audit.list({ type: 'logout', userId: me })
        expect(logout?.detail.panel).toBe('admin')
      })

      it('sends a password reset e-mail', async () => {
        const { f, client } = await signedIn()
        const id = await f.createUser('frank@example.com')
        await client.submit(`/admin/users/${id}/reset`, {}, `/admin/users/${id}`)
        await f.auth.idle()
        expect(f.mails()).toHaveLength(1)
        expect(await (await client.get(`/admin/users/${id}`)).text()).toContain(
          'A password reset e-mail is on its way',
        )
      })

      it('shows e-mail verification, resends the mail and marks verified (audited)', async () => {
        const { f, client } = await signedIn()
        const id = await f.createUser('gina@example.com')
        const page = await (await client.get(`/admin/users/${id}`)).text()
        expect(page).toContain('not verified')
        expect(page).toContain('Send verification e-mail')
        await client.submit(`/admin/users/${id}/verification`, {}, `/admin/users/${id}`)
        await f.auth.idle()
        expect(f.mails()).toHaveLength(1)
        const [sent] = await f.auth.audit.list({ type: 'email_verification_sent', userId: id })
        expect(sent?.detail.via).toBe('admin')
        expect(sent?.detail.actorId).toBeDefined()

        await client.submit(`/admin/users/${id}/verified`, {}, `/admin/users/${id}`)
        const after = await (await client.get(`/admin/users/${id}`)).text()
        expect(after).toContain('is marked verified')
        expect(after).not.toContain('Mark e-mail verified')
        expect((await f.auth.accounts.findUserById(id))?.emailVerifiedAt).not.toBeNull()
        const [verified] = await f.auth.audit.list({ type: 'email_verified', userId: id })
        expect(verified?.detail).toMatchObject({ via: 'admin', actorId: sent?.detail.actorId })
      })

      it('rotates the signing keys', async () => {
        const { f, client } = await signedIn()
        const before = f.keys.list().find((k) => k.status === 'current')?.kid
        const next = f.keys.list().find((k) => k.status === 'next')?.kid
        const page = await (await client.get('/admin/keys')).text()
        expect(page).toContain(before)
        expect(page).toContain('EdDSA')
        const res = await client.submit('/admin/keys/rotate', {}, '/admin/keys')
        expect(res.status).toBe(303)
        expect(f.keys.list().find((k) => k.status === 'current')?.kid).toBe(next)
        expect(f.keys.list().find((k) => k.kid === before)?.status).toBe('previous')
        expect(await (await client.get('/admin/keys')).text()).toContain(`${next} signs now`)
      })

      it('filters and pages the audit log', async () => {
        const { f, client } = await signedIn()
        const id = await f.createUser('gina@example.com')
        await client.submit(`/admin/users/${id}/disable`, {}, `/admin/users/${id}`)
        const byType = await (await client.get('/admin/audit?type=user_disabled')).text()
        expect(byType).toContain('user_disabled')
        expect(byType).not.toContain('<td>user_created</td>')
        const byUser = await (await client.get('/admin/audit?user=gina%40example.com')).text()
        expect(byUser).toContain('user_created')
        expect(byUser).not.toContain('<td>login</td>')
        const unknown = await client.get('/admin/audit?user=%3Cnobody%3E')
        expect(unknown.status).toBe(400)
        expect((await client.get('/admin/audit?type=%3Cjunk%3E&page=999999')).status).toBe(200)
      })
    })

    describe('admin panel: bad input', () => {
      it('never answers 500: wrong content type, huge body, garbage fields', async () => {
        const f = await build()
        const client = new Client(f.app)
        await client.signIn()
        const json = await f.app.request('/admin/users', {
          method: 'POST',
          headers: {
            cookie: client.cookieHeader(),
            'content-type': 'application/json',
            origin: client.origin,
          },
          body: '{}',
        })
        expect(json.status).toBe(415)
        const huge = await client.post('/admin/users', { _csrf: 'x', email: 'a'.repeat(70_000) })
        expect(huge.status).toBe(413)
        const weird = await client.submit('/admin/users', { email: '\u0000<>', password: '\uD800' })
        expect(weird.status).toBe(400)
        const malformed = await f.app.request('/admin/users', {
          method: 'POST',
          headers: {
            cookie: client.cookieHeader(),
            'content-type': 'application/x-www-form-urlencoded',
            origin: client.origin,
          },
          body: '%%%&&&=%zz',
        })
        expect(malformed.status).toBe(403)
      })
    })

    describe('admin panel: escaping', () => {
      it('escapes user-controlled strings everywhere they appear', async () => {
        const f = await build()
        const client = new Client(f.app)
        await client.signIn()
        // An e-mail the API would refuse, as imported data or another writer could leave it.
        const evil = '<script>alert(1)</script>"\'@example.com'
        await f.db
          .insertInto('users')
          .values({
            id: 'evil1',
            email: evil,
            password_hash: null,
            is_admin: 0,
            is_active: 1,
            created_at: Date.now(),
            last_login_at: null,
            password_changed_at: null,
          })
          .execute()
        await f.auth.accounts.createGroup('<img src=x onerror=alert(1)>')
        await f.appSessions.create('evil1', { meta: { userAgent: '<script>alert(2)</script>' } })
        await f.auth.audit.record({
          type: 'login',
          outcome: 'failure',
          userId: 'evil1',
          detail: { note: '<script>alert(3)</script>' },
        })
        const pages = [
          '/admin/users',
          '/admin/users?q=%3Cscript%3Ealert(4)%3C%2Fscript%3E',
          '/admin/users/evil1',
          '/admin/users/evil1/sessions',
          '/admin/sessions',
          '/admin/groups',
          '/admin/audit',
          '/admin/audit?user=%22%3E%3Cscript%3E',
          '/admin',
        ]
        for (const path of pages) {
          const text = await (await client.get(path)).text()
          expect(text, path).not.toMatch(/<script/i)
          expect(text, path).not.toContain('<img src=x')
        }
        const list = await pageText(await client.get('/admin/users'))
        expect(list).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;@example.com')
        expect(await (await client.get('/admin/users/evil1/sessions')).text()).toContain(
          '&lt;script&gt;alert(2)&lt;/script&gt;',
        )
      })
    })

    describe('admin panel: first-start setup link', () => {
      it('creates the first administrator once, then the link is dead', async () => {
        const f = await build({ withAdmin: false })
        const link = await createSetupLink({
          accounts: f.auth.accounts,
          adminSessions: f.adminSessions,
          publicUrl: f.publicUrl,
        })
        expect(link).toMatch(/^http:\/\/localhost:3000\/admin\/setup\?token=[A-Za-z0-9_-]{43}$/)
        const path = (link ?? '').slice('http://localhost:3000'.length)
        const token = new URL(link ?? '').searchParams.get('token') ?? ''
        const client = new Client(f.app)
        const page = await client.get(path)
        expect(page.status).toBe(200)
        const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1] ?? ''

        const mismatch = await client.post('/admin/setup', {
          _csrf: csrf,
          token,
          email: 'first@example.com',
          password: 'first admin password',
          password2: 'other',
        })
        expect(mismatch.status).toBe(400)
        const weak = await client.post('/admin/setup', {
          _csrf: csrf,
          token,
          email: 'first@example.com',
          password: 'short',
          password2: 'short',
        })
        expect(weak.status).toBe(400)
        const noCsrf = await client.post('/admin/setup', {
          token,
          email: 'first@example.com',
          password: 'first admin password',
          password2: 'first admin password',
        })
        expect(noCsrf.status).toBe(403)
        expect(await userByEmail(f, 'first@example.com')).toBeNull()

        const ok = await client.post('/admin/setup', {
          _csrf: csrf,
          token,
          email: 'first@example.com',
          password: 'first admin password',
          password2: 'first admin password',
        })
        expect(ok.status).toBe(303)
        expect((await userByEmail(f, 'first@example.com'))?.isAdmin).toBe(true)
        expect(await (await client.get('/admin')).text()).toContain(
          'Administrator first@example.com created',
        )

        const reuse = await new Client(f.app).post('/admin/setup', {
          _csrf: csrf,
          token,
          email: 'second@example.com',
          password: 'second admin password',
          password2: 'second admin password',
        })
        expect(reuse.status).toBe(404)
        expect((await new Client(f.app).get(path)).status).toBe(404)
        expect(await userByEmail(f, 'second@example.com')).toBeNull()
        expect(
          await createSetupLink({
            accounts: f.auth.accounts,
            adminSessions: f.adminSessions,
            publicUrl: f.publicUrl,
          }),
        ).toBeNull()
      })

      it('claims the link before creating anyone: of two parallel posts one creates, one gets the dead link', async () => {
        const f = await build({ withAdmin: false })
        const link = await createSetupLink({
          accounts: f.auth.accounts,
          adminSessions: f.adminSessions,
          publicUrl: f.publicUrl,
        })
        const path = (link ?? '').slice('http://localhost:3000'.length)
        const token = new URL(link ?? '').searchParams.get('token') ?? ''
        const post = async (email: string): Promise<Response> => {
          const client = new Client(f.app)
          const csrf = /name="_csrf" value="([^"]+)"/.exec(await (await client.get(path)).text())
          return client.post('/admin/setup', {
            _csrf: csrf?.[1] ?? '',
            token,
            email,
            password: 'first admin password',
            password2: 'first admin password',
          })
        }
        const results = await Promise.all([post('one@example.com'), post('two@example.com')])
        expect(results.map((r) => r.status).sort()).toEqual([303, 404])
        const admins = await Promise.all([
          userByEmail(f, 'one@example.com'),
          userByEmail(f, 'two@example.com'),
        ])
        expect(admins.filter((u) => u !== null)).toHaveLength(1)
        // The claimed record is gone once the administrator exists.
        expect(await f.adminSessions.claimSetupLink(token)).toBeNull()
      })

      it('gives a claimed link back when the administrator cannot be created', async () => {
        const f = await build({ withAdmin: false })
        const link = await createSetupLink({
          accounts: f.auth.accounts,
          adminSessions: f.adminSessions,
          publicUrl: f.publicUrl,
        })
        const token = new URL(link ?? '').searchParams.get('token') ?? ''
        const claimed = await f.adminSessions.claimSetupLink(token)
        expect(claimed).not.toBeNull()
        // Claimed: neither the page nor a second claim gets it.
        const client = new Client(f.app)
        expect((await client.get(`/admin/setup?token=${token}`)).status).toBe(404)
        expect(await f.adminSessions.claimSetupLink(token)).toBeNull()
        await f.adminSessions.releaseSetupLink(token)
        expect((await client.get(`/admin/setup?token=${token}`)).status).toBe(200)
        expect(await f.adminSessions.claimSetupLink('A'.repeat(43))).toBeNull()
        expect(await f.adminSessions.claimSetupLink('not a token')).toBeNull()
      })

      it('refuses a made-up token, a session token, and a link once an admin exists', async () => {
        const f = await build({ withAdmin: false })
        const client = new Client(f.app)
        expect((await client.get('/admin/setup')).status).toBe(404)
        expect((await client.get(`/admin/setup?token=${'A'.repeat(43)}`)).status).toBe(404)
        const link = await createSetupLink({
          accounts: f.auth.accounts,
          adminSessions: f.adminSessions,
          publicUrl: f.publicUrl,
        })
        const userId = await f.createUser('someone@example.com')
        const session = await f.adminSessions.create(userId)
        expect((await client.get(`/admin/setup?token=${session.token}`)).status).toBe(404)
        await f.createUser('admin@example.com', { isAdmin: true })
        expect((await client.get((link ?? '').slice('http://localhost:3000'.length))).status).toBe(
          404,
        )
      })
    })
  })
}

adminSuite('admin panel on SQLite', () => ({ kind: 'sqlite' }))

describeWithPostgresAndRedis('admin panel on PostgreSQL + Redis', (urls) => {
  adminSuite('(postgres + redis)', () => ({ kind: 'postgres+redis', ...urls }))
})

describe('admin panel: the html template tag', () => {
  it('the template tag escapes all five characters and keeps nested templates', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe(
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    )
    const inner = html`<b>${'<i>'}</b>`
    expect(html`<p>${inner}${['<', html`<br />`]}${null}${false}${3}</p>`.value).toBe(
      '<p><b>&lt;i&gt;</b>&lt;<br />3</p>',
    )
  })
})
