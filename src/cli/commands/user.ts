import { randomBytes } from 'node:crypto'
import { parseEmail } from '../../auth/email.js'
import { checkPasswordPolicy } from '../../auth/password-policy.js'
import { openCLIContext } from './context.js'
import { UsageError } from './secret.js'

const HELP = `Usage: tessera user <subcommand> [options]

  create <email> [--admin] [--json]   create an account; the password is read from stdin
                                      (one line) when stdin is not a terminal, otherwise a
                                      random one is generated and printed once
  list [--search TEXT] [--json]       list accounts
  disable <email>                     disable an account and end its sessions

Uses the server's configuration (DATABASE_URL, ...; see docs/configuration.md).`

async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return (Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '').trimEnd()
}

/** `tessera user create|list|disable`. */
export async function userCommand(
  args: readonly string[],
  out: (line: string) => void,
): Promise<number> {
  const [sub, ...rest] = args
  if (sub === undefined || sub === '--help' || sub === '-h' || rest.includes('--help')) {
    out(HELP)
    return sub === undefined ? 2 : 0
  }
  const json = rest.includes('--json')
  const positional = rest.filter((arg) => !arg.startsWith('--'))
  switch (sub) {
    case 'create': {
      const unknown = rest.filter(
        (arg) => arg.startsWith('--') && !['--admin', '--json'].includes(arg),
      )
      if (unknown.length > 0) throw new UsageError(`unknown option ${unknown[0]}`)
      const email = parseEmail(positional[0])
      if (email === null)
        throw new UsageError('give an e-mail address: tessera user create <email>')
      let password: string
      let generated = false
      if (process.stdin.isTTY) {
        password = randomBytes(18).toString('base64url')
        generated = true
      } else {
        password = await readStdinLine()
      }
      const context = await openCLIContext()
      try {
        const policy = checkPasswordPolicy(password, {
          minLength: context.config.passwordMinLength,
          maxLength: context.config.passwordMaxLength,
        })
        if (!policy.ok) throw new UsageError(`password refused: ${policy.message}`)
        if ((await context.accounts.findUserByEmail(email)) !== null) {
          throw new UsageError(`an account with the e-mail ${email} exists already`)
        }
        const user = await context.accounts.createUser({
          email,
          passwordHash: await context.passwords.hash(password),
          isAdmin: rest.includes('--admin'),
        })
        if (json) {
          out(
            JSON.stringify({
              id: user.id,
              email: user.email,
              isAdmin: user.isAdmin,
              ...(generated ? { password } : {}),
            }),
          )
        } else {
          out(`created ${user.isAdmin ? 'admin ' : ''}${user.email} (${user.id})`)
          if (generated) out(`password: ${password}   (shown once; change it after signing in)`)
        }
        return 0
      } finally {
        await context.close()
      }
    }
    case 'list': {
      const index = rest.indexOf('--search')
      const search = index === -1 ? undefined : rest[index + 1]
      const context = await openCLIContext()
      try {
        const { users, total } = await context.accounts.listUsers({
          limit: 500,
          ...(search === undefined ? {} : { search }),
        })
        if (json) {
          out(
            JSON.stringify({
              total,
              users: users.map((user) => ({
                id: user.id,
                email: user.email,
                isAdmin: user.isAdmin,
                isActive: user.isActive,
                createdAt: new Date(user.createdAt).toISOString(),
              })),
            }),
          )
        } else {
          for (const user of users) {
            const flags = [user.isAdmin ? 'admin' : '', user.isActive ? '' : 'disabled']
              .filter(Boolean)
              .join(',')
            out(`${user.id}  ${user.email}${flags === '' ? '' : `  [${flags}]`}`)
          }
          out(`${total} user${total === 1 ? '' : 's'}`)
        }
        return 0
      } finally {
        await context.close()
      }
    }
    case 'disable': {
      const email = parseEmail(positional[0])
      if (email === null)
        throw new UsageError('give an e-mail address: tessera user disable <email>')
      const context = await openCLIContext()
      try {
        const user = await context.accounts.findUserByEmail(email)
        if (user === null || !(await context.accounts.disableUser(user.id))) {
          throw new UsageError(`no account with the e-mail ${email}`)
        }
        out(`disabled ${email}; its sessions are ended`)
        return 0
      } finally {
        await context.close()
      }
    }
    default:
      throw new UsageError(`unknown subcommand "${sub}"; try: tessera user --help`)
  }
}

/** `tessera migrate`: creates or updates every table the server uses. */
export async function migrateCommand(
  args: readonly string[],
  out: (line: string) => void,
): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    out(
      'Usage: tessera migrate\nCreates or updates the tables of DATABASE_URL (the server also does it at start).',
    )
    return 0
  }
  if (args.length > 0)
    throw new UsageError(`unknown option ${args[0]}; try: tessera migrate --help`)
  const context = await openCLIContext()
  try {
    out(`database is up to date (${context.backends.describe})`)
    return 0
  } finally {
    await context.close()
  }
}
