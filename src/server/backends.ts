import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import type BetterSqlite3 from 'better-sqlite3'
import { sql } from 'kysely'
import type { Logger } from 'pino'
import type { RedisClientType } from 'redis'
import { createDatabase, migrateToLatest, type TesseraDB } from '../auth/db/database.js'
import { loadOptionalPeer } from '../auth/db/optional-peer.js'
import { createKyselyKeyStorage, type KyselyKeyStorage } from '../auth/kysely-key-storage.js'
import type { RateLimitStore } from '../auth/rate-limit.js'
import { createRedisRateLimitStore } from '../auth/rate-limit-redis.js'
import { createPostgresRateLimitStore, createSQLiteRateLimitStore } from '../auth/rate-limit-sql.js'
import { TesseraError } from '../core/errors.js'
import type { SessionStore } from '../core/session-store.js'
import { createPostgresStore } from '../stores/postgres.js'
import { createSQLiteStore } from '../stores/sqlite.js'
import type { ReadinessCheck } from './app.js'
import type { ServerConfig } from './config.js'

/** The databases and stores the server runs on, opened from the configuration. */
export interface Backends {
  /** Accounts, audit, reset tokens and signing keys (Kysely over SQLite or PostgreSQL). */
  db: TesseraDB
  /** Browser sessions. */
  sessionStore: SessionStore
  /** Refresh-token families (a store of their own, so they never show up as sessions). */
  refreshStore: SessionStore
  /** Login rate-limit counters, shared by every process on the same backend. */
  rateLimitStore: RateLimitStore
  /** Signing keys of access tokens. */
  keyStorage: KyselyKeyStorage
  /** Each backend's ping, for `/readyz`. */
  readiness: ReadinessCheck[]
  /**
   * Number of live sessions in the session store (browser and admin panel sessions), for the
   * `tessera_active_sessions` gauge and the admin dashboard. A SQL `COUNT` with SQLite or
   * PostgreSQL; with Redis a SCAN of the keyspace, so that figure is kept for
   * {@link REDIS_COUNT_CACHE_MS} (docs/decisions.md).
   */
  countSessions?: () => Promise<number>
  /** Human description for the start-up log (no credentials). */
  describe: string
  /** Closes every connection opened here. */
  close(): Promise<void>
}

/** Options of {@link openBackends}. */
export interface BackendOptions {
  /**
   * Clock in epoch milliseconds for the stores (Redis key TTLs, `listByUser` filters, the
   * session count); give the same one as to the services built on them. @default Date.now
   */
  now?: () => number
}

/** How long the server keeps a Redis session count before it scans again (30 s). */
export const REDIS_COUNT_CACHE_MS = 30_000

/**
 * `read`, called at most once per `ms`: callers within that time get the last result, and
 * callers during a read share it. A failed read is not kept, so the next caller tries again.
 */
export function cacheFor<T>(
  read: () => Promise<T>,
  ms: number,
  now: () => number = Date.now,
): () => Promise<T> {
  let kept: { value: T; at: number } | undefined
  let pending: Promise<T> | undefined
  return () => {
    if (kept !== undefined && now() - kept.at < ms) return Promise.resolve(kept.value)
    pending ??= read().then(
      (value) => {
        kept = { value, at: now() }
        pending = undefined
        return value
      },
      (error: unknown) => {
        pending = undefined
        throw error
      },
    )
    return pending
  }
}

/**
 * Imports an optional driver (a peer dependency) only when the configuration needs it, so a
 * server on SQLite does not need `pg` or `redis` installed: the library's one loader
 * ({@link loadOptionalPeer}), which names the package to install when it is missing.
 */
export const loadDriver = loadOptionalPeer

/**
 * What the server does about Redis' `maxmemory-policy` (docs/stores.md): nothing for
 * `noeviction`; for an evicting policy, refuse in production and warn elsewhere; when the
 * policy cannot be read (a managed Redis that hides `CONFIG`), refuse in production unless
 * `TESSERA_REDIS_ASSUME_NOEVICTION=1`, which logs a loud warning instead.
 */
export function evictionProblem(
  policy: string | null,
  config: Pick<ServerConfig, 'mode' | 'redisAssumeNoeviction'>,
): { refuse: boolean; message: string } | null {
  if (policy === 'noeviction') return null
  const production = config.mode === 'production'
  if (policy === null) {
    if (config.redisAssumeNoeviction) {
      return {
        refuse: false,
        message:
          'WARNING: Redis hides CONFIG, so maxmemory-policy cannot be checked; TESSERA_REDIS_ASSUME_NOEVICTION=1 says it is noeviction. If Redis can evict keys, a full Redis silently drops session indexes and login counters: revocation and login limits then fail.',
      }
    }
    return {
      refuse: production,
      message: `Redis maxmemory-policy cannot be read (CONFIG GET is refused). Set maxmemory-policy noeviction on the Redis server, then set TESSERA_REDIS_ASSUME_NOEVICTION=1${production ? '' : ' (refused in production)'}`,
    }
  }
  return {
    refuse: production,
    message: `Redis maxmemory-policy is ${policy}: under memory pressure Redis evicts keys revocation relies on (a user's sessions index, login counters). Set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, and in redis.conf)${production ? '' : '; accepted because NODE_ENV is not production, refused in production'}`,
  }
}

const SESSIONS_TABLE = 'tessera_sessions'
const REFRESH_TABLE = 'tessera_refresh_families'

/**
 * Opens the database named by `DATABASE_URL` (SQLite by default), migrates it, and puts
 * sessions, refresh tokens and rate limits in Redis when `REDIS_URL` is set, else in the same
 * database.
 *
 * @throws TesseraError `store_unavailable` when the database cannot be opened or migrated
 */
export async function openBackends(
  config: ServerConfig,
  logger: Logger,
  options: BackendOptions = {},
): Promise<Backends> {
  const closers: Array<() => Promise<void>> = []
  const close = async (): Promise<void> => {
    for (const closer of closers.splice(0).reverse()) {
      try {
        await closer()
      } catch (error) {
        logger.warn({ err: error }, 'closing a backend failed')
      }
    }
  }
  try {
    return await open(config, logger, options.now ?? Date.now, closers, close)
  } catch (error) {
    await close()
    throw error
  }
}

async function open(
  config: ServerConfig,
  logger: Logger,
  now: () => number,
  closers: Array<() => Promise<void>>,
  close: () => Promise<void>,
): Promise<Backends> {
  const readiness: ReadinessCheck[] = []
  let db: TesseraDB
  let sessionStore: SessionStore
  let refreshStore: SessionStore
  let rateLimitStore: RateLimitStore
  let countSessions: (() => Promise<number>) | undefined
  let describe: string

  if (config.database.dialect === 'sqlite') {
    const path = config.database.filename
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
    const { default: Sqlite } = await loadDriver(
      () => import('better-sqlite3'),
      'better-sqlite3',
      'DATABASE_URL names SQLite',
    )
    let sqlite: BetterSqlite3.Database
    try {
      sqlite = new Sqlite(path)
    } catch (error) {
      throw new TesseraError('store_unavailable', `DATABASE_URL: cannot open SQLite file ${path}`, {
        cause: error,
      })
    }
    closers.push(() => Promise.resolve(void sqlite.close()))
    db = await createDatabase({ dialect: 'sqlite', database: sqlite })
    closers.push(() => db.destroy())
    sessionStore = createSQLiteStore(sqlite, { table: SESSIONS_TABLE, now })
    refreshStore = createSQLiteStore(sqlite, { table: REFRESH_TABLE, now })
    const limits = createSQLiteRateLimitStore(sqlite)
    await limits.migrate()
    rateLimitStore = limits
    const count = sqlite.prepare(`SELECT COUNT(*) AS n FROM "${SESSIONS_TABLE}" WHERE dies_at > ?`)
    countSessions = () => Promise.resolve((count.get(now()) as { n: number }).n)
    describe = `sqlite ${path}`
  } else {
    const { default: pg } = await loadDriver(
      () => import('pg'),
      'pg',
      'DATABASE_URL names PostgreSQL',
    )
    const pool = new pg.Pool({
      connectionString: config.database.connectionString,
      max: 10,
      connectionTimeoutMillis: 2000,
    })
    pool.on('error', (error) => logger.warn({ err: error }, 'postgres pool error'))
    closers.push(() => pool.end())
    db = await createDatabase({ dialect: 'postgres', pool })
    closers.push(() => db.destroy())
    const sessions = createPostgresStore(pool, { table: SESSIONS_TABLE, now })
    const refresh = createPostgresStore(pool, { table: REFRESH_TABLE, now })
    const limits = createPostgresRateLimitStore(pool)
    try {
      await sessions.migrate()
      await refresh.migrate()
      await limits.migrate()
    } catch (error) {
      throw new TesseraError('store_unavailable', 'DATABASE_URL: PostgreSQL cannot be reached', {
        cause: error,
      })
    }
    sessionStore = sessions
    refreshStore = refresh
    rateLimitStore = limits
    countSessions = async () => {
      const result = await pool.query<{ n: string }>(
        `SELECT COUNT(*) AS n FROM ${SESSIONS_TABLE} WHERE dies_at > $1`,
        [now()],
      )
      return Number(result.rows[0]?.n ?? 0)
    }
    const url = new URL(config.database.connectionString)
    describe = `postgres ${url.hostname}:${url.port || '5432'}${url.pathname}`
  }

  // SECURITY: a database that cannot be migrated is not served half-way: fail the start.
  const report = await migrateToLatest(db)
  if (report.applied.length > 0) logger.info({ migrations: report.applied }, 'database migrated')
  const keyStorage = createKyselyKeyStorage(db)
  await keyStorage.migrate()
  readiness.push({
    name: config.database.dialect,
    ping: async () => void (await sql`SELECT 1`.execute(db)),
  })

  if (config.redisUrl !== null) {
    const [{ createClient }, { createRedisStore, readEvictionPolicy }] = await Promise.all([
      loadDriver(() => import('redis'), 'redis', 'REDIS_URL is set'),
      import('../stores/redis.js'),
    ])
    const client = createClient({
      url: config.redisUrl,
      socket: {
        connectTimeout: 1000,
        // Keep trying for ever, at most every 2 s: the server recovers when Redis returns.
        reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2000),
      },
      // SECURITY: fail closed and fast: with Redis away, commands fail (503) instead of queueing.
      disableOfflineQueue: true,
      commandOptions: { timeout: 1000 },
    })
    let lastError = 0
    client.on('error', (error: unknown) => {
      // One line per 10 s while Redis is away, not one per reconnect attempt.
      if (Date.now() - lastError > 10_000) logger.warn({ err: error }, 'redis error')
      lastError = Date.now()
    })
    closers.push(async () => {
      if (client.isOpen) await client.close()
      else client.destroy()
    })
    // Start even when Redis is away: requests that need it get 503 and /readyz says why, and
    // the client keeps reconnecting, so the server recovers without a restart.
    const connected = client.connect().then(
      () => true,
      (error: unknown) => {
        logger.warn({ err: error }, 'redis connect failed')
        return false
      },
    )
    let timer: NodeJS.Timeout | undefined
    const waited = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), 3000)
    })
    if (!(await Promise.race([connected, waited]))) {
      logger.warn('redis is not reachable yet: serving 503 for what needs it until it is')
    }
    clearTimeout(timer)
    // SECURITY: revocation must not depend on a key Redis may evict (a user's set of sessions,
    // a login counter): production refuses to start unless maxmemory-policy is noeviction.
    let evictionRefusal: string | null = null
    const checkEviction = async (): Promise<void> => {
      const problem = evictionProblem(await readEvictionPolicy(client), config)
      if (problem === null) return
      if (problem.refuse) throw new TesseraError('config_invalid', problem.message)
      logger.warn(problem.message)
    }
    if (client.isReady) {
      await checkEviction()
    } else {
      // Not reachable at start: check once it connects; a refused policy then keeps /readyz
      // at 503 (the process is already serving).
      client.once('ready', () => {
        checkEviction().catch((error: unknown) => {
          if (error instanceof TesseraError && error.code === 'config_invalid') {
            evictionRefusal = error.message
            logger.error(error.message)
          } else logger.warn({ err: error }, 'redis: could not check maxmemory-policy')
        })
      })
    }
    const sessions = createRedisStore(client, { prefix: config.redisPrefix, now })
    sessionStore = config.nearCache
      ? await nearCached(sessions, client, config.redisPrefix, logger, closers)
      : sessions
    refreshStore = createRedisStore(client, { prefix: `${config.redisPrefix}rt:`, now })
    rateLimitStore = createRedisRateLimitStore(client, { prefix: `${config.redisPrefix}rl:` })
    // A SCAN pass costs about one call per thousand keys of the database: at most one per
    // REDIS_COUNT_CACHE_MS, however often /metrics is scraped or the dashboard is opened.
    countSessions = cacheFor(() => sessions.count(), REDIS_COUNT_CACHE_MS)
    readiness.push({
      name: 'redis',
      ping: async () => {
        if (evictionRefusal !== null) throw new TesseraError('config_invalid', evictionRefusal)
        await client.ping()
      },
    })
    const url = new URL(config.redisUrl)
    describe += `, redis ${url.hostname}:${url.port || '6379'}`
  }

  const backends: Backends = {
    db,
    sessionStore,
    refreshStore,
    rateLimitStore,
    keyStorage,
    readiness,
    describe,
    close,
  }
  if (countSessions !== undefined) backends.countSessions = countSessions
  return backends
}

/**
 * The session store behind an in-process near-cache invalidated through Redis pub/sub (issue
 * 18, docs/scaling.md): its own subscriber connection, a channel per prefix. With Redis away
 * at start the channel comes up by itself later; until then every read goes to Redis.
 */
async function nearCached(
  store: SessionStore,
  client: RedisClientType,
  prefix: string,
  logger: Logger,
  closers: Array<() => Promise<void>>,
): Promise<SessionStore> {
  const { createRedisInvalidation, createNearCacheStore } = await import('../stores/redis.js')
  const subscriber = client.duplicate()
  subscriber.on('error', () => undefined) // the command client already logs Redis errors
  // Not awaited: with Redis away it retries for ever (as the command client does), and the
  // channel subscribes once it is ready; until then every read goes to Redis.
  subscriber.connect().catch((error: unknown) => {
    logger.warn({ err: error }, 'near-cache: redis subscriber connect failed; reads go to Redis')
  })
  // Real time, not the server's clock: the channel's health is about the network, and a test
  // clock that stands still must not keep a dead channel "fresh".
  const invalidation = await createRedisInvalidation(client, subscriber, {
    channel: `${prefix}invalidate`,
  })
  closers.push(() => invalidation.close())
  return createNearCacheStore(store, invalidation)
}
