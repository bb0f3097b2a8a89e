import type { User } from '../../auth/accounts.js'
import { createCredentials } from '../../auth/credentials.js'
import { parseEmail } from '../../auth/email.js'
import { createSecondFactors, type SecondFactors } from '../../auth/second-factors.js'
import { TesseraError } from '../../core/errors.js'
import { iso, parseCommandArgs, table, wantsHelp } from '../args.js'
import { findUser, oneLine, withCliContext, type CliContext, type CliIO } from '../context.js'
import { readNewPassword } from '../password-input.js'
import { UsageError } from './secret.js'

const HELP = `Usage: tessera user <subcommand> [options]

Subcommands:
  create <email> [--admin] [--password-stdin] [--json]
      create an account; the password is read as for passwd. --admin makes it an admin.
  list [--search TEXT] [--json]
      list accounts (by e-mail), optionally only those whose e-mail contains TEXT
  disable <email|id>
      mark the account inactive and end all its sessions and refresh tokens
  enable <email|id>
      mark a disabled account active again (its password works again)
  delete <email|id> --yes
      delete the account, its group memberships, grants and reset links, and end all its
      sessions and refresh tokens; --yes is required (there is no undo)
  promote <email|id>
      make the account an administrator (the admin panel and every permission)
  demote <email|id>
      take the administrator flag away (groups and permissions stay)
  passwd <email|id> [--password-stdin]
      set a new password and end all the account's sessions and refresh tokens
  mfa <email|id> [--json]
      show the account's second factors: authenticator app, recovery codes left
  mfa reset <email|id>
      remove the account's second factors (a lost phone): the password alone signs in again,
      and the user may set up a new authenticator

Passwords: on a terminal you are asked twice (nothing echoed), and again when the two
differ; otherwise, or with --password-stdin, one line is read from stdin. The server's password policy applies
(TESSERA_PASSWORD_MIN_LENGTH, TESSERA_PASSWORD_MAX_LENGTH, common passwords refused).
A user is named by e-mail (anything with "@") or by id. Every change is recorded in the
audit log, as the same change in the admin panel is.`

const SUBCOMMANDS = [
  'create',
  'list',
  'disable',
  'enable',
  'delete',
  'promote',
  'demote',
  'passwd',
  'mfa',
] as const
type Subcommand = (typeof SUBCOMMANDS)[number]

/** What the CLI records as the actor of its changes in the audit log. */
const CLI_CONTEXT = { userAgent: 'tessera-cli' }

/** `tessera user create|list|disable|enable|delete|promote|demote|passwd`. */
export async function userCommand(args: readonly string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = args
  if (sub === undefined || sub === '--help' || sub === '-h' || wantsHelp(rest)) {
    io.out(HELP)
    return sub === undefined ? 2 : 0
  }
  if (!SUBCOMMANDS.includes(sub as Subcommand)) {
    throw new UsageError(`unknown subcommand "${sub}"; try: tessera user --help`)
  }
  switch (sub as Subcommand) {
    case 'create':
      return createUser(rest, io)
    case 'list':
      return listUsers(rest, io)
    case 'disable':
      return disableUser(rest, io)
    case 'enable':
      return enableUser(rest, io)
    case 'delete':
      return deleteUser(rest, io)
    case 'promote':
      return setAdmin(rest, io, true)
    case 'demote':
      return setAdmin(rest, io, false)
    case 'passwd':
      return changePassword(rest, io)
    case 'mfa':
      return rest[0] === 'reset' ? resetMFA(rest.slice(1), io) : showMFA(rest, io)
  }
}

/** The second factors over the CLI's database and keyring, as the server builds them. */
function secondFactors(context: CliContext): SecondFactors {
  return createSecondFactors(context.backends.db, {
    keyring: context.keyring,
    audit: context.audit,
  })
}

async function showMFA(args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    args,
    { json: { type: 'boolean' } },
    { command: 'user mfa', min: 1, max: 1 },
  )
  const { user, status } = await withCliContext(io, async (context) => {
    const found = await findUser(context.accounts, positionals[0] ?? '')
    return { user: found, status: await secondFactors(context).status(found.id) }
  })
  if (values.json === true) {
    io.out(
      JSON.stringify({
        user: { id: user.id, email: user.email },
        totp:
          status.totp === null
            ? null
            : { enabled: status.totp.enabled, createdAt: iso(status.totp.createdAt) },
        recoveryCodes: status.recoveryCodes,
      }),
    )
    return 0
  }
  const app =
    status.totp === null
      ? 'none'
      : status.totp.enabled
        ? `active since ${iso(status.totp.createdAt) ?? '?'}`
        : 'enrolment pending (not confirmed)'
  io.out(
    `${user.email}: authenticator app ${app}; ${status.recoveryCodes.remaining} recovery code(s) left`,
  )
  return 0
}

async function resetMFA(args: readonly string[], io: CliIO): Promise<number> {
  const { positionals } = parseCommandArgs(args, {}, { command: 'user mfa reset', min: 1, max: 1 })
  const { user, removed } = await withCliContext(io, async (context) => {
    const found = await findUser(context.accounts, positionals[0] ?? '')
    // Audited as mfa_reset, with the CLI as the user agent (as the admin panel's reset).
    return { user: found, removed: await secondFactors(context).reset(found.id, CLI_CONTEXT) }
  })
  io.out(
    removed.totp || removed.recoveryCodes > 0
      ? `removed the second factors of ${user.email} (authenticator: ${removed.totp ? 'yes' : 'no'}, unused recovery codes: ${removed.recoveryCodes})`
      : `${user.email} had no second factor`,
  )
  return 0
}

/** The JSON shape of a user in `--json` output: no password hash, ISO times. */
export function userJson(user: User): Record<string, string | boolean | null> {
  return {
    id: user.id,
    email: user.email,
    isAdmin: user.isAdmin,
    isActive: user.isActive,
    createdAt: iso(user.createdAt),
    lastLoginAt: iso(user.lastLoginAt),
    passwordChangedAt: iso(user.passwordChangedAt),
  }
}

async function createUser(args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    args,
    {
      admin: { type: 'boolean' },
      'password-stdin': { type: 'boolean' },
      json: { type: 'boolean' },
    },
    { command: 'user create', min: 1, max: 1 },
  )
  const email = positionals[0] ?? ''
  const user = await withCliContext(io, async (context) => {
    // Ask for the password before hashing or writing anything, and refuse a taken e-mail
    // before asking (the unique index still decides a race).
    if (parseEmail(email) === null) {
      throw new TesseraError(
        'invalid_argument',
        `"${oneLine(email)}" is not a valid e-mail address`,
      )
    }
    if ((await context.accounts.findUserByEmail(email)) !== null) {
      throw new TesseraError('conflict', 'an account with this email already exists')
    }
    const password = await readNewPassword(io, {
      fromStdin: values['password-stdin'] === true,
      // The server's rule (password-policy.ts), with the account's e-mail as the estimator's input.
      policy: { ...context.passwordPolicy, userInputs: [email] },
    })
    const passwordHash = await context.passwords.hash(password)
    return context.accounts.createUser(
      { email, passwordHash, isAdmin: values.admin === true },
      CLI_CONTEXT,
    )
  })
  if (values.json === true) io.out(JSON.stringify({ user: userJson(user) }))
  else io.out(`created ${user.isAdmin ? 'admin ' : ''}user ${user.email} (id ${user.id})`)
  return 0
}

async function listUsers(args: readonly string[], io: CliIO): Promise<number> {
  const { values } = parseCommandArgs(
    args,
    { search: { type: 'string' }, json: { type: 'boolean' } },
    { command: 'user list', min: 0, max: 0 },
  )
  const search = typeof values.search === 'string' ? values.search : undefined
  const users = await withCliContext(io, async (context) => {
    const all: User[] = []
    for (;;) {
      const page = await context.accounts.listUsers({
        limit: 500,
        offset: all.length,
        ...(search === undefined ? {} : { search }),
      })
      all.push(...page.users)
      if (page.users.length === 0 || all.length >= page.total) return all
    }
  })
  if (values.json === true) {
    io.out(JSON.stringify({ users: users.map(userJson), total: users.length }))
    return 0
  }
  if (users.length === 0) {
    io.out(search === undefined ? 'no users' : 'no matching users')
    return 0
  }
  const rows = users.map((user) => [
    user.id,
    user.email,
    user.isAdmin ? 'yes' : 'no',
    user.isActive ? 'yes' : 'no',
    iso(user.createdAt) ?? '-',
    iso(user.lastLoginAt) ?? '-',
  ])
  for (const line of table(['ID', 'EMAIL', 'ADMIN', 'ACTIVE', 'CREATED', 'LAST LOGIN'], rows)) {
    io.out(line)
  }
  return 0
}

async function disableUser(args: readonly string[], io: CliIO): Promise<number> {
  const { positionals } = parseCommandArgs(args, {}, { command: 'user disable', min: 1, max: 1 })
  const result = await withCliContext(io, async (context) => {
    const user = await findUser(context.accounts, positionals[0] ?? '')
    const before = (await context.sessions.list(user.id)).length
    // disableUser revokes the sessions itself (accounts.ts); refresh tokens are ended here.
    await context.accounts.disableUser(user.id, CLI_CONTEXT)
    const refresh = await endRefreshTokens(context, user.id)
    return { user, sessions: before, refresh }
  })
  io.out(
    `disabled ${result.user.email}; ended ${result.sessions} session(s) and ${result.refresh} refresh token family(ies)`,
  )
  return 0
}

// enable, delete, promote and demote call the same accounts methods as the admin panel's
// buttons, so the audit log records the same events (user_enabled, user_deleted,
// permission_changed), with the CLI as the user agent.

async function enableUser(args: readonly string[], io: CliIO): Promise<number> {
  const { positionals } = parseCommandArgs(args, {}, { command: 'user enable', min: 1, max: 1 })
  const user = await withCliContext(io, async (context) => {
    const found = await findUser(context.accounts, positionals[0] ?? '')
    await context.accounts.enableUser(found.id, CLI_CONTEXT)
    return found
  })
  io.out(
    user.isActive ? `${user.email} was already enabled` : `enabled ${user.email}; it can sign in`,
  )
  return 0
}

async function deleteUser(args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    args,
    { yes: { type: 'boolean' } },
    { command: 'user delete', min: 1, max: 1 },
  )
  if (values.yes !== true) {
    throw new UsageError(
      `deleting "${oneLine(positionals[0] ?? '')}" cannot be undone: add --yes to confirm (or "tessera user disable" to keep the account)`,
    )
  }
  const result = await withCliContext(io, async (context) => {
    const user = await findUser(context.accounts, positionals[0] ?? '')
    const before = (await context.sessions.list(user.id)).length
    // deleteUser revokes the sessions itself (accounts.ts); refresh tokens are ended here.
    await context.accounts.deleteUser(user.id, CLI_CONTEXT)
    const refresh = await endRefreshTokens(context, user.id)
    return { user, sessions: before, refresh }
  })
  io.out(
    `deleted ${result.user.email}; ended ${result.sessions} session(s) and ${result.refresh} refresh token family(ies)`,
  )
  return 0
}

async function setAdmin(args: readonly string[], io: CliIO, isAdmin: boolean): Promise<number> {
  const command = isAdmin ? 'user promote' : 'user demote'
  const { positionals } = parseCommandArgs(args, {}, { command, min: 1, max: 1 })
  const result = await withCliContext(io, async (context) => {
    const user = await findUser(context.accounts, positionals[0] ?? '')
    if (user.isAdmin !== isAdmin) await context.accounts.setAdmin(user.id, { isAdmin }, CLI_CONTEXT)
    const admins = isAdmin ? 1 : await countAdmins(context)
    return { user, admins }
  })
  const { user } = result
  if (user.isAdmin === isAdmin) {
    io.out(`${user.email} ${isAdmin ? 'is already' : 'was not'} an administrator`)
  } else {
    io.out(
      isAdmin
        ? `${user.email} is now an administrator`
        : `${user.email} is no longer an administrator`,
    )
  }
  if (!isAdmin && result.admins === 0) {
    io.err(
      'tessera user demote: note: no active administrator is left; "tessera user promote" or "tessera user create --admin" makes one',
    )
  }
  return 0
}

async function countAdmins(context: CliContext): Promise<number> {
  let count = 0
  for (let offset = 0; ; offset += 500) {
    const page = await context.accounts.listUsers({ limit: 500, offset })
    count += page.users.filter((user) => user.isAdmin && user.isActive).length
    if (page.users.length === 0 || offset + page.users.length >= page.total) return count
  }
}

async function changePassword(args: readonly string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    args,
    { 'password-stdin': { type: 'boolean' } },
    { command: 'user passwd', min: 1, max: 1 },
  )
  const result = await withCliContext(io, async (context) => {
    const user = await findUser(context.accounts, positionals[0] ?? '')
    const password = await readNewPassword(io, {
      fromStdin: values['password-stdin'] === true,
      policy: { ...context.passwordPolicy, userInputs: [user.email] },
    })
    const hash = await context.passwords.hash(password)
    await createCredentials(context.backends.db).setPasswordHash(user.id, hash)
    // SECURITY: a password set by an operator ends every session and refresh token of the
    // account (whoever held them may be why the password is being reset).
    const sessions = await context.sessions.revokeAll(user.id)
    const refresh = await endRefreshTokens(context, user.id)
    await context.audit.record({
      type: 'password_changed',
      outcome: 'success',
      userId: user.id,
      userAgent: CLI_CONTEXT.userAgent,
      detail: { via: 'cli' },
    })
    return { user, sessions, refresh }
  })
  io.out(
    `password of ${result.user.email} changed; ended ${result.sessions} session(s) and ${result.refresh} refresh token family(ies)`,
  )
  return 0
}

function endRefreshTokens(context: CliContext, userId: string): Promise<number> {
  return context.backends.refreshStore.deleteByUser(userId)
}
