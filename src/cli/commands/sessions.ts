import type { User } from '../../auth/accounts.js'
import { TesseraError } from '../../core/errors.js'
import type { Session } from '../../core/session-manager.js'
import { iso, parseCommandArgs, table, wantsHelp } from '../args.js'
import { findUser, oneLine, withCliContext, type CliContext, type CliIO } from '../context.js'
import { UsageError } from './secret.js'

const HELP = `Usage: tessera sessions <subcommand> [options]

Subcommands:
  list <user> [--json]
      the user's live browser sessions, most recently seen first
  revoke <user>
      end every session of the user
  revoke <session-id>
      end that one session (searches every user's sessions)
  revoke <user> <session-id>
      end that one session of that user (no search)

<user> is an e-mail (contains "@") or a user id (a UUID, 36 characters).
<session-id> is the public session id shown by "sessions list" and GET /auth/sessions
(22 characters of A-Z a-z 0-9 _ -); the three shapes never overlap.`

const SESSION_ID = /^[A-Za-z0-9_-]{22}$/

/** True when `value` has the shape of a public session id. */
export function isSessionId(value: string): boolean {
  return SESSION_ID.test(value)
}

/** `tessera sessions list|revoke`. */
export async function sessionsCommand(args: readonly string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = args
  if (sub === undefined || sub === '--help' || sub === '-h' || wantsHelp(rest)) {
    io.out(HELP)
    return sub === undefined ? 2 : 0
  }
  if (sub === 'list') return listSessions(rest, io)
  if (sub === 'revoke') return revokeSessions(rest, io)
  throw new UsageError(`unknown subcommand "${sub}"; try: tessera sessions --help`)
}

/** The JSON shape of a session in `--json` output: public id, times, ip, user agent; no token. */
export function sessionJson(session: Session): Record<string, string | null> {
  return {
    id: session.id,
    createdAt: iso(session.createdAt),
    lastSeenAt: iso(session.lastSeenAt),
    expiresAt: iso(session.expiresAt),
    absoluteExpiresAt: iso(session.absoluteExpiresAt),
    ip: session.meta.ip ?? null,
    userAgent: session.meta.userAgent ?? null,
  }
}

async function listSessions(args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    args,
    { json: { type: 'boolean' } },
    { command: 'sessions list', min: 1, max: 1 },
  )
  const { user, sessions } = await withCliContext(io, async (context) => {
    const found = await findUser(context.accounts, positionals[0] ?? '')
    return { user: found, sessions: await context.sessions.list(found.id) }
  })
  if (values.json === true) {
    io.out(
      JSON.stringify({
        user: { id: user.id, email: user.email },
        sessions: sessions.map(sessionJson),
      }),
    )
    return 0
  }
  if (sessions.length === 0) {
    io.out(`${user.email} has no live sessions`)
    return 0
  }
  const rows = sessions.map((session) => [
    session.id,
    iso(session.createdAt) ?? '-',
    iso(session.lastSeenAt) ?? '-',
    iso(session.expiresAt) ?? '-',
    session.meta.ip ?? '-',
    oneLine(session.meta.userAgent ?? '-').slice(0, 60),
  ])
  const header = ['ID', 'CREATED', 'LAST SEEN', 'EXPIRES', 'IP', 'USER AGENT']
  for (const line of table(header, rows)) io.out(line)
  return 0
}

async function revokeSessions(args: readonly string[], io: CliIO): Promise<number> {
  // Not util.parseArgs: a session id may start with "-" (base64url), and must not be read as an
  // option. Anything else starting with "-" is an unknown option.
  const positionals: string[] = []
  for (const arg of args) {
    if (arg === '--') continue
    if (arg.startsWith('-') && !isSessionId(arg)) {
      throw new UsageError(`unknown option ${oneLine(arg)}; try: tessera sessions --help`)
    }
    positionals.push(arg)
  }
  if (positionals.length < 1 || positionals.length > 2) {
    throw new UsageError(
      'expected <user>, <session-id> or <user> <session-id>; try: tessera sessions --help',
    )
  }
  const [first = '', second] = positionals
  if (second !== undefined && !isSessionId(second)) {
    throw new UsageError(
      `"${oneLine(second)}" is not a session id (22 characters); try: tessera sessions --help`,
    )
  }
  await withCliContext(io, async (context) => {
    if (second !== undefined) {
      const user = await findUser(context.accounts, first)
      if (!(await context.sessions.revokeById(user.id, second))) {
        throw new TesseraError('not_found', `${user.email} has no session ${second}`)
      }
      io.out(`revoked session ${second} of ${user.email}`)
    } else if (isSessionId(first)) {
      const owner = await findSessionOwner(context, first)
      if (owner === null || !(await context.sessions.revokeById(owner.id, first))) {
        throw new TesseraError('not_found', `no live session ${first}`)
      }
      io.out(`revoked session ${first} of ${owner.email}`)
    } else {
      const user = await findUser(context.accounts, first)
      const count = await context.sessions.revokeAll(user.id)
      io.out(`revoked ${count} session(s) of ${user.email}`)
    }
  })
  return 0
}

// The store is keyed by the hash of the token, and a public id cannot be looked up directly
// (by design: session-manager.ts), so the owner is found by listing each user's sessions.
async function findSessionOwner(context: CliContext, sessionId: string): Promise<User | null> {
  for (let offset = 0; ; offset += 500) {
    const page = await context.accounts.listUsers({ limit: 500, offset })
    for (const user of page.users) {
      const sessions = await context.sessions.list(user.id)
      if (sessions.some((session) => session.id === sessionId)) return user
    }
    if (page.users.length < 500) return null
  }
}
