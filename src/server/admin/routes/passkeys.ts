/* A user's passkeys: the list, and removing one (audited with the acting administrator). */
import type { Passkeys } from '../../../auth/passkeys.js'
import { actionContext, pageContext, send, type AdminApp, type AdminKit } from '../context.js'
import { redirectWith, takeFlash } from '../flash.js'
import { csrfFor, param, postAction } from '../forms.js'
import { passkeysPage } from '../views/passkeys.js'
import { findUserOr404, userPath } from './users.js'

/** The routes under `/users/:id/passkeys`. */
export function passkeyAdminRoutes(app: AdminApp, kit: AdminKit, passkeys: Passkeys): void {
  app.get('/users/:id/passkeys', async (c) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    const flash = await takeFlash(kit, c)
    const list = await passkeys.list(user.id)
    return send(c, passkeysPage(pageContext(kit, c, csrfFor(c), flash), user, list))
  })

  postAction(app, kit, '/users/:id/passkeys/:pid/remove', async (c) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    const id = param(c, 'pid')
    const name = (await passkeys.list(user.id)).find((passkey) => passkey.id === id)?.name
    const removed = await passkeys.remove(user.id, id, actionContext(kit, c))
    return redirectWith(kit, c, `${userPath(user)}/passkeys`, {
      kind: removed === true ? 'ok' : 'error',
      text:
        removed === true
          ? `Removed the passkey "${name ?? id}" of ${user.email}.`
          : removed === false
            ? 'That passkey had already been removed.'
            : `The passkey "${name ?? id}" is the last way ${user.email} can sign in; it was kept.`,
    })
  })
}
