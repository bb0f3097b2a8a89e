// Core crypto, side by side with what users would pick instead, in one process:
//   verifyValue   vs cookie-signature `unsign` (express-session) vs bare createHmac + timingSafeEqual
//   unsealValue   vs iron-session `unsealData`
// Run alone with `npx tsx bench/core.bench.ts`, or through `npm run bench`.
import { createHmac, createSecretKey, randomBytes, timingSafeEqual } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import { sign as cookieSign, unsign as cookieUnsign } from 'cookie-signature'
import { sealData, unsealData } from 'iron-session'
import { Bench, type Task } from 'tinybench'
import { createKeyring } from '../src/core/keyring.js'
import { sealValue, unsealValue } from '../src/core/sealing.js'
import { signValue, verifyValue } from '../src/core/signing.js'

const SECRET = 'n9K2vQ7xLp4RtY8wZs3FhJ6mC1bD5gE0aUoIiTeWqVr'
const TIME_MS = 1000

function opsPerSecond(task: Task | undefined): number {
  const result = task?.result
  if (result === undefined || !('throughput' in result)) {
    throw new Error(`bench task ${task?.name ?? '?'} did not complete`)
  }
  return result.throughput.mean
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
  const rawKey = createSecretKey(Buffer.from(keyring.key('session').bytes))

  if (verifyValue(keyring, 'session', signed)?.value !== token)
    throw new Error('verifyValue broken')
  if (cookieUnsign(cookieSigned, SECRET) !== token) throw new Error('unsign broken')

  let sink = 0
  const bench = new Bench({ time: TIME_MS, warmup: true, warmupTime: 200 })
  bench
    .add('floor: createHmac + timingSafeEqual', () => {
      const expected = createHmac('sha256', rawKey).update(payload).digest()
      if (timingSafeEqual(expected, givenTag)) sink++
    })
    .add('tessera verifyValue', () => {
      if (verifyValue(keyring, 'session', signed) !== null) sink++
    })
    .add('cookie-signature unsign', () => {
      if (cookieUnsign(cookieSigned, SECRET) !== false) sink++
    })
  await bench.run()
  if (sink === 0) throw new Error('nothing verified')
  void key

  const floor = opsPerSecond(bench.getTask('floor: createHmac + timingSafeEqual'))
  const ours = opsPerSecond(bench.getTask('tessera verifyValue'))
  const peer = opsPerSecond(bench.getTask('cookie-signature unsign'))
  console.log(`verify a signed session cookie (${signed.length} chars)`)
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
  const bench = new Bench({ time: TIME_MS, warmup: true, warmupTime: 200 })
  bench
    .add('tessera unsealValue + JSON.parse', () => {
      const opened = unsealValue(keyring, 'session', sealed)
      if (opened !== null && (JSON.parse(opened.value) as typeof data).userId === data.userId)
        sink++
    })
    .add('iron-session unsealData', async () => {
      const opened = await unsealData<typeof data>(ironSealed, { password: SECRET, ttl: 3600 })
      if (opened.userId === data.userId) sink++
    })
  await bench.run()
  if (sink === 0) throw new Error('nothing unsealed')

  const ours = opsPerSecond(bench.getTask('tessera unsealValue + JSON.parse'))
  const peer = opsPerSecond(bench.getTask('iron-session unsealData'))
  console.log(
    `\nunseal a small session (${json.length}-byte JSON; tessera ${sealed.length} chars, iron ${ironSealed.length} chars)`,
  )
  printTable([
    { name: 'tessera unsealValue + JSON.parse', ops: ours, note: '' },
    {
      name: 'iron-session unsealData',
      ops: peer,
      note: `unsealValue/unsealData = ${(ours / peer).toFixed(1)}x (target >= 20x); iron ${(1e6 / peer).toFixed(0)} µs/op`,
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
