/*
 * What the panel's pages show (issue 19, "The admin panel"): the sign-in chart, the active-sessions
 * view, e-mails and actors instead of ids, readable audit details, device names, counts in the
 * singular, full session ids, the password rules, e-mails that wrap only at their dots, the
 * signed-out notice, and admin sign-ins in `tessera_logins_total`. On SQLite and on
 * PostgreSQL + Redis, through the real fixture (test/server/admin/fixture.ts).
 */
import { describe, expect, it } from 'vitest'
import { createAuditLog } from '../../../src/auth/audit.js'
import { createMetrics } from '../../../src/server/metrics.js'
import { describeWithPostgresAndRedis } from '../../helpers/services.js'
import { ADMIN_EMAIL, buildAdmin, Client, type AdminBackend } from './fixture.js'

const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'
const IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1'

/** A page's HTML without the `<wbr />` break opportunities e-mail addresses carry. */
async function pageText(response: Response): Promise<string> {
  expect(response.status).toBe(200)
  return (await response.text()).replaceAll('<wbr />', '')
}

/** The text of the SVG chart `id` (its accessible description and bar titles). */
function chartOf(page: string, id: string): string {
  const match = new RegExp(`<svg[^>]*id="${id}"[\\s\\S]*?</svg>`).exec(page)
  if (match === null) throw new Error(`no chart ${id}`)
  return match[0].replace(/\s+/g, ' ')
}

function pagesSuite(name: string, backend: () => AdminBackend): void {
  const build = (options: Omit<Parameters<typeof buildAdmin>[0], 'backend'> = {}) =>
    buildAdmin({ ...options, backend: backend() })

  describe(name, () => {
    it('charts sign-ins and failures per hour over 24 h and per day over 7 d, as SVG without script or style attributes', async () => {
      // The panel's clock: 2024-01-10 15:30 UTC (the fixture's own sign-in happens later, in
      // real time, so it falls after every bucket).
      const now = Date.UTC(2024, 0, 10, 15, 30)
      const f = await build({ deps: { now: () => now } })
      const at = (ms: number) => createAuditLog(f.db, { now: () => ms })
      await at(now - 10 * 60_000).record({ type: 'login', outcome: 'success', userId: null })
      await at(now - 2 * 3_600_000).record({ type: 'login', outcome: 'failure', userId: null })
      await at(now - 2 * 3_600_000).record({ type: 'login', outcome: 'denied', userId: null })
      await at(now - 3 * 86_400_000).record({ type: 'login', outcome: 'failure', userId: null })
      await at(now - 9 * 86_400_000).record({ type: 'login', outcome: 'failure', userId: null })
      await at(now - 60_000).record({ type: 'logout', outcome: 'success', userId: null })
      const client = new Client(f.app)
      await client.signIn()
      const page = await pageText(await client.get('/admin'))
      const hourly = chartOf(page, 'logins-24h')
      expect(hourly).toContain('1 sign-in and 2 failures.')
      expect(hourly).toContain('15:00–16:00 UTC: 1 sign-in, 0 failures')
      expect(hourly).toContain('13:00–14:00 UTC: 0 sign-ins, 2 failures')
      // Axis labels at the UTC hours divisible by six.
      for (const label of ['18:00', '00:00', '06:00', '12:00'])
        expect(hourly).toContain(`>${label}<`)
      expect(hourly).not.toContain('>15:00<')
      expect(hourly.match(/<g>/g)).toHaveLength(24)
      const daily = chartOf(page, 'logins-7d')
      expect(daily).toContain('1 sign-in and 3 failures.')
      expect(daily).toContain('Sun 7: 0 sign-ins, 1 failure')
      expect(daily).toContain('Wed 10: 1 sign-in, 2 failures')
      expect(daily.match(/<g>/g)).toHaveLength(7)
      expect(page).toContain('class="bar-ok"')
      expect(page).toContain('class="bar-fail"')
      expect(page).not.toMatch(/<script/i)
      expect(page).not.toMatch(/\sstyle=/i)
    })

    it('links “active sessions” to a view of every user’s sessions, with full ids and device names', async () => {
      const f = await build()
      const client = new Client(f.app)
      await client.signIn()
      const ann = await f.createUser('ann@example.com')
      const bob = await f.createUser('bob@example.com')
      await f.createUser('nosessions@example.com')
      const laptop = await f.appSessions.create(ann, {
        meta: { ip: '203.0.113.7', userAgent: FIREFOX },
      })
      const phone = await f.appSessions.create(bob, {
        meta: { ip: '198.51.100.2', userAgent: IPHONE },
      })
      await f.appSessions.create(bob, { meta: { userAgent: 'curl/8.5.0' } })
      await f.auth.accounts.recordLogin(bob)

      const dashboard = await pageText(await client.get('/admin'))
      expect(dashboard).toMatch(/<a href="\/admin\/sessions"\s*>active sessions<\/a/)
      const view = await pageText(await client.get('/admin/sessions'))
      expect(view).toContain('ann@example.com')
      expect(view).toContain('bob@example.com')
      expect(view).not.toContain('nosessions@example.com')
      // Most recent sign-in first: bob signed in last.
      expect(view.indexOf('bob@example.com')).toBeLessThan(view.indexOf('ann@example.com'))
      expect(view).toContain(`<code>${laptop.session.id}</code>`)
      expect(view).toContain(`<code>${phone.session.id}</code>`)
      expect(laptop.session.id).toMatch(/^[A-Za-z0-9_-]{22}$/)
      expect(view).toContain('Firefox 128 on Linux')
      expect(view).toContain('Safari 17 on iOS 17 (iPhone)')
      expect(view).toContain('curl/8.5.0')
      expect(view).toContain(`title="${FIREFOX}"`)
      // Revoking from the view works like the user's own page.
      const revoked = await client.submit(
        `/admin/users/${ann}/sessions/${laptop.session.id}/revoke`,
        {},
        '/admin/sessions',
      )
      expect(revoked.status).toBe(303)
      expect(await f.appSessions.validateToken(laptop.token)).toBeNull()
      const after = await pageText(await client.get(revoked.headers.get('location') ?? ''))
      expect(after).toContain(`Revoked session ${laptop.session.id} of ann@example.com.`)
    })

    it('pages the active-sessions view over users, a bounded number per page', async () => {
      const f = await build()
      const client = new Client(f.app)
      await client.signIn()
      for (let i = 0; i < 30; i++) {
        const id = await f.createUser(`p${String(i).padStart(2, '0')}@example.com`)
        await f.appSessions.create(id)
      }
      const first = await pageText(await client.get('/admin/sessions'))
      const next = /href="\/admin\/sessions\?from=(\d+)" rel="next"/.exec(first)?.[1]
      expect(next).toBeDefined()
      const second = await pageText(await client.get(`/admin/sessions?from=${next}`))
      const shown = (text: string) => text.match(/p\d\d@example\.com/g) ?? []
      const all = new Set([...shown(first), ...shown(second)])
      expect(all.size).toBe(30)
      expect(second).not.toContain('rel="next"')
      expect((await client.get('/admin/sessions?from=abc')).status).toBe(200)
      expect((await client.get('/admin/sessions?from=99999999999')).status).toBe(200)
    })

    it('says “1 session”, never “1 sessions”', async () => {
      const f = await build()
      const client = new Client(f.app)
      await client.signIn()
      const id = await f.createUser('single@example.com')
      await f.appSessions.create(id, { meta: { userAgent: FIREFOX } })
      const own = await pageText(await client.get(`/admin/users/${id}/sessions`))
      expect(own).toContain('1 active session.')
      expect(own).toContain('Revoke this session')
      const user = await pageText(await client.get(`/admin/users/${id}`))
      expect(user).toContain('1 active session<')
      await client.submit(`/admin/users/${id}/sessions/revoke-all`, {}, `/admin/users/${id}`)
      const done = await pageText(await client.get(`/admin/users/${id}/sessions`))
      expect(done).toContain('Revoked 1 session of single@example.com.')
      const audit = await pageText(await client.get('/admin/audit?type=session_revoked'))
      for (const text of [own, user, done, audit]) expect(text).not.toMatch(/\b1 sessions\b/)
      expect(audit).toMatch(/>\s*1 session\s*</)
    })

    it('shows e-mails, the acting administrator and readable details in the audit log', async () => {
      const f = await build()
      const client = new Client(f.app)
      await client.signIn()
      const me = (await f.auth.accounts.findUserByEmail(ADMIN_EMAIL))?.id ?? ''
      const id = await f.createUser('dora@example.com')
      const group = await f.auth.accounts.createGroup('editors')
      const path = `/admin/users/${id}`
      await client.submit(`${path}/disable`, {}, path)
      await client.submit(`${path}/groups`, { group: group.id }, path)
      await client.submit(`${path}/permissions`, { permissions: 'posts.edit' }, path)
      const page = await pageText(await client.get('/admin/audit'))
      expect(page).toContain('<th>Actor</th>')
      const rows = page.split('<tr>').slice(2)
      const disabled = rows.find((row) => row.includes('user_disabled')) ?? ''
      expect(disabled).toContain('dora@example.com')
      expect(disabled).toContain(`href="/admin/users/${me}"`)
      expect(disabled).toContain(ADMIN_EMAIL)
      const added = rows.find((row) => row.includes('added to group editors')) ?? ''
      expect(added).toContain(ADMIN_EMAIL)
      expect(page).toContain('granted posts.edit')
      // No raw JSON, and no user id shown as the name of a user.
      expect(page).not.toContain('{&quot;')
      expect(page).not.toContain(`>${id}<`)
      expect(page).not.toContain(`>${me}<`)
    })

    it('names the address tried and the account in recent failed logins, not a user id', async () => {
      const f = await build()
      const client = new Client(f.app)
      const eve = await f.createUser('eve@example.com', { password: 'eve has a long password' })
      await client.signIn('eve@example.com', 'not her password at all')
      // The API records the address of an unknown account (src/auth/service.ts).
      await f.auth.audit.record({
        type: 'login',
        outcome: 'failure',
        userId: null,
        detail: { reason: 'unknown_account', email: 'ghost@example.com' },
      })
      await client.signIn()
      const page = await pageText(await client.get('/admin'))
      const recent = page.slice(page.indexOf('Recent failed logins'))
      expect(recent).toContain('eve@example.com')
      expect(recent).toContain('wrong password')
      expect(recent).toContain('admin panel')
      expect(recent).toContain('ghost@example.com')
      expect(recent).toContain('no such account')
      expect(recent).not.toContain(`>${eve}<`)
      expect(page).toMatch(/id="count-failed">2</)
    })

    it('shows “You are signed out.” in the neutral style, not as an error', async () => {
      const f = await build()
      const client = new Client(f.app)
      await client.signIn()
      const out = await client.submit('/admin/logout', {})
      const page = await pageText(await client.get(out.headers.get('location') ?? ''))
      expect(page).toMatch(/<p class="flash info" role="status">\s*You are signed out\.\s*<\/p>/)
      expect(page).not.toContain('flash error')
      const css = /<style[^>]*>([\s\S]*?)<\/style>/.exec(page)?.[1] ?? ''
      expect(css).toContain('.flash.info{color:var(--fg)')
    })

    it('states the configured password rules on the forms that set a password', async () => {
      const f = await build({ deps: { passwordPolicy: { minLength: 16, maxLength: 64 } } })
      const client = new Client(f.app)
      await client.signIn()
      const users = await pageText(await client.get('/admin/users'))
      expect(users).toContain('16 to 64 characters, not a common password.')
      expect(users).toContain('minlength="16"')
      const defaults = await build({ withAdmin: false })
      const { createSetupLink } = await import('../../../src/server/admin/index.js')
      const link = await createSetupLink({
        accounts: defaults.auth.accounts,
        adminSessions: defaults.adminSessions,
        publicUrl: defaults.publicUrl,
      })
      const setup = await pageText(
        await new Client(defaults.app).get((link ?? '').slice('http://localhost:3000'.length)),
      )
      expect(setup).toContain('12 to 128 characters, not a common password.')
      expect(setup).toContain('aria-describedby="password-rules"')
    })

    it('lets a long e-mail wrap only before its @ and dots', async () => {
      const f = await build()
      const client = new Client(f.app)
      await client.signIn()
      const long = 'a.very.long.mailbox.name.for.testing.wrapping@departments.example.com'
      const id = await f.createUser(long)
      const raw = await (await client.get('/admin/users')).text()
      expect(raw).toContain(
        '<span class="email">a<wbr />.very<wbr />.long<wbr />.mailbox<wbr />.name<wbr />.for<wbr />.testing<wbr />.wrapping<wbr />@departments<wbr />.example<wbr />.com</span>',
      )
      const user = await (await client.get(`/admin/users/${id}`)).text()
      expect(user).toContain('<h1><span class="email">a<wbr />.very')
      const css = /<style[^>]*>([\s\S]*?)<\/style>/.exec(raw)?.[1] ?? ''
      expect(css).toContain('.email{overflow-wrap:break-word')
    })

    it('counts admin-panel sign-ins in tessera_logins_total and its limiter refusals', async () => {
      const metrics = createMetrics({ processMetrics: false })
      const f = await build({ deps: { metrics } })
      await f.createUser('plain@example.com', { password: 'plain user password' })
      const client = new Client(f.app)
      await client.signIn(ADMIN_EMAIL, 'a wrong password here')
      await client.signIn('plain@example.com', 'plain user password') // not an administrator
      await client.signIn()
      const text = await metrics.render()
      expect(text).toContain('tessera_logins_total{result="success"} 1')
      expect(text).toContain('tessera_logins_total{result="failure"} 2')
      for (let i = 0; i < 6; i++) await new Client(f.app).signIn(ADMIN_EMAIL, 'wrong again here')
      expect(await metrics.render()).toMatch(
        /tessera_rate_limited_total\{scope="admin_login"\} [1-9]/,
      )
    })
  })
}

pagesSuite('admin pages on SQLite', () => ({ kind: 'sqlite' }))

describeWithPostgresAndRedis('admin pages on PostgreSQL + Redis', (urls) => {
  pagesSuite('(postgres + redis)', () => ({ kind: 'postgres+redis', ...urls }))
})
