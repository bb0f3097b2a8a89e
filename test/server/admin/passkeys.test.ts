import { expect, it } from 'vitest'
import { createPasskeys } from '../../../src/auth/passkeys.js'
import { createCredential } from '../../helpers/webauthn.js'
import { buildAdmin, Client } from './fixture.js'

const PUBLIC_URL = 'http://localhost:3000'

it('the admin panel lists a user’s passkeys and removes one, audited with the administrator', async () => {
  // The panel's passkeys are those of the API: the same library over the same database.
  let made: ReturnType<typeof createPasskeys> | undefined
  const f = await buildAdmin({
    deps: ({ db, backends, auth }) => {
      made = createPasskeys({
        db,
        store: backends.sessionStore,
        publicUrl: PUBLIC_URL,
        audit: auth.audit,
      })
      return { passkeys: made }
    },
  })
  const passkeys = made
  if (passkeys === undefined) throw new Error('no passkeys')
  const userId = await f.createUser('ada@example.com')
  const options = await passkeys.registrationOptions({ id: userId, email: 'ada@example.com' })
  const credential = createCredential(options, { origin: PUBLIC_URL })
  const added = await passkeys.register(userId, credential.response, { name: 'Ada’s <laptop>' })
  if (!added.ok) throw new Error(added.message)

  const client = new Client(f.app)
  expect((await client.signIn()).status).toBe(303)
  const userPage = await (await client.get(`/admin/users/${userId}`)).text()
  expect(userPage).toContain(`/admin/users/${userId}/passkeys`)
  expect(userPage).toContain('1 passkey')
  const path = `/admin/users/${userId}/passkeys`
  const list = await (await client.get(path)).text()
  // Escaped, never raw markup.
  expect(list).toContain('Ada’s &lt;laptop&gt;')
  expect(list).not.toContain('<laptop>')

  // Without the form's CSRF token nothing is removed.
  const forged = await client.post(`${path}/${added.passkey.id}/remove`, {})
  expect(forged.status).toBe(403)
  expect(await passkeys.list(userId)).toHaveLength(1)

  const removed = await client.submit(`${path}/${added.passkey.id}/remove`, {}, path)
  expect(removed.status).toBe(303)
  expect(await passkeys.list(userId)).toEqual([])
  expect(await (await client.get(path)).text()).toContain('Removed the passkey')
  const again = await client.submit(`${path}/${added.passkey.id}/remove`, {}, path)
  expect(again.status).toBe(303)
  expect(await (await client.get(path)).text()).toContain('already been removed')

  const events = await f.auth.audit.list({ userId, type: 'passkey_removed' })
  const admin = await f.auth.accounts.findUserByEmail('root@example.com')
  expect(events[0]?.detail).toMatchObject({ actorId: admin?.id, name: 'Ada’s <laptop>' })
})
