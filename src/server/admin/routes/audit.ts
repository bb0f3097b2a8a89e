/* The audit log, newest first, filtered by user and event type. */
import type { AuditEvent, AuditEventType } from '../../../auth/audit.js'
import { pageContext, send, type AdminApp, type AdminKit } from '../context.js'
import { takeFlash } from '../flash.js'
import { csrfFor, pageNumber } from '../forms.js'
import { auditPage } from '../views/audit.js'
import type { AuditNames } from '../views/audit-detail.js'
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
  'identity_linked',
  'identity_unlinked',
] as const satisfies readonly AuditEventType[]
// Fails to compile when an event type is added to the audit log but not to the filter above.
const AUDIT_TYPES_COMPLETE: Exclude<AuditEventType, (typeof AUDIT_TYPES)[number]> extends never
  ? true
  : false = true
void AUDIT_TYPES_COMPLETE

/**
 * The e-mails of the users and actors of `events` and the names of their groups, in two queries
 * at most (the groups only when an event names one).
 */
export async function auditNames(
  kit: AdminKit,
  events: readonly AuditEvent[],
): Promise<AuditNames> {
  const ids: string[] = []
  let needsGroups = false
  for (const event of events) {
    if (event.userId !== null) ids.push(event.userId)
    if (typeof event.detail.actorId === 'string') ids.push(event.detail.actorId)
    if (typeof event.detail.groupId === 'string') needsGroups = true
  }
  const [emails, groups] = await Promise.all([
    kit.deps.auth.accounts.findEmails(ids),
    needsGroups ? kit.deps.auth.accounts.listGroups() : Promise.resolve([]),
  ])
  return { emails, groups: new Map(groups.map((group) => [group.id, group.name])) }
}

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
    const names = await auditNames(kit, shown)
    const data = {
      events: shown,
      names,
      types: AUDIT_TYPES,
      user: userFilter,
      type: type ?? '',
      page: pageNo,
      hasNext: events.length > PAGE_SIZE,
      ...(error === undefined ? {} : { error }),
    }
    return send(
      c,
      auditPage(pageContext(kit, c, csrfFor(c), flash), data, kit.now()),
      error === undefined ? 200 : 400,
    )
  })
}
