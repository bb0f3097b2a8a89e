import { loadConfig } from '../../server/config.js'
import { UsageError } from './secret.js'

const HELP = `Usage: tessera serve [--port N]

Starts the tessera server (configuration from the environment, .env and .env.local;
see docs/configuration.md). Stops gracefully on SIGTERM or SIGINT.

Options:
  --port N   listen on port N (overrides PORT)`

/** `tessera serve [--port N]`: runs the server until SIGTERM or SIGINT. */
export async function serveCommand(
  args: readonly string[],
  out: (line: string) => void,
): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    out(HELP)
    return 0
  }
  const env: Record<string, string | undefined> = { ...process.env }
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]
    if (arg === '--port' && args[index + 1] !== undefined) {
      env.PORT = args[++index]
    } else if (arg?.startsWith('--port=') === true) {
      env.PORT = arg.slice('--port='.length)
    } else {
      throw new UsageError(`unknown option ${arg}; try: tessera serve --help`)
    }
  }
  const notices: string[] = []
  const config = loadConfig(env, { cwd: process.cwd(), onNotice: (line) => notices.push(line) })
  // Loaded only now, so a configuration error is reported without loading drivers and services.
  const { createLogger } = await import('../../server/logger.js')
  const { startServer, waitForStopSignal } = await import('../../server/main.js')
  const logger = createLogger(config.logLevel, undefined, { format: config.logFormat })
  for (const line of notices) logger.warn(line)
  const stopSignal = waitForStopSignal(logger)
  const running = await startServer(config, { logger })
  await stopSignal
  await running.close()
  // Anything a dependency left open must not keep a stopped server alive.
  setTimeout(() => process.exit(0), 2000).unref()
  return 0
}
