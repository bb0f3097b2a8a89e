/**
 * Logins per second through the whole auth service (limiter, user lookup, argon2id verify with
 * the default m=19456 KiB t=2 p=1, new session, last-login write, audit event) on SQLite, and how
 * much a login storm delays session validations running beside it (p50/p99, measured from when
 * each validation was due, so event-loop lag counts). Side by side: the raw ceiling, @node-rs/argon2
 * verify alone at the same parameters and concurrency.
 *
 * Run alone: `npx tsx bench/accounts.bench.ts` (BENCH_TIME=ms per phase, default 3000;
 * BENCH_CONCURRENCY=logins in flight, default 16). Numbers on a shared, loaded machine are noisy.
 */
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { performance } from 'node:perf_hooks'
import { createAuthService } from '../src/auth/service.js'
import { createDatabase, migrateToLatest } from '../src/auth/db/database.js'
import { createConsoleMailer } from '../src/auth/mailer.js'
import { createPasswordHasher } from '../src/auth/passwords.js'
import { createLoginLimiter, createMemoryRateLimitStore } from '../src/auth/rate-limit.js'
import { createKeyring } from '../src/core/keyring.js'
import { createSessionManager } from '../src/core/session-manager.js'
import { createMemoryStore } from '../src/stores/memory.js'

const TIME = Number(process.env.BENCH_TIME ?? 3000)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16)
const USERS = 64
const PASSWORD = 'correct horse battery staple'
const VALIDATE_EVERY_MS = 5

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

/** Runs `task` with `concurrency` in flight until `ms` elapsed; returns completions per second. */
async function storm(
  ms: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<number> {
  const end = performance.now() + ms
  let done = 0
  const start = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      let i = worker
      while (performance.now() < end) {
        await task(i)
        done += 1
        i += concurrency
      }
    }),
  )
  return done / ((performance.now() - start) / 1000)
}

/** Validates one session every few ms until `until()` is false; latencies from the due time. */
async function validations(validate: () => Promise<unknown>, ms: number): Promise<number[]> {
  const latencies: number[] = []
  const start = performance.now()
  let due = start
  while (due < start + ms) {
    const wait = due - performance.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    await validate()
    latencies.push(performance.now() - due)
    due += VALIDATE_EVERY_MS
    if (performance.now() > due) due = performance.now() // do not pile up after a long stall
  }
  return latencies.sort((a, b) => a - b)
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-accounts-'))
  const db = await createDatabase(`sqlite:${join(dir, 'accounts.db')}`)
  try {
    await migrateToLatest(db)
    const sessions = createSessionManager(
      createMemoryStore(),
      createKeyring('bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz'),
    )
    const passwords = createPasswordHasher()
    const auth = createAuthService(db, {
      sessions,
      passwords,
      limiter: createLoginLimiter({ store: createMemoryRateLimitStore() }),
      mailer: createConsoleMailer({ from: 'bench@example.com', write: () => undefined }),
      publicUrl: 'https://auth.example.com',
    })
    const stored = await passwords.hash(PASSWORD)
    for (let i = 0; i < USERS; i += 1) {
      await auth.accounts.createUser({ email: `user${i}@example.com`, passwordHash: stored })
    }
    const probe = await sessions.create('probe-user')
    const cookie = `${sessions.cookieName}=${probe.setCookie.split(';')[0]?.split('=').slice(1).join('=') ?? ''}`
    const validate = async (): Promise<void> => {
      if ((await sessions.validate(cookie)) === null)
        throw new Error('probe session did not validate')
    }

    const idle = await validations(validate, Math.min(TIME, 1000))

    let failures = 0
    const login = async (i: number): Promise<void> => {
      const result = await auth.login(
        { email: `user${i % USERS}@example.com`, password: PASSWORD },
        { ip: `10.0.${(i >> 8) & 255}.${i & 255}`, userAgent: 'bench' },
      )
      if (!result.ok) failures += 1
    }
    const [loginsPerSecond, underStorm] = await Promise.all([
      storm(TIME, CONCURRENCY, login),
      validations(validate, TIME),
    ])
    if (failures > 0) throw new Error(`${failures} logins failed`)

    const rawHash = await argon2Hash(PASSWORD, {
      memoryCost: 19456,
      timeCost: 2,
      parallelism: 1,
      algorithm: 2,
    })
    const rawPerSecond = await storm(TIME, CONCURRENCY, async () => {
      await argon2Verify(rawHash, PASSWORD)
    })

    const fmt = (n: number): string => n.toFixed(1)
    console.table([
      {
        task: 'tessera auth.login (SQLite, argon2id default)',
        'ops/s': Math.round(loginsPerSecond),
      },
      { task: '@node-rs/argon2 verify alone (same params)', 'ops/s': Math.round(rawPerSecond) },
      { task: 'ratio login / raw verify', 'ops/s': (loginsPerSecond / rawPerSecond).toFixed(2) },
    ])
    console.table([
      {
        'session validate': 'idle',
        samples: idle.length,
        'p50 ms': fmt(percentile(idle, 50)),
        'p99 ms': fmt(percentile(idle, 99)),
        'max ms': fmt(idle.at(-1) ?? Number.NaN),
      },
      {
        'session validate': `during login storm (${CONCURRENCY} in flight)`,
        samples: underStorm.length,
        'p50 ms': fmt(percentile(underStorm, 50)),
        'p99 ms': fmt(percentile(underStorm, 99)),
        'max ms': fmt(underStorm.at(-1) ?? Number.NaN),
      },
    ])
  } finally {
    await db.destroy()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await run()
}
