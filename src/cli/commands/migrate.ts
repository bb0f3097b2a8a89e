import { parseCommandArgs, wantsHelp } from '../args.js'
import { withCliContext, type CliIO } from '../context.js'

const HELP = `Usage: tessera migrate [--json]

Applies pending database migrations (accounts, audit, signing keys, and the session,
refresh-token and rate-limit tables when they live in the database) to DATABASE_URL, and
prints what it applied. Safe to run while servers run, and more than once.

Options:
  --json   print {"applied": [names]}`

/** `tessera migrate`: applies pending migrations and prints their names. */
export async function migrateCommand(args: readonly string[], io: CliIO): Promise<number> {
  if (wantsHelp(args)) {
    io.out(HELP)
    return 0
  }
  const { values } = parseCommandArgs(
    args,
    { json: { type: 'boolean' } },
    {
      command: 'migrate',
      min: 0,
      max: 0,
    },
  )
  // Opening the context is the migration: openBackends migrates exactly as the server does.
  const applied = await withCliContext(io, (context) =>
    Promise.resolve([...context.migrationsApplied]),
  )
  if (values.json === true) io.out(JSON.stringify({ applied }))
  else if (applied.length === 0) io.out('database is up to date; nothing applied')
  else for (const name of applied) io.out(`applied ${name}`)
  return 0
}
