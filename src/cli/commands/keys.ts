import type { KeyInfo } from '../../auth/keys.js'
import { age, iso, parseCommandArgs, table, wantsHelp } from '../args.js'
import { withCliContext, type CliIO } from '../context.js'
import { UsageError } from './secret.js'

const HELP = `Usage: tessera keys <subcommand> [options]

Subcommands:
  list [--json]
      the access-token signing keys: kid, algorithm, status (next, current, previous), and
      how long ago each was created, activated and retired. Never any key material.
  rotate [--json]
      promote the next key to current, make a new next key, and delete previous keys whose
      tokens have all expired. Running servers pick the change up within about a minute.

The algorithm is TESSERA_JWT_ALG. HS256 keys come from TESSERA_SECRET: rotate the secret
instead (keep the old one in TESSERA_SECRET_FALLBACKS).`

/** `tessera keys list|rotate`. */
export async function keysCommand(args: readonly string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = args
  if (sub === undefined || sub === '--help' || sub === '-h' || wantsHelp(rest)) {
    io.out(HELP)
    return sub === undefined ? 2 : 0
  }
  if (sub !== 'list' && sub !== 'rotate') {
    throw new UsageError(`unknown subcommand "${sub}"; try: tessera keys --help`)
  }
  const { values } = parseCommandArgs(
    rest,
    { json: { type: 'boolean' } },
    {
      command: `keys ${sub}`,
      min: 0,
      max: 0,
    },
  )
  const result = await withCliContext(io, async (context) => {
    const keys = await context.keys()
    const before = keys.list().find((key) => key.status === 'current')?.kid ?? null
    const list = sub === 'rotate' ? await keys.rotate() : keys.list()
    return { algorithm: keys.algorithm, before, list }
  })
  const now = Date.now()
  const current = result.list.find((key) => key.status === 'current')?.kid ?? null
  if (values.json === true) {
    io.out(
      JSON.stringify({
        algorithm: result.algorithm,
        current,
        ...(sub === 'rotate' ? { previous: result.before } : {}),
        keys: result.list.map((key) => keyJson(key, now)),
      }),
    )
    return 0
  }
  if (sub === 'rotate') io.out(`rotated: current key is now ${current} (was ${result.before})`)
  const rows = result.list.map((key) => [
    key.kid,
    key.alg,
    key.status,
    age(key.createdAt, now),
    age(key.activatedAt, now),
    age(key.retiredAt, now),
  ])
  for (const line of table(['KID', 'ALG', 'STATUS', 'CREATED', 'ACTIVATED', 'RETIRED'], rows)) {
    io.out(line)
  }
  return 0
}

/** The JSON shape of a key in `--json` output: no key material. */
export function keyJson(key: KeyInfo, now: number): Record<string, string | number | null> {
  return {
    kid: key.kid,
    alg: key.alg,
    status: key.status,
    createdAt: iso(key.createdAt),
    activatedAt: iso(key.activatedAt),
    retiredAt: iso(key.retiredAt),
    ageSeconds:
      key.createdAt === null ? null : Math.max(0, Math.floor((now - key.createdAt) / 1000)),
  }
}
