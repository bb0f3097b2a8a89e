import { parseArgs } from 'node:util'
import { UsageError } from './commands/secret.js'

/** Option kinds a CLI command accepts (a subset of `util.parseArgs`). */
export type OptionSpec = Record<string, { type: 'boolean' | 'string'; short?: string }>

/** Parsed command line: option values and positional arguments. */
export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>
  positionals: string[]
}

/**
 * `util.parseArgs` in strict mode; any mistake (unknown option, missing value, wrong number of
 * arguments) becomes a {@link UsageError} naming the `--help` to read.
 */
export function parseCommandArgs(
  args: readonly string[],
  options: OptionSpec,
  shape: { command: string; min: number; max: number },
): ParsedArgs {
  let parsed: ParsedArgs
  try {
    const result = parseArgs({ args: [...args], options, strict: true, allowPositionals: true })
    parsed = { values: result.values, positionals: result.positionals }
  } catch (error) {
    // Node's messages go on with advice about `--`; the first sentence is the useful part.
    const first = error instanceof Error ? (error.message.split(/\.\s|\n/)[0] ?? '') : ''
    const message = first === '' ? 'bad arguments' : first[0]?.toLowerCase() + first.slice(1)
    throw new UsageError(`${message}; try: tessera ${shape.command} --help`)
  }
  const count = parsed.positionals.length
  if (count < shape.min) {
    throw new UsageError(`missing argument; try: tessera ${shape.command} --help`)
  }
  if (count > shape.max) {
    throw new UsageError(
      `unexpected argument "${parsed.positionals[shape.max] ?? ''}"; try: tessera ${shape.command} --help`,
    )
  }
  return parsed
}

/** True when the arguments ask for help. */
export function wantsHelp(args: readonly string[]): boolean {
  return args.includes('--help') || args.includes('-h')
}

/** An epoch-millisecond time as ISO 8601, or `null`. */
export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString()
}

/** A short human age ("3d", "5h", "12m", "40s") of an epoch-millisecond time. */
export function age(ms: number | null, now: number = Date.now()): string {
  if (ms === null) return '-'
  const seconds = Math.max(0, Math.floor((now - ms) / 1000))
  if (seconds >= 86_400) return `${Math.floor(seconds / 86_400)}d`
  if (seconds >= 3600) return `${Math.floor(seconds / 3600)}h`
  if (seconds >= 60) return `${Math.floor(seconds / 60)}m`
  return `${seconds}s`
}

/** Lines of a left-aligned text table (two spaces between columns). */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  )
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)]
}
