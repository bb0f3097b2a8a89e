import { randomBytes } from 'node:crypto'

/** `tessera secret [--hex]`: prints a new 32-byte secret. */
export function secretCommand(args: readonly string[], out: (line: string) => void): number {
  if (args.includes('--help') || args.includes('-h')) {
    out('Usage: tessera secret [--hex]')
    out('Prints a new random 32-byte secret (base64url, or hex with --hex).')
    return 0
  }
  const unknown = args.filter((arg) => arg !== '--hex')
  if (unknown.length > 0) {
    throw new UsageError(`unknown option ${unknown[0]}; try: tessera secret --help`)
  }
  const bytes = randomBytes(32)
  out(args.includes('--hex') ? bytes.toString('hex') : bytes.toString('base64url'))
  process.stderr.write(
    '# Put it in TESSERA_SECRET (your .env or the secret store of your host); never commit it.\n',
  )
  return 0
}

/** A mistake in the command line: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}
