import { readFileSync } from 'node:fs'
import { isTesseraError } from '../core/errors.js'
import type { CliIO } from './context.js'
import { keysCommand } from './commands/keys.js'
import { migrateCommand } from './commands/migrate.js'
import { secretCommand, UsageError } from './commands/secret.js'
import { serveCommand } from './commands/serve.js'
import { sessionsCommand } from './commands/sessions.js'
import { userCommand } from './commands/user.js'

export type { CliIO } from './context.js'

type Command = (args: readonly string[], io: CliIO) => number | Promise<number>

const COMMANDS: Record<string, Command> = {
  secret: (args, io) => secretCommand(args, io.out),
  serve: serveCommand,
  migrate: migrateCommand,
  user: userCommand,
  sessions: sessionsCommand,
  keys: keysCommand,
}

const GROUPS: ReadonlySet<string> = new Set(['user', 'sessions', 'keys'])

const HELP = `Usage: tessera <command> [options]
       tessera --version

Commands:
  secret [--hex]                      print a new random server secret
  serve [--port N]                    run the server (see docs/configuration.md)
  migrate [--json]                    apply pending database migrations
  user create <email> [--admin]       create an account (password prompted or on stdin)
  user list [--search TEXT] [--json]  list accounts
  user disable <email|id>             disable an account and end its sessions
  user enable <email|id>              enable a disabled account
  user delete <email|id> --yes        delete an account and end its sessions
  user promote|demote <email|id>      give or take the administrator flag
  user passwd <email|id>              set a new password and end the account's sessions
  user mfa [reset] <email|id>         show (or remove) an account's second factors
  sessions list <user> [--json]       list a user's live sessions
  sessions revoke <user|session-id>   end all sessions of a user, or one session
  keys list [--json]                  list the access-token signing keys (no key material)
  keys rotate [--json]                make the next signing key current

Commands that touch data read the server's configuration (DATABASE_URL, REDIS_URL,
TESSERA_SECRET, ... from the environment, .env and .env.local), so they act on what a
running server uses. Exit codes: 0 success, 1 failure, 2 usage error.
Run "tessera <command> --help" for a command's options. Docs: docs/cli.md.
Outside a project, run it as "npx tessera-auth <command>".`

/** The installed package's name and version, from its package.json. */
export function packageVersion(): string {
  // src/cli/main.ts and dist/cli/main.js are both two levels below package.json.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    name: string
    version: string
  }
  return `${pkg.name} ${pkg.version}`
}

/**
 * Runs the `tessera` command line; resolves to the process exit code (0 success, 1 failure,
 * 2 usage error). Errors are printed as one line on stderr; no stack trace for expected failures.
 *
 * @param io where configuration comes from and output goes; each field defaults to the
 * process's own (`process.env`, `process.cwd()`, stdin, stdout, stderr). Tests pass their own.
 */
export async function main(argv: readonly string[], io: Partial<CliIO> = {}): Promise<number> {
  const cli: CliIO = {
    env: io.env ?? process.env,
    cwd: io.cwd ?? process.cwd(),
    stdin: io.stdin ?? process.stdin,
    out: io.out ?? ((line) => void process.stdout.write(`${line}\n`)),
    err: io.err ?? ((line) => void process.stderr.write(`${line}\n`)),
    prompt: io.prompt ?? ((text) => void process.stderr.write(text)),
  }
  const [name, ...args] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    cli.out(HELP)
    return name === undefined ? 2 : 0
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    cli.out(packageVersion())
    return 0
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined
  if (command === undefined) {
    cli.err(`tessera: unknown command "${name}"; run "tessera --help"`)
    return 2
  }
  // "tessera user disable: ..." rather than "tessera user: ...", for commands with subcommands.
  const sub = args[0] ?? ''
  const label = GROUPS.has(name) && /^[a-z]{1,20}$/.test(sub) ? `${name} ${sub}` : name
  try {
    return await command(args, cli)
  } catch (error) {
    if (error instanceof UsageError) {
      cli.err(`tessera ${label}: ${error.message}`)
      return 2
    }
    if (isTesseraError(error)) {
      cli.err(`tessera ${label}: ${error.message} (${error.code})`)
      return 1
    }
    // Anything else is still one line (no stack trace, which could carry data); the
    // TESSERA_DEBUG=1 environment variable prints the whole error.
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error)
    cli.err(`tessera ${label}: unexpected error: ${message}`)
    if (cli.env.TESSERA_DEBUG === '1') cli.err(String((error as Error).stack ?? error))
    return 1
  }
}
