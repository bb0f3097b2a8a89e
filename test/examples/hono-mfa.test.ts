import { randomBytes } from 'node:crypto'
import { expect, it } from 'vitest'
import { totpCode } from '../../src/auth/totp.js'
import { spawnEntry } from '../server/process.js'

// examples/hono-mfa/server.ts as a user runs it: the library's second step with the Hono
// adapter, no tessera server.
const ORIGIN = 'http://app.example.test'
const PASSWORD = 'correct horse battery staple'

function cookieOf(response: Response): string {
  return (response.headers.getSetCookie()[0] ?? '').split(';')[0] ?? ''
}

it('examples/hono-mfa: enrol, then sign in with a password and a code; /vault needs aal 2', async () => {
  const app = await spawnEntry('examples/hono-mfa/server.ts', {
    env: { PUBLIC_URL: ORIGIN, TESSERA_SECRET: randomBytes(32).toString('base64url') },
    waitForListening: false,
  })
  try {
    const line = await app.waitForLine((entry) =>
      /listening on http:\/\/127\.0\.0\.1:\d+/i.test(String(entry.text ?? entry.msg)),
    )
    const base = /http:\/\/127\.0\.0\.1:\d+/.exec(String(line.text ?? line.msg))?.[0] ?? ''
    const json = { 'content-type': 'application/json', origin: ORIGIN }
    const post = (path: string, body: unknown, cookie = ''): Promise<Response> =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: cookie === '' ? json : { ...json, cookie },
        body: JSON.stringify(body),
      })
    const credentials = { email: 'ada@example.com', password: PASSWORD }
    const signup = await post('/signup', credentials)
    expect(signup.status).toBe(201)
    const cookie = cookieOf(signup)
    expect((await fetch(`${base}/vault`, { headers: { cookie } })).status).toBe(403)
    const started = (await (await post('/mfa/totp', {}, cookie)).json()) as { secret: string }
    const confirmed = await post(
      '/mfa/totp/confirm',
      {
        code: totpCode(started.secret, { now: Date.now() }),
      },
      cookie,
    )
    expect(confirmed.status).toBe(200)
    const { recoveryCodes } = (await confirmed.json()) as { recoveryCodes: string[] }

    const first = await post('/login', credentials)
    const challenge = (await first.json()) as { mfaRequired: boolean; challenge: string }
    expect(challenge.mfaRequired).toBe(true)
    expect(first.headers.getSetCookie()).toEqual([])
    // The TOTP step of the confirmation was used; a recovery code signs in at once.
    const verified = await post('/login/verify', {
      challenge: challenge.challenge,
      method: 'recovery_code',
      code: recoveryCodes[0],
    })
    expect(verified.status).toBe(200)
    const vault = await fetch(`${base}/vault`, { headers: { cookie: cookieOf(verified) } })
    expect(vault.status).toBe(200)
  } finally {
    await app.cleanup()
  }
}, 60_000)
