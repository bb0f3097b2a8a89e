/*
 * A user's linked identities (identity providers) and unlinking one (`/users/:id/unlink/:iid`),
 * audited with the acting administrator.
 */
import { actionContext, pageContext, send, type AdminApp, type AdminKit } from '../context.js'
import { redirectWith, takeFlash } from '../flash.js'
import { csrfFor, param, postAction } from '../forms.js'
import { identitiesPage } from '../views/identities.js'
import { findUserOr404, userPath } from './users.js'

/** The routes under `/users/:id/identities`. Without `deps.identities` the list is empty. */
export function identityRoutes(app: AdminApp, kit: AdminKit): void {
  const identities = kit.deps.identities

  app.get('/users/:id/identities', async (c) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    const flash = await takeFlash(kit, c)
    const list = identities === undefined ? [] : await identities.listByUser(user.id)
    return send(c, identitiesPage(pageContext(kit, c, csrfFor(c), flash), user, list, kit.now()))
  })

  postAction(app, kit, '/users/:id/unlink/:iid', async (c) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    const back = `${userPath(user)}/identities`
    if (identities === undefined) {
      return redirectWith(kit, c, back, { kind: 'error', text: 'That identity is not linked.' })
    }
    // The same rule as the user's own unlink: the account's last way to sign in stays.
    const result = await identities.unlink(user.id, param(c, 'iid'), actionContext(kit, c))
    if (result.ok) {
      return redirectWith(kit, c, back, {
        kind: 'ok',
        text: `Unlinked the ${result.identity.provider} identity of ${user.email}.`,
      })
    }
    return redirectWith(kit, c, back, {
      kind: 'error',
      text:
        result.code === 'not_found'
          ? 'That identity is not linked.'
          : `This is the last way ${user.email} can sign in (no password, no other identity): it stays. Send a password reset first.`,
    })
  })
}
