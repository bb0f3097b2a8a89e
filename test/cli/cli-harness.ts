import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { main } from '../../src/cli/main.js'

/** What one in-process run of `main` printed and returned. */
export interface CliRun {
  code: number
  stdout: string
  stderr: string
}

/** A temp directory and an environment pointing the CLI at a SQLite file in it. */
export interface CliFixture {
  dir: string
  env: Record<string, string>
  run(argv: string[], options?: { stdin?: string }): Promise<CliRun>
  cleanup(): void
}

/** A fresh SQLite-backed fixture (its own temp directory and secret). */
export function sqliteFixture(): CliFixture {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-'))
  return fixture(dir, { DATABASE_URL: `sqlite:${join(dir, 't.db')}` })
}

/** A fixture over any environment (PostgreSQL, Redis), still with its own temp directory. */
export function fixture(dir: string, extra: Record<string, string>): CliFixture {
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    TESSERA_SECRET: randomBytes(32).toString('base64url'),
    ...extra,
  }
  return {
    dir,
    env,
    run: (argv, options = {}) => runCli(argv, env, dir, options.stdin),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** Runs `main(argv)` in-process with the given env, cwd and stdin text (not a TTY). */
export async function runCli(
  argv: string[],
  env: Record<string, string>,
  cwd: string,
  stdin = '',
): Promise<CliRun> {
  const out: string[] = []
  const err: string[] = []
  const code = await main(argv, {
    env,
    cwd,
    stdin: Readable.from(stdin === '' ? [] : [Buffer.from(stdin)]),
    out: (line) => out.push(line),
    err: (line) => err.push(line),
  })
  return {
    code,
    stdout: out.map((line) => `${line}\n`).join(''),
    stderr: err.map((line) => `${line}\n`).join(''),
  }
}
