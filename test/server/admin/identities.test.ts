/*
 * The admin panel's view of a user's identities (issue 15): listed with provider, subject and
 * e-mail; unlinked with the panel's form (CSRF token, same-origin), audited with the acting
 * administrator; the account's last way to sign in is refused. On SQLite and PostgreSQL + Redis
 * through the real fixture.
 */
import { describe, expect, it } from 'vitest'
import { describeWithPostgresAndRedis } from '../../helpers/services.js'
import { buildAdmin, Client, type AdminBackend } from './fixture.js'

function identitiesSuite(name: string, backend: () => AdminBackend): void {
  describe(name, () => {
    it('lists a user’s identities and unlinks one, audited with the administrator, never the last', async () => {
      const f = await buildAdmin({ backend: backend() })
      const created = await f.identities.createAccount('ada@example.com', {
        provider: 'google',
        subject: 'g-123',
        email: 'ada@example.com',
        emailVerified: true,
      })
      if (!created.ok) throw new Error('not created')
      const linked = await f.identities.link(created.userId, {
        provider: 'github',
        subject: '583231',
        email: 'ada@example.com',
        emailVerified: false,
      })
      if (!linked.ok) throw new Error('not linked')
      const client = new Client(f.app)
      await client.signIn()
      const path = `/admin/users/${created.userId}`
      expect(await (await client.get(path)).text()).toContain(`${path}/identities`)
      const page = await (await client.get(`${path}/identities`)).text()
      expect(page).toContain('google')
      expect(page).toContain('g-123')
      expect(page).toContain('583231')
      expect(page).toContain('2 linked identities')
      expect(page).not.toMatch(/<script/i)

      // Without the form's CSRF token: refused, nothing unlinked.
      const forged = await client.post(`${path}/unlink/${linked.identity.id}`, {})
      expect(forged.status).toBe(403)
      expect(await f.identities.listByUser(created.userId)).toHaveLength(2)

      const done = await client.submit(
        `${path}/unlink/${linked.identity.id}`,
        {},
        `${path}/identities`,
      )
      expect(done.status).toBe(303)
      const after = await (await client.get(`${path}/identities`)).text()
      expect(after).toContain('Unlinked the github identity of ada@example.com.')
      expect(after).toContain('1 linked identity')

      // The last way in: no password, no other identity.
      await client.submit(`${path}/unlink/${created.identity.id}`, {}, `${path}/identities`)
      const refused = await (await client.get(`${path}/identities`)).text()
      expect(refused).toContain('last way')
      expect(await f.identities.listByUser(created.userId)).toHaveLength(1)

      const admin = await f.auth.accounts.findUserByEmail('root@example.com')
      const events = await f.auth.audit.list({ type: 'identity_unlinked' })
      expect(events.map((event) => [event.outcome, event.detail.actorId]).reverse()).toEqual([
        ['success', admin?.id],
        ['denied', admin?.id],
      ])
    })
  })
}

identitiesSuite('admin identities [sqlite]', () => ({ kind: 'sqlite' }))
describeWithPostgresAndRedis('admin identities on PostgreSQL + Redis', (urls) => {
  identitiesSuite('(postgres + redis)', () => ({ kind: 'postgres+redis', ...urls }))
})
