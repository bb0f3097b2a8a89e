/*
 * One setup link, one administrator (API.md, issue 12.1): two real server processes share the
 * stores, the same setup link is opened on both, and both forms are posted at once with different
 * e-mails. Exactly one administrator is created; the other post gets the dead-link page. Run on
 * a SQLite file shared by both processes with sessions in the real Redis, and on PostgreSQL +
 * Redis.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { describeWithPostgresAndRedis, uniqueName } from '../../helpers/services.js'
import { createSchema, dropRedisPrefix } from '../api-harness.js'
import { spawnEntry, type ServerProcess } from '../process.js'

const PUBLIC_URL = 'http://localhost:3000'
const PASSWORD = 'first admin password here'

/** One browser on one process: its own cookies, same-origin headers. */
async function openSetupForm(
  server: ServerProcess,
  path: string,
): Promise<{ csrf: string; cookie: string }> {
  const page = await fetch(`http://127.0.0.1:${server.port}${path}`, {
    headers: { 'sec-fetch-site': 'same-origin' },
  })
  expect(page.status).toBe(200)
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1]
  if (csrf === undefined) throw new Error('no CSRF field on the setup page')
  const cookie = page.headers
    .getSetCookie()
    .map((line) => line.split(';')[0])
    .join('; ')
  return { csrf, cookie }
}

function postSetup(
  server: ServerProcess,
  form: { csrf: string; cookie: string },
  token: string,
  email: string,
): Promise<Response> {
  return fetch(`http://127.0.0.1:${server.port}/admin/setup`, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      origin: PUBLIC_URL,
      'sec-fetch-site': 'same-origin',
      ...(form.cookie === '' ? {} : { cookie: form.cookie }),
    },
    body: new URLSearchParams({
      _csrf: form.csrf,
      token,
      email,
      password: PASSWORD,
      password2: PASSWORD,
    }).toString(),
  })
}

async function login(server: ServerProcess, email: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${server.port}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  })
}

/** Starts two server processes on `env` (the same stores, the same secret). */
async function twoProcesses(env: Record<string, string>): Promise<[ServerProcess, ServerProcess]> {
  const shared = {
    TESSERA_SECRET: randomBytes(32).toString('base64url'),
    TESSERA_PUBLIC_URL: PUBLIC_URL,
    TESSERA_MAILER: 'console',
    ...env,
  }
  // One after the other: the second must find the first one's migrated database.
  const a = await spawnEntry('test/server/fixtures/serve.ts', { env: shared })
  const b = await spawnEntry('test/server/fixtures/serve.ts', { env: shared })
  return [a, b]
}

/** The race itself, on two processes that share their stores. */
async function raceOneLink(a: ServerProcess, b: ServerProcess): Promise<void> {
  const logged = await a.waitForLine((line) => typeof line.setupUrl === 'string')
  const link = new URL(logged.setupUrl as string)
  const token = link.searchParams.get('token') ?? ''
  const path = `${link.pathname}${link.search}`
  // The same link opens on both processes (its record is in the shared store).
  const [formA, formB] = await Promise.all([openSetupForm(a, path), openSetupForm(b, path)])

  const first = `${uniqueName('first')}@example.com`
  const second = `${uniqueName('second')}@example.com`
  const [onA, onB] = await Promise.all([
    postSetup(a, formA, token, first),
    postSetup(b, formB, token, second),
  ])
  const statuses = [onA.status, onB.status].sort()
  expect(statuses).toEqual([303, 404])
  const loser = onA.status === 404 ? onA : onB
  expect(await loser.text()).toContain('Setup link not valid')
  const winner = onA.status === 303 ? first : second
  const other = winner === first ? second : first

  // Exactly one account exists, and it is an administrator.
  const won = await login(a, winner)
  expect(won.status).toBe(200)
  expect(((await won.json()) as { user: { isAdmin: boolean } }).user.isAdmin).toBe(true)
  const lost = await login(b, other)
  expect(lost.status).toBe(401)
  await lost.body?.cancel()
  // The link is dead on both processes, and so is the second process's own link.
  for (const server of [a, b]) {
    const again = await fetch(`http://127.0.0.1:${server.port}${path}`)
    expect(again.status).toBe(404)
    await again.body?.cancel()
  }
  const ownOfB = await b.waitForLine((line) => typeof line.setupUrl === 'string')
  const ownLink = new URL(ownOfB.setupUrl as string)
  const reopened = await fetch(`http://127.0.0.1:${b.port}${ownLink.pathname}${ownLink.search}`)
  expect(reopened.status).toBe(404)
  await reopened.body?.cancel()
}

describeWithPostgresAndRedis('one setup link, one administrator, across processes', (urls) => {
  const cleanups: Array<() => Promise<void> | void> = []
  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  /** Two processes on `databaseUrl`, with sessions in Redis under a prefix of their own. */
  async function raceOn(databaseUrl: string): Promise<void> {
    const prefix = `${uniqueName('trace')}:`
    cleanups.push(() => dropRedisPrefix(urls.redisUrl, prefix))
    const [a, b] = await twoProcesses({
      DATABASE_URL: databaseUrl,
      REDIS_URL: urls.redisUrl,
      TESSERA_REDIS_PREFIX: prefix,
    })
    cleanups.push(
      () => a.cleanup(),
      () => b.cleanup(),
    )
    await raceOneLink(a, b)
  }

  it('a SQLite file shared by two processes, sessions in Redis: parallel posts create one admin', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-setup-race-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    await raceOn(`sqlite:${join(dir, 'tessera.db')}`)
  }, 60_000)

  it('PostgreSQL + Redis shared by two processes: parallel posts create one admin', async () => {
    const schema = uniqueName('srace')
    cleanups.push(await createSchema(urls.pgUrl, schema))
    const url = new URL(urls.pgUrl)
    url.searchParams.set('options', `-c search_path=${schema}`)
    await raceOn(url.toString())
  }, 60_000)
})
