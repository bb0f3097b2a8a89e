// Runs every bench/*.bench.ts in turn (each exports `run()`), in one process, in name order.
import { readdirSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'

const dir = fileURLToPath(new URL('.', import.meta.url))
const only = process.argv.slice(2)
const files = readdirSync(dir)
  .filter((file) => file.endsWith('.bench.ts'))
  .filter((file) => only.length === 0 || only.some((name) => file.startsWith(name)))
  .sort()

for (const file of files) {
  const module = (await import(pathToFileURL(`${dir}${file}`).href)) as {
    run?: () => Promise<void>
  }
  if (typeof module.run !== 'function') {
    throw new Error(`bench/${file} must export async function run()`)
  }
  console.log(`\n## ${file}\n`)
  await module.run()
}
