// Access-token verification and refresh rotation, side by side with what users would pick
// instead, in one process:
//   EdDSA and HS256 verify: tessera (pinned node:crypto) vs jose jwtVerify vs fast-jwt vs
//   jsonwebtoken (HS256 only: it has no EdDSA) vs the floor, a bare node:crypto verify of the
//   same signature with a cached KeyObject;
//   refresh rotations per second on each store (memory and SQLite always; Redis and PostgreSQL
//   when TESSERA_TEST_REDIS_URL / TESSERA_TEST_PG_URL are set).
// Run alone with `npx tsx bench/tokens.bench.ts`, or through `npm run bench`.
import { createHmac, randomBytes, timingSafeEqual, verify as cryptoVerify } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import Database from 'better-sqlite3'
import { createVerifier as createFastVerifier } from 'fast-jwt'
import { jwtVerify } from 'jose'
import jsonwebtoken from 'jsonwebtoken'
import pg from 'pg'
import { createClient } from 'redis'
import { Bench, type Task } from 'tinybench'
import { createAccessTokens, type AccessTokens } from '../src/auth/access-tokens.js'
import {
  createHMACKeySet,
  createKeyringSealer,
  createKeySet,
  createMemoryKeyStorage,
  type KeySet,
} from '../src/auth/keys.js'
import { createRefreshTokens } from '../src/auth/refresh-tokens.js'
import { createKeyring } from '../src/core/keyring.js'
import type { SessionStore } from '../src/core/session-store.js'
import { createVerifier } from '../src/jwt/verifier.js'
import { createMemoryStore } from '../src/stores/memory.js'
import { createPostgresStore } from '../src/stores/postgres.js'
import { createRedisStore } from '../src/stores/redis.js'
import { createSQLiteStore } from '../src/stores/sqlite.js'

const SECRET = 'n9K2vQ7xLp4RtY8wZs3FhJ6mC1bD5gE0aUoIiTeWqVr'
const ISS = 'https://auth.example.com'
const AUD = 'api'
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

async function benchVerify(label: 'EdDSA' | 'HS256', keys: KeySet): Promise<void> {
  const tokens: AccessTokens = createAccessTokens({ keys, issuer: ISS, audience: AUD })
  const { token } = await tokens.issue('user-1', 'session-1')
  const signing = keys.signingKey()
  const pinned = keys.verificationKey(signing.kid)
  if (pinned === undefined) throw new Error('no verification key')
  const dot = token.lastIndexOf('.')
  const signingInput = Buffer.from(token.slice(0, dot))
  const signature = Buffer.from(token.slice(dot + 1), 'base64url')
  const remote =
    label === 'EdDSA'
      ? createVerifier({ issuer: ISS, audience: AUD, keys: keys.jwks().keys })
      : createVerifier({
          issuer: ISS,
          audience: AUD,
          keys: [{ kid: signing.kid, alg: 'HS256', secret: pinned.key.export() }],
        })

  // jose's fastest input is a CryptoKey imported once (a KeyObject is converted on every call).
  const joseKey =
    label === 'EdDSA'
      ? await crypto.subtle.importKey(
          'spki',
          pinned.key.export({ format: 'der', type: 'spki' }),
          { name: 'Ed25519' },
          false,
          ['verify'],
        )
      : await crypto.subtle.importKey(
          'raw',
          pinned.key.export(),
          { name: 'HMAC', hash: 'SHA-256' },
          false,
          ['verify'],
        )
  const fastKey =
    label === 'EdDSA'
      ? (pinned.key.export({ format: 'pem', type: 'spki' }) as string)
      : pinned.key.export()
  const fast = createFastVerifier({
    key: fastKey,
    algorithms: [label],
    allowedIss: ISS,
    allowedAud: AUD,
    cache: false,
  })
  const secret = label === 'HS256' ? pinned.key.export() : undefined

  // Every contender must accept the token before it is timed.
  if (!tokens.verifySync(token).ok) throw new Error('tessera refused the token')
  if (!(await remote.verify(token)).ok) throw new Error('tessera-auth/jwt refused the token')
  await jwtVerify(token, joseKey, { issuer: ISS, audience: AUD, algorithms: [label] })
  fast(token)
  if (secret !== undefined) {
    jsonwebtoken.verify(token, secret, { algorithms: ['HS256'], issuer: ISS, audience: AUD })
  }

  let sink = 0
  const floorName =
    label === 'EdDSA' ? 'floor: crypto.verify Ed25519' : 'floor: createHmac + timingSafeEqual'
  const bench = new Bench({ time: TIME_MS, warmup: true, warmupTime: 200 })
  bench.add(floorName, () => {
    const ok =
      label === 'EdDSA'
        ? cryptoVerify(null, signingInput, pinned.key, signature)
        : timingSafeEqual(createHmac('sha256', pinned.key).update(signingInput).digest(), signature)
    if (ok) sink++
  })
  bench.add('tessera verifySync', () => {
    if (tokens.verifySync(token).ok) sink++
  })
  bench.add('tessera-auth/jwt verifier.verify (async)', async () => {
    if ((await remote.verify(token)).ok) sink++
  })
  bench.add('jose jwtVerify (async, CryptoKey)', async () => {
    await jwtVerify(token, joseKey, { issuer: ISS, audience: AUD, algorithms: [label] })
    sink++
  })
  bench.add('fast-jwt verify (no cache)', () => {
    fast(token)
    sink++
  })
  if (secret !== undefined) {
    // jsonwebtoken first tries createPublicKey on a Buffer or string secret (an exception per
    // call); a KeyObject skips that, so both ways of calling it are shown.
    bench.add('jsonwebtoken verify (Buffer secret)', () => {
      jsonwebtoken.verify(token, secret, { algorithms: ['HS256'], issuer: ISS, audience: AUD })
      sink++
    })
    bench.add('jsonwebtoken verify (KeyObject)', () => {
      jsonwebtoken.verify(token, pinned.key, { algorithms: ['HS256'], issuer: ISS, audience: AUD })
      sink++
    })
  }
  await bench.run()
  if (sink === 0) throw new Error('nothing verified')

  const floor = opsPerSecond(bench.getTask(floorName))
  const ours = opsPerSecond(bench.getTask('tessera verifySync'))
  console.log(`\n${label} access-token verify (${token.length} chars)`)
  const rows = bench.tasks.map((task) => {
    const ops = opsPerSecond(task)
    let note = `floor/this = ${(floor / ops).toFixed(2)}x`
    if (task.name === 'tessera verifySync') {
      note +=
        label === 'EdDSA'
          ? ' (target <= 1.20x)'
          : ` (target >= 150,000 ops/s: ${ours >= 150_000 ? 'met' : 'NOT met'})`
    } else if (task.name !== floorName) {
      note += `; tessera/this = ${(ours / ops).toFixed(2)}x`
    }
    return { name: task.name, ops, note }
  })
  printTable(rows)
}

async function benchRefresh(): Promise<void> {
  const keyring = createKeyring(SECRET)
  const keys = createKeySet({
    storage: createMemoryKeyStorage(),
    sealer: createKeyringSealer(keyring),
  })
  await keys.load()
  const accessTokens = createAccessTokens({ keys, issuer: ISS, audience: AUD })

  const stores: {
    name: string
    open: () => Promise<{ store: SessionStore; close: () => Promise<void> }>
  }[] = [
    {
      name: 'memory',
      open: () => {
        const store = createMemoryStore()
        return Promise.resolve({ store, close: () => store.close() })
      },
    },
    {
      name: 'SQLite (:memory:)',
      open: () => {
        const db = new Database(':memory:')
        return Promise.resolve({
          store: createSQLiteStore(db),
          close: () => Promise.resolve(void db.close()),
        })
      },
    },
  ]
  const redisUrl = process.env.TESSERA_TEST_REDIS_URL
  if (redisUrl) {
    stores.push({
      name: 'Redis',
      open: async () => {
        const client = createClient({ url: redisUrl })
        await client.connect()
        const prefix = `tessera_bench_${randomBytes(6).toString('hex')}:`
        return {
          store: createRedisStore(client, { prefix, timeout: 5 }),
          close: async () => {
            for await (const batch of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
              if (batch.length > 0) await client.del(batch)
            }
            client.destroy()
          },
        }
      },
    })
  }
  const pgUrl = process.env.TESSERA_TEST_PG_URL
  if (pgUrl) {
    stores.push({
      name: 'PostgreSQL',
      open: async () => {
        const schema = `tessera_bench_${randomBytes(6).toString('hex')}`
        const pool = new pg.Pool({ connectionString: pgUrl, max: 4 })
        const store = createPostgresStore(pool, { schema, timeout: 5 })
        await store.migrate()
        return {
          store,
          close: async () => {
            await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
            await pool.end()
          },
        }
      },
    })
  }

  console.log(
    '\nrefresh rotations (one refresh = CAS on the family + new token record + EdDSA access token)',
  )
  const rows: { name: string; ops: number; note: string }[] = []
  for (const { name, open } of stores) {
    const { store, close } = await open()
    try {
      const refresh = createRefreshTokens({ store, accessTokens })
      let current = (await refresh.issue('user-1')).refreshToken
      const bench = new Bench({ time: TIME_MS, warmup: true, warmupTime: 100 })
      bench.add(name, async () => {
        const next = await refresh.refresh(current)
        if (!next.ok) throw new Error(`refresh failed: ${next.reason}`)
        current = next.refreshToken
      })
      await bench.run()
      rows.push({ name, ops: opsPerSecond(bench.getTask(name)), note: 'sequential, one family' })
    } finally {
      await close()
    }
  }
  printTable(rows)
}

/** Runs the token benchmarks and prints their tables. */
export async function run(): Promise<void> {
  const keyring = createKeyring(SECRET)
  const eddsa = createKeySet({
    storage: createMemoryKeyStorage(),
    sealer: createKeyringSealer(keyring),
  })
  await eddsa.load()
  await benchVerify('EdDSA', eddsa)
  await benchVerify('HS256', createHMACKeySet(keyring))
  await benchRefresh()
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await run()
}
