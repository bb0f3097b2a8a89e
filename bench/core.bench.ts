// Core crypto, side by side with what users would pick instead, in one process:
//   verifyValue   vs cookie-signature `unsign` (express-session) vs bare createHmac + timingSafeEqual
//   unsealValue   vs iron-session `unsealData`
// Run alone with `npx tsx bench/core.bench.ts`, or through `npm run bench`.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import { sign as cookieSign, unsign as cookieUnsign } from 'cookie-signature'
import { sealData, unsealData } from 'iron-session'
import { Bench, type Task } from 'tinybench'
import { createKeyring } from '../src/core/keyring.js'
import { sealValue, unsealValue } from '../src/core/sealing.js'
import { signValue, verifyValue } from '../src/core/signing.js'

const SECRET = 'n9K2vQ7xLp4RtY8wZs3FhJ6mC1bD5gE0aUoIiTeWqVr'
/** Time per task in all; split into rounds so the tasks alternate on a busy machine. */
const TIME_MS = 1000
const ROUNDS = 5

function opsPerSecond(task: Task | undefined): number {
  const result = task?.result
  if (result === undefined || !('throughput' in result)) {
    throw new Error(`bench task ${task?.name ?? '?'} did not complete`)
  }
  return result.throughput.mean
}

type TaskFn = () => unknown

/**
 * Runs the tasks in ROUNDS short rounds, alternating their order, and returns each task's median
 * ops/s: other processes on a shared 2-core box then weigh on every task alike, which keeps the
 * ratios honest even when the absolute numbers move.
 */
async function compare(tasks: Record<string, TaskFn>): Promise<Record<string, number>> {
  const samples: Record<string, number[]> = {}
  const names = Object.keys(tasks)
  for (let round = 0; round < ROUNDS; round++) {
    const bench = new Bench({ time: TIME_MS / ROUNDS, warmup: true, warmupTime: 50 })
    const order = round % 2 === 0 ? names : [...names].reverse()
    for (const name of order) bench.add(name, tasks[name] as TaskFn)
    await bench.run()
    for (const name of names) (samples[name] ??= []).push(opsPerSecond(bench.getTask(name)))
  }
  const medians: Record<string, number> = {}
  for (const name of names) {
    const sorted = (samples[name] as number[]).sort((a, b) => a - b)
    medians[name] = sorted[Math.floor(sorted.length / 2)] as number
  }
  return medians
}

function printTable(rows: { name: string; ops: number; note: string }[]): void {
  const width = Math.max(...rows.map((row) => row.name.length))
  for (const row of rows) {
    const ops = Math.round(row.ops).toLocaleString('en-US').padStart(12)
    console.log(`${row.name.padEnd(width)}  ${ops} ops/s  ${row.note}`)
  }
}

async function benchSigning(): Promise<void> {
  const keyring = createKeyring(SECRET)
  // A session cookie: a 32-byte base64url token, signed.
  const token = randomBytes(32).toString('base64url')
  const signed = signValue(keyring, 'session', token)
  const cookieSigned = cookieSign(token, SECRET)
  // The floor: one HMAC over the same signed payload and a constant-time compare with the tag.
  const key = keyring.key('session').keyObject
  const tagDot = signed.lastIndexOf('.')
  const payload = signed.slice(0, tagDot)
  const givenTag = Buffer.from(signed.slice(tagDot + 1), 'base64url')

  if (verifyValue(keyring, 'session', signed)?.value !== token)
    throw new Error('verifyValue broken')
  if (cookieUnsign(cookieSigned, SECRET) !== token) throw new Error('unsign broken')

  let sink = 0
  const results = await compare({
    floor: () => {
      const expected = createHmac('sha256', key).update(payload).digest()
      if (timingSafeEqual(expected, givenTag)) sink++
    },
    ours: () => {
      if (verifyValue(keyring, 'session', signed) !== null) sink++
    },
    peer: () => {
      if (cookieUnsign(cookieSigned, SECRET) !== false) sink++
    },
  })
  if (sink === 0) throw new Error('nothing verified')
  const { floor = 0, ours = 0, peer = 0 } = results
  console.log(
    `verify a signed session cookie (${signed.length} chars); median of ${ROUNDS} alternating rounds`,
  )
  printTable([
    { name: 'floor: createHmac + timingSafeEqual', ops: floor, note: '' },
    {
      name: 'tessera verifyValue',
      ops: ours,
      note: `floor/verifyValue = ${(floor / ours).toFixed(2)}x (target <= 1.30x)`,
    },
    {
      name: 'cookie-signature unsign',
      ops: peer,
      note: `verifyValue/unsign = ${(ours / peer).toFixed(2)}x (target >= 1.00x)`,
    },
  ])
}

async function benchSealing(): Promise<void> {
  const keyring = createKeyring(SECRET)
  // A small stateless session: the same JSON for both libraries.
  const data = { userId: 'u_8f3a2c1d', roles: ['editor'], cart: [17, 42], theme: 'dark' }
  const json = JSON.stringify(data)
  const sealed = sealValue(keyring, 'session', json, { ttl: 3600 })
  const ironSealed = await sealData(data, { password: SECRET, ttl: 3600 })

  if (unsealValue(keyring, 'session', sealed)?.value !== json) throw new Error('unseal broken')
  const ironOpened = await unsealData<typeof data>(ironSealed, { password: SECRET, ttl: 3600 })
  if (ironOpened.userId !== data.userId) throw new Error('iron unseal broken')

  let sink = 0
  const results = await compare({
    ours: () => {
      const opened = unsealValue(keyring, 'session', sealed)
      if (opened !== null && (JSON.parse(opened.value) as typeof data).userId === data.userId)
        sink++
    },
    bare: () => {
      if (unsealValue(keyring, 'session', sealed) !== null) sink++
    },
    peer: async () => {
      const opened = await unsealData<typeof data>(ironSealed, { password: SECRET, ttl: 3600 })
      if (opened.userId === data.userId) sink++
    },
  })
  if (sink === 0) throw new Error('nothing unsealed')
  const { ours = 0, bare = 0, peer = 0 } = results
  console.log(
    `\nunseal a small session (${json.length}-byte JSON; tessera ${sealed.length} chars, iron ${ironSealed.length} chars)`,
  )
  printTable([
    { name: 'tessera unsealValue + JSON.parse', ops: ours, note: '' },
    { name: 'tessera unsealValue alone', ops: bare, note: '' },
    {
      name: 'iron-session unsealData',
      ops: peer,
      note: `(unsealValue + JSON.parse)/unsealData = ${(ours / peer).toFixed(1)}x (target >= 20x); iron ${(1e6 / peer).toFixed(0)} µs/op`,
    },
  ])
}

/** Runs the core benchmarks and prints ops/s and ratios. */
export async function run(): Promise<void> {
  await benchSigning()
  await benchSealing()
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await run()
}
