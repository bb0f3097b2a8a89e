/* Live sessions: every user's (most recent sign-in first), one user's, revoking one or all. */
import { actionContext, pageContext, send, type AdminApp, type AdminKit } from '../context.js'
import { redirectWith, takeFlash } from '../flash.js'
import { csrfFor, param, postAction } from '../forms.js'
import { allSessionsPage, sessionsPage, type ActiveSessionsData } from '../views/sessions.js'
import { findUserOr404, userPath } from './users.js'

const SESSION_ID = /^[A-Za-z0-9_-]{22}$/
/** Users with sessions shown per page of the active-sessions view. */
const SHOW_USERS = 25
/** Users whose sessions are read per batch, and at most per page (a store call each). */
const SCAN_BATCH = 50
const SCAN_MAX = 200

/** The routes under `/users/:id/sessions`. */
export function sessionRoutes(app: AdminApp, kit: AdminKit): void {
  const { auth, appSessions } = kit.deps

  // The store lists sessions per user only (the store contract has no "every session"), so the
  // view walks users by latest sign-in, a bounded number per page, and shows those with sessions.
  app.get('/sessions', async (c) => {
    const flash = await takeFlash(kit, c)
    const fromText = c.req.query('from') ?? '0'
    const from = /^[0-9]{1,7}$/.test(fromText) ? Number(fromText) : 0
    const users: ActiveSessionsData['users'] = []
    let offset = from
    let exhausted = false
    while (!exhausted && users.length < SHOW_USERS && offset - from < SCAN_MAX) {
      const { users: batch } = await auth.accounts.listUsers({
        orderBy: 'recent_sign_in',
        limit: SCAN_BATCH,
        offset,
      })
      exhausted = batch.length < SCAN_BATCH
      const lists = await Promise.all(batch.map((user) => appSessions.list(user.id)))
      for (const [index, user] of batch.entries()) {
        offset++
        const sessions = lists[index] ?? []
        if (sessions.length > 0) users.push({ user, sessions })
        if (users.length === SHOW_USERS) {
          // The next page starts after the last user shown.
          if (index < batch.length - 1) exhausted = false
          break
        }
      }
    }
    const total = kit.deps.countSessions === undefined ? null : await kit.deps.countSessions()
    return send(
      c,
      allSessionsPage(
        pageContext(kit, c, csrfFor(c), flash),
        { total, users, next: exhausted ? null : offset, later: from > 0 },
        kit.now(),
      ),
    )
  })

  app.get('/users/:id/sessions', async (c) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    const flash = await takeFlash(kit, c)
    const sessions = await appSessions.list(user.id)
    return send(c, sessionsPage(pageContext(kit, c, csrfFor(c), flash), user, sessions, kit.now()))
  })

  postAction(app, kit, '/users/:id/sessions/revoke-all', async (c) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    const count = await auth.revokeOtherSessions(user.id, actionContext(kit, c))
    return redirectWith(kit, c, `${userPath(user)}/sessions`, {
      kind: 'ok',
      text: `Revoked ${count} session${count === 1 ? '' : 's'} of ${user.email}.`,
    })
  })

  postAction(app, kit, '/users/:id/sessions/:sid/revoke', async (c) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    const sid = param(c, 'sid')
    const revoked =
      SESSION_ID.test(sid) && (await auth.revokeSession(user.id, sid, actionContext(kit, c)))
    return redirectWith(kit, c, `${userPath(user)}/sessions`, {
      kind: revoked ? 'ok' : 'error',
      text: revoked
        ? `Revoked session ${sid} of ${user.email}.`
        : 'That session had already ended.',
    })
  })
}
