/**
 * Where the server's CPU goes on `GET /auth/session`: one target of bench/server-target.ts under
 * `node --cpu-prof`, loaded by wrk for BENCH_DURATION seconds, then the functions with the most
 * self time (and their share), grouped by file.
 *
 *   npx tsx bench/profile.ts tessera-redis        (BENCH_DURATION=8, BENCH_TOP=40)
 */
import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import type { TargetInfo } from './server-target.js'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DURATION = Number(process.env.BENCH_DURATION ?? 8)
const TOP = Number(process.env.BENCH_TOP ?? 40)

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}

const target = process.argv[2] ?? 'tessera-redis'
const dir = mkdtempSync(join(tmpdir(), 'tessera-prof-'))
const child = spawn(
  'taskset',
  [
    '-c',
    '0',
    process.execPath,
    '--cpu-prof',
    '--cpu-prof-dir',
    dir,
    '--import',
    pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href,
    join(ROOT, 'bench', 'server-target.ts'),
    target,
    `tprof_${randomBytes(4).toString('hex')}:`,
    '1',
    dir,
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
)
const line = await new Promise<string>((resolve) => {
  let text = ''
  child.stdout.on('data', (chunk: Buffer) => {
    text += chunk.toString()
    if (text.includes('\n')) resolve(text.slice(0, text.indexOf('\n')))
  })
})
const info = JSON.parse(line) as TargetInfo
const url = `http://127.0.0.1:${info.port}/auth/session`
const wrkArgs = ['-c', '1', 'wrk', '-t1', '-c50', '-H', `cookie: ${info.cookie}`, url]
await run('taskset', [...wrkArgs.slice(0, 4), '-d2s', ...wrkArgs.slice(4)])
const { stdout } = await run('taskset', [
  ...wrkArgs.slice(0, 4),
  `-d${DURATION}s`,
  ...wrkArgs.slice(4),
])
console.log(
  `${target}: ${/Requests\/sec:\s+(\S+)/.exec(stdout)?.[1]} req/s; load ${loadavg()[0]?.toFixed(2)}`,
)
child.kill('SIGTERM')
await new Promise((resolve) => child.once('exit', resolve))
const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'))
if (file === undefined) throw new Error('no profile written')
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nodes: ProfileNode[] }
rmSync(dir, { recursive: true, force: true })
const total = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0)
const self = new Map<string, number>()
const byFile = new Map<string, number>()
for (const node of profile.nodes) {
  const { functionName, url: source, lineNumber } = node.callFrame
  const short = source
    .replace(/^file:\/\//, '')
    .replace(ROOT, '')
    .replace(/.*node_modules\//, '~')
  const key = `${functionName || '(anonymous)'} ${short}:${lineNumber + 1}`
  self.set(key, (self.get(key) ?? 0) + (node.hitCount ?? 0))
  const group = short === '' ? functionName : (short.split(':')[0] ?? short)
  byFile.set(group, (byFile.get(group) ?? 0) + (node.hitCount ?? 0))
}
const share = (n: number): string => `${((100 * n) / total).toFixed(1)}%`
console.log('\nself time by function')
for (const [key, hits] of [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
  console.log(`${share(hits).padStart(6)}  ${key}`)
}
console.log('\nself time by file')
for (const [key, hits] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, TOP)) {
  console.log(`${share(hits).padStart(6)}  ${key}`)
}
