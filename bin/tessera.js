#!/usr/bin/env node
// The installed package ships dist/; a clone of the repository builds it (npm start does,
// through prestart). Without it, say so in one line instead of a module-not-found trace.
import { existsSync } from 'node:fs'

const entry = new URL('../dist/cli/main.js', import.meta.url)
if (!existsSync(entry)) {
  process.stderr.write(
    'tessera: dist/ is missing; in a clone of the repository, run "npm run build" first (npm start builds by itself)\n',
  )
  process.exit(1)
}
const { main } = await import(entry.href)
process.exitCode = await main(process.argv.slice(2))
