import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { rmSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// A real Next.js app (test/fixtures/next-app) that imports tessera from src/: built once with
// `next build --webpack` WITHOUT `TESSERA_SECRET` (as a CI build or a Docker image build runs:
// modules must not build the keyring at import), started with `next start` and the secret on a
// loopback port, and driven over HTTP. lib/documented-session.ts is the README's snippet.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const appDir = path.join(root, 'test/fixtures/next-app')
const nextBin = path.join(root, 'node_modules/next/dist/bin/next')
const { TESSERA_SECRET: _ignored, ...withoutSecret } = process.env
const buildEnv = { ...withoutSecret, NEXT_TELEMETRY_DISABLED: '1', NODE_ENV: 'production' }
const env = { ...buildEnv, TESSERA_SECRET: randomBytes(32).toString('base64url') }
// The documented snippet keeps its sessions in ./sessions.db of the app (next start's cwd).
const sessionFiles = ['sessions.db', 'sessions.db-wal', 'sessions.db-shm'].map((name) =>
  path.join(appDir, name),
)

function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [nextBin, ...args], { cwd: appDir, env: buildEnv })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      if (code === 0) resolve(output)
      else reject(new Error(`next ${args.join(' ')} exited with ${code}:\n${output}`))
    })
  })
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port)
        else reject(new Error('no port'))
      })
    })
  })
}

let server: ChildProcess | undefined
let base = ''

beforeAll(async () => {
  const started = Date.now()
  await run(['build', '--webpack'])
  console.info(`next build took ${Math.round((Date.now() - started) / 1000)} s`)
  const port = await freePort()
  base = `http://127.0.0.1:${port}`
  server = spawn(process.execPath, [nextBin, 'start', '-p', String(port), '-H', '127.0.0.1'], {
    cwd: appDir,
    env,
    stdio: 'ignore',
  })
  for (let attempt = 0; attempt < 150; attempt++) {
    try {
      await fetch(`${base}/api/me`)
      return
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  throw new Error('next start did not answer')
}, 400_000)

afterAll(async () => {
  if (server?.exitCode === null) {
    const exited = new Promise((resolve) => server?.once('exit', resolve))
    server.kill('SIGTERM')
    await exited
  }
  for (const file of sessionFiles) rmSync(file, { force: true })
  // The quick start's accounts and sessions (./data/app.db of the app).
  rmSync(path.join(appDir, 'data'), { recursive: true, force: true })
})

function firstCookies(response: Response): string {
  return response.headers
    .getSetCookie()
    .filter((line) => !/Max-Age=0/i.test(line))
    .map((line) => line.split(';')[0])
    .join('; ')
}

async function page(cookie = ''): Promise<string> {
  const response = await fetch(`${base}/`, { headers: cookie === '' ? {} : { cookie } })
  expect(response.status).toBe(200)
  return (await response.text()).replaceAll('<!-- -->', '')
}

/** Submits one of the page's server-action forms the way a browser without JavaScript does. */
async function submitAction(
  formId: string,
  fields: Record<string, string>,
  cookie = '',
): Promise<Response> {
  const html = await page(cookie)
  const match = new RegExp(
    `id="${formId}"[^>]*><input type="hidden" name="(\\$ACTION_ID_[0-9a-f]+)"`,
  ).exec(html)
  expect(match).not.toBeNull()
  const form = new FormData()
  form.append(match![1]!, '')
  for (const [name, value] of Object.entries(fields)) form.append(name, value)
  return fetch(`${base}/`, {
    method: 'POST',
    body: form,
    redirect: 'manual',
    headers: cookie === '' ? {} : { cookie },
  })
}

describe('tessera-auth/next in a real Next.js app (next build + next start)', () => {
  it('a server component reads no session when there is no cookie', async () => {
    const html = await page()
    expect(html).toContain('sealed:anonymous')
    expect(html).toContain('store:anonymous')
  })

  it('a server action signs in with a sealed cookie, the server component reads it, sign-out clears it', async () => {
    const signIn = await submitAction('sign-in-sealed', { user: 'ann' })
    expect(signIn.status).toBe(200)
    const line = signIn.headers.getSetCookie().find((value) => value.startsWith('tessera_seal='))
    expect(line).toMatch(/^tessera_seal=s1\.[^;]+; Path=\/; .*HttpOnly; SameSite=lax/i)
    const cookie = firstCookies(signIn)
    expect(await page(cookie)).toContain('sealed:ann')
    // a tampered seal reads as no session
    expect(await page(`${cookie.slice(0, -3)}AAA`)).toContain('sealed:anonymous')
    const signOut = await submitAction('sign-out-sealed', {}, cookie)
    expect(signOut.headers.getSetCookie().join('\n')).toMatch(/tessera_seal=;.*Max-Age=0/)
  })

  it('a sealed session over 4 KB is chunked and read back', async () => {
    const response = await fetch(`${base}/api/big`, { method: 'POST' })
    expect(response.status).toBe(204)
    const names = response.headers.getSetCookie().map((line) => line.split('=')[0])
    expect(names).toEqual(expect.arrayContaining(['tessera_seal.0', 'tessera_seal.1']))
    const html = await page(firstCookies(response))
    expect(html).toContain('sealed:dana')
    expect(html).toContain('note-length:5000')
  })

  it('a server action signs in with a store-backed session', async () => {
    const signIn = await submitAction('sign-in-store', { user: 'carol' })
    const cookie = firstCookies(signIn)
    expect(cookie).toMatch(/^tessera_session=/)
    expect(await page(cookie)).toContain('store:carol')
  })

  it('route handlers sign in and out; the guard answers 401 without a live session', async () => {
    const anonymous = await fetch(`${base}/api/me`)
    expect(anonymous.status).toBe(401)
    expect(await anonymous.json()).toMatchObject({ error: { code: 'unauthenticated' } })
    const login = await fetch(`${base}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'bob' }),
    })
    const cookie = firstCookies(login)
    const me = await fetch(`${base}/api/me`, { headers: { cookie } })
    expect(me.status).toBe(200)
    expect(await me.json()).toMatchObject({ userId: 'bob' })
    const logout = await fetch(`${base}/api/logout`, { method: 'POST', headers: { cookie } })
    expect(logout.status).toBe(204)
    // the copy of the old cookie no longer works: the session is gone from the store
    expect((await fetch(`${base}/api/me`, { headers: { cookie } })).status).toBe(401)
  })

  it('requireFresh and requireAAL guards: 403 reauthentication_required when stale or without a second factor', async () => {
    async function login(body: Record<string, unknown>): Promise<string> {
      const response = await fetch(`${base}/api/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
      expect(response.status).toBe(200)
      return firstCookies(response)
    }
    const anonymous = await fetch(`${base}/api/fresh`)
    expect(anonymous.status).toBe(401)
    const recent = await login({ user: 'fay', authAge: 0 })
    const fresh = await fetch(`${base}/api/fresh`, { headers: { cookie: recent } })
    expect(fresh.status).toBe(200)
    const aal1 = await fetch(`${base}/api/aal2`, { headers: { cookie: recent } })
    expect(aal1.status).toBe(403)
    expect(aal1.headers.get('cache-control')).toBe('no-store')
    const aal1Body = (await aal1.json()) as { error: { code: string; message: string } }
    expect(aal1Body.error.code).toBe('reauthentication_required')
    expect(aal1Body.error.message).toMatch(/second factor/)
    const old = await login({ user: 'gus', authAge: 601 })
    const stale = await fetch(`${base}/api/fresh`, { headers: { cookie: old } })
    expect(stale.status).toBe(403)
    const staleBody = (await stale.json()) as { error: { code: string; message: string } }
    expect(staleBody.error.code).toBe('reauthentication_required')
    expect(staleBody.error.message).toMatch(/600 seconds/)
    const strong = await login({ user: 'hal', aal: 2 })
    expect((await fetch(`${base}/api/aal2`, { headers: { cookie: strong } })).status).toBe(200)
  })

  it('a session cookie sent twice reads as none, for store and sealed sessions (cookie tossing)', async () => {
    const login = await fetch(`${base}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'ida' }),
    })
    const mine = firstCookies(login)
    expect((await fetch(`${base}/api/me`, { headers: { cookie: mine } })).status).toBe(200)
    const other = firstCookies(
      await fetch(`${base}/api/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'mallory' }),
      }),
    )
    const twice = await fetch(`${base}/api/me`, { headers: { cookie: `${mine}; ${other}` } })
    expect(twice.status).toBe(401)
    // The server component reads neither copy.
    expect(await page(`${mine}; ${other}`)).toContain('store:anonymous')
    const sealedIn = firstCookies(await submitAction('sign-in-sealed', { user: 'jo' }))
    expect(await page(sealedIn)).toContain('sealed:jo')
    expect(await page(`${sealedIn}; ${sealedIn}`)).toContain('sealed:anonymous')
  })

  it('proxy.ts (Node runtime) lets a signed cookie through and redirects without one', async () => {
    const blocked = await fetch(`${base}/private`, { redirect: 'manual' })
    expect(blocked.status).toBe(307)
    expect(new URL(blocked.headers.get('location') ?? '', base).pathname).toBe('/')
    const forged = await fetch(`${base}/private`, {
      redirect: 'manual',
      headers: { cookie: 'tessera_session=forged; tessera_seal=s1.forged' },
    })
    expect(forged.status).toBe(307)
    const login = await fetch(`${base}/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'eve' }),
    })
    const allowed = await fetch(`${base}/private`, { headers: { cookie: firstCookies(login) } })
    expect(allowed.status).toBe(200)
    expect(await allowed.text()).toContain('private page')
  })
})

describe("the README's lib/session.ts (lazy, SQLite store), built without TESSERA_SECRET", () => {
  it('signs in from a route handler; a server component and the guard read the session', async () => {
    expect((await fetch(`${base}/api/documented`)).status).toBe(401)
    const form = new FormData()
    form.set('user', 'dora')
    const login = await fetch(`${base}/api/documented`, { method: 'POST', body: form })
    expect(login.status).toBe(200)
    const cookie = firstCookies(login)
    // secure: NODE_ENV is production under next start, so the cookie has the __Host- prefix
    expect(cookie).toMatch(/^__Host-tessera_session=/)
    const me = await fetch(`${base}/api/documented`, { headers: { cookie } })
    expect(await me.json()).toEqual({ userId: 'dora' })
    const page = await fetch(`${base}/documented`, { headers: { cookie } })
    expect(page.status).toBe(200)
    const html = (await page.text()).replaceAll('<!-- -->', '')
    expect(html).toContain('store:dora')
    expect(html).toContain('sealed:anonymous')
  })
})

describe("docs/quickstart.md's mounted API (lib/tessera.ts, app/api/[...tessera], app/me), built without TESSERA_SECRET", () => {
  it('signs up, signs in, serves /me from the same sessions, and logs out with the CSRF token', async () => {
    const email = `next-${randomBytes(4).toString('hex')}@example.com`
    const json = { 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' }
    const body = JSON.stringify({ email, password: 'correct horse battery staple' })
    const signup = await fetch(`${base}/api/auth/signup`, { method: 'POST', headers: json, body })
    expect(signup.status).toBe(201)
    const login = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: json, body })
    expect(login.status).toBe(200)
    const line = login.headers.getSetCookie().find((entry) => entry.includes('tessera_session='))
    expect(line).toMatch(/; Path=\/(;|$)/)
    const cookie = line?.split(';')[0] ?? ''
    const session = await fetch(`${base}/api/auth/session`, { headers: { cookie } })
    expect(((await session.json()) as { user: { email: string } }).user.email).toBe(email)
    const me = await fetch(`${base}/me`, { headers: { cookie } })
    expect(me.status).toBe(200)
    expect(((await me.json()) as { user: { email: string } }).user.email).toBe(email)
    const { token } = (await (
      await fetch(`${base}/api/auth/csrf`, { headers: { cookie } })
    ).json()) as { token: string }
    const crossSite = await fetch(`${base}/api/auth/logout`, {
      method: 'POST',
      headers: { cookie, origin: 'https://evil.example' },
    })
    expect(crossSite.status).toBe(403)
    const logout = await fetch(`${base}/api/auth/logout`, {
      method: 'POST',
      headers: { cookie, 'x-csrf-token': token },
    })
    expect(logout.status).toBe(204)
    expect((await fetch(`${base}/me`, { headers: { cookie } })).status).toBe(401)
    // The prefix is the route's: the API answers nothing outside /api.
    expect((await fetch(`${base}/auth/session`, { headers: { cookie } })).status).toBe(404)
  })
})
