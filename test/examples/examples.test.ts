import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { spawnEntry, type ServerProcess } from '../server/process.js'

// The examples as a user runs them (`npx tsx examples/<name>/...`), importing `tessera-auth/...`
// by name: tsx maps the names to src/ through examples/tsconfig.json (see docs/decisions.md),
// so they run against the code under test, not a stale build.

const SECRET = randomBytes(32).toString('base64url')
const ORIGIN = 'http://app.example.test'

async function start(
  entry: string,
  env: Record<string, string> = {},
): Promise<{
  app: ServerProcess
  base: string
}> {
  const app = await spawnEntry(entry, {
    env: { PUBLIC_URL: ORIGIN, TESSERA_SECRET: SECRET, ...env },
    waitForListening: false,
  })
  try {
    const line = await app.waitForLine((entry) =>
      /listening (on|at) http:\/\/127\.0\.0\.1:\d+/i.test(String(entry.text ?? entry.msg)),
    )
    const base = /http:\/\/127\.0\.0\.1:\d+/.exec(String(line.text ?? line.msg))?.[0] ?? ''
    expect(base).not.toMatch(/:0$/)
    return { app, base }
  } catch (error) {
    await app.cleanup()
    throw error
  }
}

function cookieOf(response: Response): string {
  return (response.headers.getSetCookie()[0] ?? '').split(';')[0] ?? ''
}

describe.each([['examples/hono/server.ts'], ['examples/fastify/server.ts']])('%s', (entry) => {
  it('signs in, serves /me and /notes, refuses a cross-site post, signs out', async () => {
    const { app, base } = await start(entry)
    try {
      const json = { 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' }
      expect((await fetch(`${base}/me`)).status).toBe(401)
      const login = await fetch(`${base}/login`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ name: 'ada' }),
      })
      expect(login.status).toBe(200)
      const cookie = cookieOf(login)
      expect(cookie).toMatch(/^tessera_session=/)
      const me = await fetch(`${base}/me`, { headers: { cookie } })
      expect(me.status).toBe(200)
      expect(JSON.stringify(await me.json())).toContain('user:ada')
      expect((await fetch(`${base}/notes`, { headers: { cookie } })).status).toBe(200)
      const cross = await fetch(`${base}/logout`, {
        method: 'POST',
        headers: { cookie, origin: 'https://evil.example' },
      })
      expect(cross.status).toBe(403)
      const logout = await fetch(`${base}/logout`, {
        method: 'POST',
        headers: { cookie, origin: ORIGIN },
      })
      expect(logout.status).toBe(204)
      expect((await fetch(`${base}/me`, { headers: { cookie } })).status).toBe(401)
    } finally {
      await app.cleanup()
    }
  })
})

describe('examples/express-session-migration/app.ts', () => {
  it('keeps req.session working: sign in, count views, sign out', async () => {
    const { app, base } = await start('examples/express-session-migration/app.ts', {
      SESSION_SECRETS: SECRET,
    })
    try {
      expect(await (await fetch(`${base}/`)).json()).toEqual({ user: null, views: 1 })
      const login = await fetch(`${base}/login`, { method: 'POST' })
      expect(login.status).toBe(200)
      const cookie = cookieOf(login)
      expect(cookie).not.toBe('')
      const first = await fetch(`${base}/`, { headers: { cookie } })
      expect(await first.json()).toEqual({ user: 'ann', views: 1 })
      const second = await fetch(`${base}/`, { headers: { cookie } })
      expect(await second.json()).toEqual({ user: 'ann', views: 2 })
      const logout = await fetch(`${base}/logout`, { method: 'POST', headers: { cookie } })
      expect(logout.status).toBe(204)
      expect(await (await fetch(`${base}/`, { headers: { cookie } })).json()).toMatchObject({
        user: null,
      })
    } finally {
      await app.cleanup()
    }
  })
})
