/* The audit log, newest first, filtered by user and event type. */
import type { AuditEventType } from '../../../auth/audit.js'
import { pageContext, send, type AdminApp, type AdminKit } from '../context.js'
import { takeFlash } from '../flash.js'
import { csrfFor, pageNumber } from '../forms.js'
import { auditPage } from '../views/audit.js'
import { isUserId } from './users.js'

const PAGE_SIZE = 25
const AUDIT_TYPES = [
  'signup',
  'login',
  'logout',
  'rate_limited',
  'password_changed',
  'password_reset_requested',
  'password_reset_used',
  'session_revoked',
  'user_created',
  'user_disabled',
  'user_enabled',
  'user_deleted',
  'permission_changed',
  'token_reused',
] as const satisfies readonly AuditEventType[]
// Fails to compile when an event type is added to the audit log but not to the filter above.
const AUDIT_TYPES_COMPLETE: Exclude<AuditEventType, (typeof AUDIT_TYPES)[number]> extends never
  ? true
  : false = true
void AUDIT_TYPES_COMPLETE

/** GET `/audit`. */
export function auditRoutes(app: AdminApp, kit: AdminKit): void {
  const { accounts, audit } = kit.deps.auth

  app.get('/audit', async (c) => {
    const flash = await takeFlash(kit, c)
    const userFilter = (c.req.query('user') ?? '').trim().slice(0, 320)
    const typeFilter = c.req.query('type') ?? ''
    const pageNo = pageNumber(c.req.query('page'))
    const type = (AUDIT_TYPES as readonly string[]).includes(typeFilter)
      ? (typeFilter as AuditEventType)
      : undefined
    let userId: string | undefined
    let error: string | undefined
    if (userFilter !== '') {
      const byEmail = userFilter.includes('@') ? await accounts.findUserByEmail(userFilter) : null
      if (byEmail !== null) userId = byEmail.id
      else if (isUserId(userFilter)) userId = userFilter
      else error = `No user “${userFilter}”.`
    }
    const events =
      error === undefined
        ? await audit.list({
            ...(userId === undefined ? {} : { userId }),
            ...(type === undefined ? {} : { type }),
            limit: PAGE_SIZE + 1,
            offset: (pageNo - 1) * PAGE_SIZE,
          })
        : []
    const shown = events.slice(0, PAGE_SIZE)
    const emails = new Map<string, string>()
    for (const id of new Set(
      shown.map((e) => e.userId).filter((id): id is string => id !== null),
    )) {
      const user = await accounts.findUserById(id)
      if (user !== null) emails.set(id, user.email)
    }
    const data = {
      events: shown,
      emails,
      types: AUDIT_TYPES,
      user: userFilter,
      type: type ?? '',
      page: pageNo,
      hasNext: events.length > PAGE_SIZE,
      ...(error === undefined ? {} : { error }),
    }
    return send(
      c,
      auditPage(pageContext(kit, c, csrfFor(kit, c.get('session')), flash), data, kit.now()),
      error === undefined ? 200 : 400,
    )
  })
}
