import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const ROOT = resolve(import.meta.dirname, '../..')
// Absolute, since the child runs in a temp dir where `tsx` cannot be resolved by name.
const TSX = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href

/** A child process running a TypeScript entry with tsx, whose stdout is read as JSON lines. */
export interface ServerProcess {
  child: ChildProcess
  /** Working directory of the process (a temp dir removed by `cleanup`). */
  cwd: string
  /** The port from the `listening` log line. */
  port: number
  /** Parsed JSON log lines so far. */
  lines: Array<Record<string, unknown>>
  /** Everything on stderr so far. */
  stderr(): string
  /** Resolves with the first log line (past or future) that matches. */
  waitForLine(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>
  /** Kills the process if it still runs and removes its temp dir. */
  cleanup(): Promise<void>
}

/** Options of {@link spawnEntry}. */
export interface SpawnOptions {
  env?: Record<string, string>
  args?: string[]
  /** Wait for the `listening` line. @default true */
  waitForListening?: boolean
  cwd?: string
}

/**
 * Starts `entry` (a path under test/ or src/) with `node --import tsx` in a fresh temp dir,
 * with a clean environment plus `env`.
 */
export async function spawnEntry(
  entry: string,
  options: SpawnOptions = {},
): Promise<ServerProcess> {
  const ownCwd = options.cwd === undefined
  const cwd = options.cwd ?? mkdtempSync(join(tmpdir(), 'tessera-server-'))
  const child = spawn(
    process.execPath,
    ['--import', TSX, join(ROOT, entry), ...(options.args ?? [])],
    {
      cwd,
      env: {
        PATH: process.env.PATH ?? '',
        // The child runs in a temp dir, so tsx is told which tsconfig applies: the examples'
        // maps `tessera-auth/...` to src/ (examples/tsconfig.json "paths"), as a user's
        // node_modules would map it to dist/.
        TSX_TSCONFIG_PATH: join(
          ROOT,
          entry.startsWith('examples/') ? 'examples/tsconfig.json' : 'tsconfig.json',
        ),
        NODE_ENV: 'test',
        PORT: '0',
        HOST: '127.0.0.1',
        // No drain period on stop unless a test asks for one (the default is 5 s).
        TESSERA_SHUTDOWN_DRAIN: '0',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  const lines: Array<Record<string, unknown>> = []
  const waiters: Array<{
    match: (line: Record<string, unknown>) => boolean
    resolve: (line: Record<string, unknown>) => void
  }> = []
  let buffered = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8')
  child.stdout?.on('data', (chunk: string) => {
    buffered += chunk
    let newline: number
    while ((newline = buffered.indexOf('\n')) !== -1) {
      const text = buffered.slice(0, newline)
      buffered = buffered.slice(newline + 1)
      let line: Record<string, unknown>
      try {
        line = JSON.parse(text) as Record<string, unknown>
      } catch {
        line = { text }
      }
      lines.push(line)
      for (const waiter of waiters.splice(0)) {
        if (waiter.match(line)) waiter.resolve(line)
        else waiters.push(waiter)
      }
    }
  })
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk
  })
  const exited = new Promise<number | null>((resolveExit) => {
    child.once('exit', (code) => resolveExit(code))
  })
  const waitForLine = (
    match: (line: Record<string, unknown>) => boolean,
  ): Promise<Record<string, unknown>> => {
    const found = lines.find(match)
    if (found !== undefined) return Promise.resolve(found)
    return new Promise((resolveLine, reject) => {
      waiters.push({ match, resolve: resolveLine })
      void exited.then((code) =>
        reject(new Error(`process exited (${code}) before the line; stderr: ${stderr}`)),
      )
    })
  }
  const cleanup = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
    if (ownCwd) rmSync(cwd, { recursive: true, force: true })
  }
  let port = 0
  if (options.waitForListening !== false) {
    try {
      const listening = await waitForLine((line) => line.msg === 'listening')
      port = listening.port as number
    } catch (error) {
      await cleanup()
      throw error
    }
  }
  return {
    child,
    cwd,
    port,
    lines,
    stderr: () => stderr,
    waitForLine,
    exited,
    cleanup,
  }
}
