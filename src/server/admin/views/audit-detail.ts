/*
 * The audit log's details in words: `{"change":"granted","codename":"posts.edit"}` reads
 * "granted posts.edit", a group id reads as the group's name, a reason code as a phrase. Keys
 * this file does not know are still shown, as "key: value", so nothing recorded is hidden.
 */
import type { AuditDetailValue, AuditEvent } from '../../../auth/audit.js'
import { plural } from './layout.js'

/** Names to show instead of ids. */
export interface AuditNames {
  /** User id → e-mail. */
  emails: ReadonlyMap<string, string>
  /** Group id → name. */
  groups: ReadonlyMap<string, string>
}

const REASONS: Record<string, string> = {
  unknown_account: 'no such account',
  wrong_password: 'wrong password',
  inactive: 'account disabled',
  not_admin: 'not allowed in the admin panel',
  closed: 'signup is closed',
  conflict: 'e-mail already taken',
  wrong_current_password: 'wrong current password',
  refresh_token_reused: 'a refresh token was used twice',
}

const ACTIONS: Record<string, string> = {
  login: 'sign-in',
  admin_login: 'admin panel sign-in',
  change_password: 'password change',
  token: 'token grant',
}

// Shown elsewhere (the actor column, the user column) or folded into another phrase.
const HANDLED = new Set([
  'actorId',
  'panel',
  'reason',
  'email',
  'change',
  'groupId',
  'codename',
  'isAdmin',
  'count',
  'sessionsRevoked',
  'by',
  'action',
  'scope',
  'retryAfterSeconds',
  'via',
])

function text(value: AuditDetailValue | undefined): string | undefined {
  if (value === undefined || value === null) return undefined
  return String(value)
}

function groupName(detail: AuditEvent['detail'], names: AuditNames): string {
  const id = text(detail.groupId)
  if (id === undefined) return 'a group'
  const name = names.groups.get(id)
  return name === undefined ? `group ${id.slice(0, 8)} (deleted)` : `group ${name}`
}

function change(detail: AuditEvent['detail'], names: AuditNames): string | undefined {
  const codename = text(detail.codename) ?? 'a permission'
  switch (text(detail.change)) {
    case undefined:
      return undefined
    case 'set_admin':
      return detail.isAdmin === true ? 'made an administrator' : 'no longer an administrator'
    case 'group_created':
      return `created ${groupName(detail, names)}`
    case 'group_deleted':
      return `deleted ${groupName(detail, names)}`
    case 'group_added':
      return `added to ${groupName(detail, names)}`
    case 'group_removed':
      return `removed from ${groupName(detail, names)}`
    case 'granted':
      return `granted ${codename}`
    case 'revoked':
      return `revoked ${codename}`
    case 'group_granted':
      return `granted ${codename} to ${groupName(detail, names)}`
    case 'group_revoked':
      return `revoked ${codename} from ${groupName(detail, names)}`
    case 'permission_deleted':
      return `deleted permission ${codename}`
    default:
      return `${text(detail.change)}${detail.codename === undefined ? '' : ` ${codename}`}`
  }
}

/** The details of one audit event as a short phrase ('' when there are none). */
export function describeDetail(event: AuditEvent, names: AuditNames): string {
  const { detail } = event
  const parts: string[] = []
  if (detail.panel === 'admin') parts.push('admin panel')
  if (detail.via === 'setup_link') parts.push('through the setup link')
  const reason = text(detail.reason)
  if (reason !== undefined) parts.push(REASONS[reason] ?? reason.replace(/_/g, ' '))
  const email = text(detail.email)
  if (email !== undefined) parts.push(email)
  const changed = change(detail, names)
  if (changed !== undefined) parts.push(changed)
  if (typeof detail.count === 'number') parts.push(plural(detail.count, 'session'))
  if (typeof detail.sessionsRevoked === 'number') {
    parts.push(`${plural(detail.sessionsRevoked, 'session')} ended`)
  }
  if (detail.by === 'admin') parts.push('set by an administrator')
  const action = text(detail.action)
  if (action !== undefined) parts.push(ACTIONS[action] ?? action.replace(/_/g, ' '))
  const scope = text(detail.scope)
  if (scope !== undefined) parts.push(`limited per ${scope}`)
  if (typeof detail.retryAfterSeconds === 'number') {
    parts.push(`retry after ${detail.retryAfterSeconds} s`)
  }
  for (const key of Object.keys(detail)) {
    if (!HANDLED.has(key)) parts.push(`${key}: ${text(detail[key]) ?? '—'}`)
  }
  return parts.join('; ')
}
