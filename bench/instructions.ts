/**
 * Instructions per `GET /auth/session`, repeatable under load (the machine's other work does
 * not change an instruction count): a target of bench/server-target.ts under
 * `valgrind --tool=callgrind`, sent FEW and then MANY sequential requests in two separate runs;
 * (Ir(MANY) - Ir(FEW)) / (MANY - FEW) is the cost of one request, start-up cancelled out.
 *
 *   npx tsx bench/instructions.ts tessera-redis tessera-redis-nocache   (BENCH_FEW=200 BENCH_MANY=1200)
 *
 * Slow: node runs about 50 times slower under callgrind (minutes per target).
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { createClient } from 'redis'
import type { TargetInfo } from './server-target.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const FEW = Number(process.env.BENCH_FEW ?? 200)
const MANY = Number(process.env.BENCH_MANY ?? 1200)

async function instructions(target: string, requests: number, prefix: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-cg-'))
  const out = join(dir, 'callgrind.out')
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      `--callgrind-out-file=${out}`,
      process.execPath,
      '--import',
      pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href,
      join(ROOT, 'bench', 'server-target.ts'),
      target,
      prefix,
      '1',
      dir,
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  )
  const line = await new Promise<string>((resolve) => {
    let text = ''
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString()
      if (text.includes('\n')) resolve(text.slice(0, text.indexOf('\n')))
    })
  })
  const info = JSON.parse(line) as TargetInfo
  for (let i = 0; i < requests; i++) {
    const response = await fetch(`http://127.0.0.1:${info.port}/auth/session`, {
      headers: { cookie: info.cookie },
    })
    if (response.status !== 200) throw new Error(`${target}: ${response.status}`)
    await response.arrayBuffer()
  }
  child.kill('SIGTERM')
  await new Promise((resolve) => child.once('exit', resolve))
  const text = readFileSync(out, 'utf8')
  rmSync(dir, { recursive: true, force: true })
  const total = /^summary:\s+(\d+)/m.exec(text)?.[1] ?? /^totals:\s+(\d+)/m.exec(text)?.[1]
  return Number(total)
}

console.log(`callgrind, ${FEW} and ${MANY} sequential requests; load ${loadavg()[0]?.toFixed(2)}`)
const prefix = `tcg_${randomBytes(4).toString('hex')}:`
try {
  for (const target of process.argv.slice(2)) {
    const few = await instructions(target, FEW, prefix)
    const many = await instructions(target, MANY, prefix)
    console.log(
      `${target.padEnd(24)} ${Math.round((many - few) / (MANY - FEW)).toLocaleString('en-US')} instructions per request  (Ir ${few} / ${many}; load ${loadavg()[0]?.toFixed(2)})`,
    )
  }
} finally {
  const redis = createClient({
    url: process.env.TESSERA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
  })
  await redis.connect()
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
    if (keys.length > 0) await redis.del(keys)
  }
  redis.destroy()
}
