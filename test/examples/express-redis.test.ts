import { createClient } from 'redis'
import { expect, it } from 'vitest'
import { spawnEntry } from '../server/process.js'
import { describeWithService, uniqueName } from '../helpers/services.js'

describeWithService('redis', 'examples/express-redis', (url) => {
  it('starts on a random port, signs in, serves /me, refuses a cross-site post, signs out', async () => {
    const prefix = `${uniqueName('tessera_example')}:`
    const app = await spawnEntry('examples/express-redis/server.ts', {
      env: {
        REDIS_URL: url,
        REDIS_PREFIX: prefix,
        PUBLIC_URL: 'http://app.example.test',
        TESSERA_SECRET: Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString(
          'base64url',
        ),
      },
      waitForListening: false,
    })
    try {
      const line = await app.waitForLine((entry) => /listening on/.test(String(entry.text)))
      const base = /http:\/\/127\.0\.0\.1:\d+/.exec(String(line.text))?.[0] ?? ''
      expect(base).not.toBe('')
      const json = { 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' }

      const wrong = await fetch(`${base}/login`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ username: 'demo', password: 'nope' }),
      })
      expect(wrong.status).toBe(401)
      const login = await fetch(`${base}/login`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ username: 'demo', password: 'correct horse battery staple' }),
      })
      expect(login.status).toBe(200)
      const cookie = (login.headers.getSetCookie()[0] ?? '').split(';')[0] ?? ''
      expect(cookie).toMatch(/^tessera_session=/)

      const me = await fetch(`${base}/me`, { headers: { cookie } })
      expect(await me.json()).toMatchObject({ user: { id: 'user-1', via: 'session' } })
      expect((await fetch(`${base}/notes`, { headers: { cookie } })).status).toBe(200)

      const cross = await fetch(`${base}/logout`, {
        method: 'POST',
        headers: { cookie, origin: 'https://evil.example' },
      })
      expect(cross.status).toBe(403)
      const logout = await fetch(`${base}/logout`, {
        method: 'POST',
        headers: { cookie, origin: 'http://app.example.test' },
      })
      expect(logout.status).toBe(204)
      expect((await fetch(`${base}/me`, { headers: { cookie } })).status).toBe(401)
    } finally {
      await app.cleanup()
      const client = createClient({ url })
      await client.connect()
      for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
        if (keys.length > 0) await client.del(keys)
      }
      client.destroy()
    }
  }, 60_000)
})
