import { isTesseraError } from '../core/errors.js'
import { secretCommand, UsageError } from './commands/secret.js'
import { serveCommand } from './commands/serve.js'

type Command = (args: readonly string[], out: (line: string) => void) => number | Promise<number>

const COMMANDS: Record<string, Command> = {
  secret: secretCommand,
  serve: serveCommand,
}

const HELP = `Usage: tessera <command> [options]

Commands:
  secret [--hex]   print a new random server secret
  serve [--port N] run the server (see docs/configuration.md)

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
