import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { createClient } from 'redis'
import { loadConfig } from '../../src/server/config.js'
import { startServer, type RunningServer, type StartOptions } from '../../src/server/main.js'
import { uniqueName } from '../helpers/services.js'
import { captureLogger, type CapturedLogger } from './helpers.js'

/** A tessera server on a real socket, with its log and mail outbox. */
export interface TestServer {
  url: string
  origin: string
  log: CapturedLogger
  running: RunningServer
  cwd: string
  /**
   * Text of the mails written so far, oldest first: every mail but the verification mail that
   * each signup sends (it arrives after the 201, so it would upset counts of reset mails), or,
   * with `{ all: true }`, every one.
   */
  mails(options?: { all?: boolean }): string[]
  stop(): Promise<void>
}

/** Where a test server keeps its data. */
export type Backend =
  | { kind: 'sqlite' }
  | { kind: 'postgres+redis'; pgUrl: string; redisUrl: string; schema: string; prefix: string }

/** Creates (and later drops) a PostgreSQL schema for one suite. */
export async function createSchema(pgUrl: string, schema: string): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: pgUrl })
  await client.connect()
  await client.query(`CREATE SCHEMA "${schema}"`)
  await client.end()
  return async () => {
    const dropper = new pg.Client({ connectionString: pgUrl })
    await dropper.connect()
    await dropper.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await dropper.end()
  }
}

/** Deletes every Redis key under `prefix` (SCAN over our own unique prefix only). */
export async function dropRedisPrefix(url: string, prefix: string): Promise<void> {
  const client = createClient({ url })
  client.on('error', () => undefined)
  await client.connect()
  for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
    if (keys.length > 0) await client.del(keys)
  }
  client.destroy()
}

/**
 * A PostgreSQL + Redis backend of its own (a fresh schema and key prefix named after `tag`),
 * and how to drop both afterwards.
 */
export async function postgresRedisBackend(
  urls: { pgUrl: string; redisUrl: string },
  tag: string,
): Promise<{ backend: Backend; done: () => Promise<void> }> {
  const schema = uniqueName(tag)
  const drop = await createSchema(urls.pgUrl, schema)
  const prefix = `${uniqueName(`t${tag}`)}:`
  return {
    backend: { kind: 'postgres+redis', pgUrl: urls.pgUrl, redisUrl: urls.redisUrl, schema, prefix },
    done: async () => {
      await drop()
      await dropRedisPrefix(urls.redisUrl, prefix)
    },
  }
}

/** Starts the real server (startServer) on 127.0.0.1 and a free port. */
export async function startTestServer(
  backend: Backend,
  env: Record<string, string> = {},
  options: {
    cwd?: string
    /** The server's clock (epoch ms), given to every service and store. @default Date.now */
    now?: () => number
    /** Waits between tries of a mail that failed. @default the server's */
    mailRetryDelaysMs?: readonly number[]
    /** Extra routes (a page of an example). @default [] */
    routes?: StartOptions['routes']
  } = {},
): Promise<TestServer> {
  const cwd = options.cwd ?? mkdtempSync(join(tmpdir(), 'tessera-api-'))
  const outbox = join(cwd, 'outbox')
  const base: Record<string, string> = {
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    TESSERA_MAILER: `file:${outbox}`,
    // No drain period on stop (the default is 5 s): the drain has its own test (main.test.ts).
    TESSERA_SHUTDOWN_DRAIN: '0',
  }
  if (backend.kind === 'postgres+redis') {
    const url = new URL(backend.pgUrl)
    url.searchParams.set('options', `-c search_path=${backend.schema}`)
    base.DATABASE_URL = url.toString()
    base.REDIS_URL = backend.redisUrl
    base.TESSERA_REDIS_PREFIX = backend.prefix
  }
  const config = loadConfig({ ...base, ...env }, { cwd, envFiles: false })
  const log = captureLogger()
  const running = await startServer(config, {
    logger: log.logger,
    shutdownGraceMs: 2000,
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.mailRetryDelaysMs === undefined
      ? {}
      : { mailRetryDelaysMs: options.mailRetryDelaysMs }),
    ...(options.routes === undefined ? {} : { routes: options.routes }),
  })
  const origin = `http://127.0.0.1:${running.port}`
  return {
    url: origin,
    origin: config.publicOrigin,
    log,
    running,
    cwd,
    mails: (mailOptions = {}) => {
      let names: string[]
      try {
        names = readdirSync(outbox).filter((name) => name.endsWith('.eml'))
      } catch {
        return []
      }
      const texts = names.sort().map((name) => readFileSync(join(outbox, name), 'utf8'))
      return mailOptions.all === true
        ? texts
        : texts.filter((text) => !/^Subject: Confirm your e-mail address for /m.test(text))
    },
    stop: async () => {
      await running.close()
      if (options.cwd === undefined) rmSync(cwd, { recursive: true, force: true })
    },
  }
}

/** One HTTP client with its own cookie jar, like one browser. */
export class Client {
  readonly cookies = new Map<string, string>()

  constructor(
    readonly server: TestServer,
    readonly defaults: Record<string, string> = {},
  ) {}

  /** Sends a request; JSON bodies are serialized with `Content-Type: application/json`. */
  async request(
    method: string,
    path: string,
    options: {
      json?: unknown
      body?: string
      headers?: Record<string, string>
      /** `manual` to see a redirect instead of following it. @default 'follow' */
      redirect?: 'follow' | 'manual' | 'error'
    } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...this.defaults, ...options.headers }
    let body: string | undefined = options.body
    if (options.json !== undefined) {
      body = JSON.stringify(options.json)
      headers['content-type'] ??= 'application/json'
    }
    if (this.cookies.size > 0 && headers.cookie === undefined) {
      headers.cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
    }
    const response = await fetch(`${this.server.url}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
      ...(options.redirect === undefined ? {} : { redirect: options.redirect }),
    })
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq)
      const value = pair.slice(eq + 1)
      if (value === '' || /max-age=0/i.test(line)) this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
    return response
  }

  /** Same-origin browser request headers. */
  static sameOrigin(server: TestServer): Record<string, string> {
    return { 'sec-fetch-site': 'same-origin', origin: server.origin }
  }
}

/** The body of an error response, checked to have exactly the API's shape. */
export async function apiError(response: Response): Promise<{ code: string; message: string }> {
  const body = (await response.json()) as { error?: { code: string; message: string } }
  if (body.error === undefined || Object.keys(body).length !== 1) {
    throw new Error(`not an error body: ${JSON.stringify(body)}`)
  }
  return body.error
}

/** A clock the test moves by hand: starts at the real time, never goes back. */
export interface TestClock {
  now: () => number
  /** Moves the clock forward by `seconds`. */
  advance(seconds: number): void
}

/** A {@link TestClock} starting now. */
export function testClock(): TestClock {
  let at = Date.now()
  return {
    now: () => at,
    advance: (seconds) => {
      at += seconds * 1000
    },
  }
}

/** The newest mail once `count` mails exist (the reset mail is sent after the 202). */
export async function waitForMail(server: TestServer, count: number): Promise<string> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const mails = server.mails()
    if (mails.length >= count) return mails[mails.length - 1] ?? ''
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error('no mail arrived')
}

/** The reset token in the newest mail. */
export function resetTokenFrom(mail: string): string {
  const unfolded = mail.replace(/=\r?\n/g, '').replace(/=3D/g, '=')
  const match = /\/reset\?token=([A-Za-z0-9_-]+)/.exec(unfolded)
  if (match?.[1] === undefined) throw new Error('no reset link in the mail')
  return match[1]
}
