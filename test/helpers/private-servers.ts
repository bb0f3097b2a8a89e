import { execFile } from 'node:child_process'
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

/**
 * Private Redis and PostgreSQL servers for tests that stop a server (fault tests) or need a
 * topology of their own (a cluster). Each runs on a free loopback port in a temp directory and
 * is torn down by `destroy()`; the shared servers are never touched.
 */

const run = promisify(execFile)
const PG_BIN = '/usr/lib/postgresql/15/bin'

/** A loopback TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port)
        else reject(new Error('no port'))
      })
    })
  })
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.unref()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** A port P where P and P + 10000 (the cluster bus port) are both free. */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000)
    if (taken.has(port) || taken.has(port + 10_000)) continue
    if ((await portIsFree(port)) && (await portIsFree(port + 10_000))) return port
  }
  throw new Error('no free port pair for a cluster node')
}

async function waitFor(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const until = Date.now() + ms
  for (;;) {
    if (await check().catch(() => false)) return
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
    timeout: 10_000,
  })
  return stdout
}

/** A private redis-server that a test can stop and start again on the same port. */
export interface PrivateRedis {
  port: number
  url: string
  /** Stops the server (SHUTDOWN NOSAVE); its data is gone. */
  stop(): Promise<void>
  /** Starts it again on the same port. */
  start(): Promise<void>
  /** Freezes the process (SIGSTOP): its socket stays open, nothing is answered. */
  pause(): void
  /** Lets a paused process run again (SIGCONT). */
  resume(): void
  /** Runs a redis-cli command against it (`CONFIG SET maxmemory 1`), returning its output. */
  cli(...args: string[]): Promise<string>
  /** Stops it if running and removes its directory. */
  destroy(): Promise<void>
}

async function spawnRedis(dir: string, port: number, extra: string[] = []): Promise<void> {
  await run('redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'yes',
    '--dir',
    dir,
    '--pidfile',
    join(dir, `redis-${port}.pid`),
    '--logfile',
    join(dir, `redis-${port}.log`),
    ...extra,
  ])
  await waitFor(async () => (await redisCli(port, 'PING')).trim() === 'PONG', `redis on ${port}`)
}

async function shutdownRedis(port: number): Promise<void> {
  await redisCli(port, 'SHUTDOWN', 'NOSAVE').catch(() => undefined)
  await waitFor(() => portIsFree(port), `redis on ${port} to stop`)
}

/**
 * Starts a private redis-server on a free loopback port, with `options.args` added to its
 * command line (`['--rename-command', 'CONFIG', '']` for a managed-Redis lookalike).
 */
export async function startPrivateRedis(options: { args?: string[] } = {}): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-redis-'))
  const port = await freePort()
  let running = false
  const start = async (): Promise<void> => {
    await spawnRedis(dir, port, options.args)
    running = true
  }
  await start()
  const pid = (): number => Number(readFileSync(join(dir, `redis-${port}.pid`), 'utf8').trim())
  let paused: number | undefined
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    start,
    async stop() {
      await shutdownRedis(port)
      running = false
    },
    pause() {
      paused = pid()
      process.kill(paused, 'SIGSTOP')
    },
    resume() {
      if (paused !== undefined) process.kill(paused, 'SIGCONT')
      paused = undefined
    },
    cli: (...args) => redisCli(port, ...args),
    async destroy() {
      if (paused !== undefined) process.kill(paused, 'SIGCONT')
      if (running) await shutdownRedis(port)
      running = false
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A private Redis Cluster of three masters on loopback ports. */
export interface PrivateRedisCluster {
  ports: number[]
  destroy(): Promise<void>
}

/**
 * Starts three `redis-server --cluster-enabled yes` nodes and joins them with
 * `redis-cli --cluster create … --cluster-replicas 0`; resolves once every node reports
 * `cluster_state:ok`.
 */
export async function startPrivateRedisCluster(): Promise<PrivateRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-cluster-'))
  const taken = new Set<number>()
  const ports: number[] = []
  const destroy = async (): Promise<void> => {
    await Promise.all(ports.map((port) => shutdownRedis(port).catch(() => undefined)))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (let index = 0; index < 3; index++) {
      const port = await freeClusterPort(taken)
      taken.add(port).add(port + 10_000)
      ports.push(port)
      await spawnRedis(dir, port, [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '2000',
      ])
    }
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((port) => `127.0.0.1:${port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    )
    for (const port of ports) {
      await waitFor(
        async () => (await redisCli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'),
        `cluster node ${port}`,
      )
    }
    return { ports, destroy }
  } catch (error) {
    await destroy()
    throw error
  }
}

/** A private PostgreSQL 15 server that a test can stop and start again on the same port. */
export interface PrivatePostgres {
  port: number
  url: string
  /** The data directory (its `postmaster.pid` names the server process). */
  dataDir: string
  stop(): Promise<void>
  start(): Promise<void>
  destroy(): Promise<void>
}

/**
 * `initdb` + `pg_ctl` from /usr/lib/postgresql/15/bin in a temp directory, as the `postgres`
 * user when running as root (initdb refuses root), trust authentication, loopback only.
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-pg-'))
  const asRoot = process.getuid?.() === 0
  const as = async (command: string, args: string[]): Promise<void> => {
    const file = join(PG_BIN, command)
    if (asRoot) await run('runuser', ['-u', 'postgres', '--', file, ...args], { timeout: 60_000 })
    else await run(file, args, { timeout: 60_000 })
  }
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres'])
    const { stdout: gid } = await run('id', ['-g', 'postgres'])
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()))
    chmodSync(dir, 0o700)
  }
  const data = join(dir, 'data')
  const port = await freePort()
  await as('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'])
  let running = false
  const start = async (): Promise<void> => {
    await as('pg_ctl', [
      '-D',
      data,
      '-l',
      join(dir, 'log'),
      '-o',
      `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c shared_buffers=16MB`,
      '-w',
      '-t',
      '30',
      'start',
    ])
    running = true
  }
  const stop = async (): Promise<void> => {
    await as('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop'])
    running = false
  }
  try {
    await start()
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dataDir: data,
    start,
    stop,
    async destroy() {
      if (running) await stop().catch(() => undefined)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
