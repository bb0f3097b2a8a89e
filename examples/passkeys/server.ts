// The tessera server with a passkey page at /passkeys: sign up, add a passkey, sign out, sign in
// with it (usernameless, or from the e-mail field's autofill), and a passkey as a second factor.
// Run: TESSERA_PUBLIC_URL=http://localhost:3000 npx tsx --tsconfig examples/tsconfig.json examples/passkeys/server.ts
// then open http://localhost:3000/passkeys (localhost, not 127.0.0.1: an IP address is not a
// valid WebAuthn relying party id).
import { createLogger, loadConfig, startServer, waitForStopSignal } from 'tessera-auth/server'
import { passkeyPage } from './page.js'

const logger = createLogger('info')
const stop = waitForStopSignal(logger)
const config = loadConfig(process.env, { cwd: process.cwd(), onNotice: (m) => logger.info(m) })
const server = await startServer(config, { logger, routes: [passkeyPage] })
logger.info(`passkey page at ${config.publicUrl}/passkeys (port ${server.port})`)
await stop
await server.close()
