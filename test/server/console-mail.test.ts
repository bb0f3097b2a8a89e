import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client, startTestServer, type TestServer } from './api-harness.js'

// The development mailer end to end (issue 19): the server with TESSERA_MAILER=console logs the
// reset mail with its link whole, and that very link, copied from the log, resets the password.

let server: TestServer

beforeAll(async () => {
  server = await startTestServer({ kind: 'sqlite' }, { TESSERA_MAILER: 'console' })
})
afterAll(async () => {
  await server.stop()
})

describe('the console mailer in the server', () => {
  it('logs the reset mail decoded, with a link that works when copied', async () => {
    const client = new Client(server, Client.sameOrigin(server))
    const password = 'correct horse battery staple'
    const signup = await client.request('POST', '/auth/signup', {
      json: { email: 'ada@example.com', password },
    })
    expect(signup.status).toBe(201)
    const asked = await client.request('POST', '/auth/password-reset/request', {
      json: { email: 'ada@example.com' },
    })
    expect(asked.status).toBe(202)

    let entry: Record<string, unknown> | undefined
    for (let attempt = 0; attempt < 100 && entry === undefined; attempt++) {
      // signup's verification mail is logged too; this test reads the reset mail
      entry = server.log
        .lines()
        .find(
          (line) =>
            typeof line.mail === 'object' &&
            (line.mail as { subject?: string }).subject === 'Reset your password',
        )
      if (entry === undefined) await new Promise((resolve) => setImmediate(resolve))
    }
    const mail = entry?.mail as { to: string; subject: string; text: string; links: string[] }
    expect(mail.to).toBe('ada@example.com')
    expect(mail.subject).toBe('Reset your password')
    // decoded text, not quoted-printable: no `=3D`, no soft line break inside the link
    expect(mail.text).not.toContain('=3D')
    // the reset link, then the public URL of the footer
    expect(mail.links).toHaveLength(2)
    const link = new URL(mail.links[0] ?? '')
    expect(mail.links[1]).toBe(server.origin)
    expect(mail.text).toContain(`\n${link.href}\n`)
    const token = link.searchParams.get('token') ?? ''
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)

    const reset = await client.request('POST', '/auth/password-reset/confirm', {
      json: { token, newPassword: 'a new long passphrase here' },
    })
    expect(reset.status).toBe(204)
  })
})
