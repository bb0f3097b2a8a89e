import { loadConfig } from '../../server/config.js'
import type { CliIO } from '../context.js'
import { UsageError } from './secret.js'

const HELP = `Usage: tessera serve [--port N]

Starts the tessera server (configuration from the environment, .env and .env.local;
see docs/configuration.md). Stops gracefully on SIGTERM or SIGINT.

Options:
  --port N   listen on port N, 0 to 65535 (overrides PORT; 0 picks a free port)`

/** `--port` as given: a whole number from 0 to 65535, else a usage error naming the flag. */
function parsePortFlag(value: string | undefined): string {
  if (value === undefined || value === '') {
    throw new UsageError('--port needs a value, e.g. --port 3000; try: tessera serve --help')
  }
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65_535) {
    throw new UsageError(
      `--port must be a port number from 0 to 65535 (got "${value.slice(0, 40)}"); try: tessera serve --help`,
    )
  }
  return String(Number(value))
}

/** `tessera serve [--port N]`: runs the server until SIGTERM or SIGINT. */
export async function serveCommand(args: readonly string[], io: CliIO): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    io.out(HELP)
    return 0
  }
  const env: Record<string, string | undefined> = { ...io.env }
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]
    if (arg === '--port') {
      env.PORT = parsePortFlag(args[++index])
    } else if (arg?.startsWith('--port=') === true) {
      env.PORT = parsePortFlag(arg.slice('--port='.length))
    } else {
      throw new UsageError(`unknown option ${arg}; try: tessera serve --help`)
    }
  }
  const notices: string[] = []
  const config = loadConfig(env, { cwd: io.cwd, onNotice: (line) => notices.push(line) })
  // Loaded only now, so a configuration error is reported without loading drivers and services.
  const { createLogger, startServer, waitForStopSignal } = await import('../../server/index.js')
  const logger = createLogger(config.logLevel, undefined, { format: config.logFormat })
  for (const line of notices) logger.warn(line)
  const stopSignal = waitForStopSignal(logger)
  let running: Awaited<ReturnType<typeof startServer>>
  try {
    running = await startServer(config, { logger })
  } catch (error) {
    const code = (error as { code?: unknown }).code
    if (code === 'EADDRINUSE' || code === 'EACCES') {
      setTimeout(() => process.exit(1), 2000).unref()
      const where = `${config.host ?? 'every interface'} port ${config.port}`
      io.err(
        code === 'EADDRINUSE'
          ? `tessera serve: port ${config.port} is already in use (${where}); stop the other server or pick another port with --port or PORT`
          : `tessera serve: not allowed to listen on ${where}; ports below 1024 need privileges: pick another with --port or PORT`,
      )
      return 1
    }
    throw error
  }
  await stopSignal
  await running.close()
  // Anything a dependency left open must not keep a stopped server alive.
  setTimeout(() => process.exit(0), 2000).unref()
  return 0
}
