/* A user's sessions: the list, revoking one, revoking all. */
import {
  actionContext,
  pageContext,
  send,
  type AdminApp,
  type AdminContext,
  type AdminKit,
} from '../context.js'
import { redirectWith, takeFlash } from '../flash.js'
import { csrfFor, param, postAction } from '../forms.js'
import { sessionsPage } from '../views/sessions.js'
import { findUserOr404, userPath } from './users.js'

const SESSION_ID = /^[A-Za-z0-9_-]{22}$/

/** The routes under `/users/:id/sessions`. */
export function sessionRoutes(app: AdminApp, kit: AdminKit): void {
  const { auth, appSessions } = kit.deps

  // The service's revokeSession / revokeOtherSessions take no actor, so the panel revokes through
  // the session manager and records the event with the acting administrator itself.
  async function recordRevoked(c: AdminContext, userId: string, count: number): Promise<void> {
    const { actorId, ...request } = actionContext(kit, c)
    await auth.audit.record({
      type: 'session_revoked',
      outcome: 'success',
      userId,
      ...request,
      detail: { count, actorId },
    })
  }

  app.get('/users/:id/sessions', async (c) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    const flash = await takeFlash(kit, c)
    const sessions = await appSessions.list(user.id)
    return send(
      c,
      sessionsPage(
        pageContext(kit, c, csrfFor(kit, c.get('session')), flash),
        user,
        sessions,
        kit.now(),
      ),
    )
  })

  postAction(app, kit, '/users/:id/sessions/revoke-all', async (c) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    const count = await appSessions.revokeAll(user.id)
    await recordRevoked(c, user.id, count)
    return redirectWith(kit, c, `${userPath(user)}/sessions`, {
      kind: 'ok',
      text: `Revoked ${count} session${count === 1 ? '' : 's'} of ${user.email}.`,
    })
  })

  postAction(app, kit, '/users/:id/sessions/:sid/revoke', async (c) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    const sid = param(c, 'sid')
    const revoked = SESSION_ID.test(sid) && (await appSessions.revokeById(user.id, sid))
    if (revoked) await recordRevoked(c, user.id, 1)
    return redirectWith(kit, c, `${userPath(user)}/sessions`, {
      kind: revoked ? 'ok' : 'error',
      text: revoked
        ? `Revoked session ${sid.slice(0, 8)} of ${user.email}.`
        : 'That session had already ended.',
    })
  })
}
