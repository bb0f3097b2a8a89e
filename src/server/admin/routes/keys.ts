/* The signing keys of access tokens: the list, and rotation. */
import { isTesseraError } from '../../../core/errors.js'
import { pageContext, send, type AdminApp, type AdminKit } from '../context.js'
import { redirectWith, takeFlash } from '../flash.js'
import { csrfFor, postAction } from '../forms.js'
import { keysPage } from '../views/keys.js'

/** GET `/keys` and POST `/keys/rotate`. */
export function keyRoutes(app: AdminApp, kit: AdminKit): void {
  const { keys } = kit.deps

  app.get('/keys', async (c) => {
    const flash = await takeFlash(kit, c)
    await keys.refreshIfStale()
    return send(
      c,
      keysPage(pageContext(kit, c, csrfFor(c), flash), keys.list(), keys.algorithm, kit.now()),
    )
  })

  postAction(app, kit, '/keys/rotate', async (c) => {
    let rotated
    try {
      rotated = await keys.rotate()
    } catch (error) {
      if (isTesseraError(error) && error.code !== 'store_unavailable') {
        return redirectWith(kit, c, '/keys', {
          kind: 'error',
          text: `Keys not rotated: ${error.message}`,
        })
      }
      throw error
    }
    const current = rotated.find((k) => k.status === 'current')
    return redirectWith(kit, c, '/keys', {
      kind: 'ok',
      text: `Rotated the signing keys: ${current === undefined ? 'no current key' : `${current.kid} signs now`}.`,
    })
  })
}
