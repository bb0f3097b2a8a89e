import { isTesseraError } from '../core/errors.js'
import { secretCommand, UsageError } from './commands/secret.js'
import { serveCommand } from './commands/serve.js'

type Command = (args: readonly string[], out: (line: string) => void) => number | Promise<number>

const COMMANDS: Record<string, Command> = {
  secret: secretCommand,
  serve: serveCommand,
  // Loaded on use: these open the database, `secret` and `--help` need none of it.
  user: async (args, out) => (await import('./commands/user.js')).userCommand(args, out),
  migrate: async (args, out) => (await import('./commands/user.js')).migrateCommand(args, out),
}

const HELP = `Usage: tessera <command> [options]

Commands:
  secret [--hex]   print a new random server secret
  serve [--port N] run the server (see docs/configuration.md)
  migrate          create or update the database tables
  user create <email> [--admin] | list | disable <email>
                   manage accounts (run "tessera user --help")

Run "tessera <command> --help" for a command's options.`

/**
 * Runs the `tessera` command line; resolves to the process exit code.
 * Errors are printed as one line on stderr; no stack trace for expected failures.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...args] = argv
  const out = (line: string): void => {
    process.stdout.write(`${line}\n`)
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    out(HELP)
    return name === undefined ? 2 : 0
  }
  const command = COMMANDS[name]
  if (command === undefined) {
    process.stderr.write(`tessera: unknown command "${name}"; run "tessera --help"\n`)
    return 2
  }
  try {
    return await command(args, out)
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`tessera ${name}: ${error.message}\n`)
      return 2
    }
    if (isTesseraError(error)) {
      process.stderr.write(`tessera ${name}: ${error.message} (${error.code})\n`)
      return 1
    }
    throw error
  }
}
