import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startTestSMTPServer, type TestSMTPServer } from '../helpers/smtp.js'
import { Client, startTestServer, type TestServer } from './api-harness.js'

// Real delivery (issue 16): the server configured with TESSERA_MAILER=smtp://user:pass@host:port
// sends through a real SMTP server (STARTTLS with a certificate made for the test, AUTH), off the
// request path, with bounded retries; a mail it cannot send is logged and counted in /metrics.

const PASSWORD = 'correct horse battery staple'

async function serverWithSMTP(
  smtp: TestSMTPServer,
  options: { port?: number } = {},
): Promise<TestServer> {
  const cwd = mkdtempSync(join(tmpdir(), 'tessera-smtp-'))
  onTestFinished(() => rmSync(cwd, { recursive: true, force: true }))
  writeFileSync(join(cwd, 'smtp-ca.pem'), smtp.ca)
  const port = options.port ?? smtp.port
  const server = await startTestServer(
    { kind: 'sqlite' },
    {
      TESSERA_MAILER: `smtp://${smtp.user}:${encodeURIComponent(smtp.pass)}@127.0.0.1:${port}`,
      TESSERA_SMTP_CA_FILE: './smtp-ca.pem',
      TESSERA_PUBLIC_URL: 'http://auth.acme.test',
      TESSERA_PRODUCT_NAME: 'Acme',
      TESSERA_MAIL_FROM: 'Acme <no-reply@acme.test>',
    },
    { cwd, mailRetryDelaysMs: [0] },
  )
  onTestFinished(() => server.stop())
  return server
}

async function signup(server: TestServer, email: string): Promise<void> {
  const client = new Client(server, Client.sameOrigin(server))
  const response = await client.request('POST', '/auth/signup', {
    json: { email, password: PASSWORD },
  })
  expect(response.status).toBe(201)
}

async function metric(server: TestServer, line: RegExp): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  const found = text.split('\n').find((l) => line.test(l))
  return found === undefined ? 0 : Number(found.split(' ').pop())
}

describe('mail over SMTP from the server', () => {
  it('sends the reset mail through STARTTLS and AUTH: text and HTML from one template, brand from config', async () => {
    const smtp = await startTestSMTPServer()
    onTestFinished(() => smtp.close())
    const server = await serverWithSMTP(smtp)
    await signup(server, 'ada@example.com')
    const client = new Client(server, Client.sameOrigin(server))
    const asked = await client.request('POST', '/auth/password-reset/request', {
      json: { email: 'ADA@example.com' },
    })
    expect(asked.status).toBe(202)
    const mail = await smtp.waitForMatch((m) => m.parsed.subject === 'Reset your password')
    expect(mail?.user).toBe(smtp.user)
    expect(mail?.secureAtAuth).toBe(true)
    expect(mail?.to).toEqual(['ada@example.com'])
    expect(mail?.parsed.from?.value).toEqual([{ name: 'Acme', address: 'no-reply@acme.test' }])
    expect(mail?.parsed.headers.get('auto-submitted')).toBe('auto-generated')
    expect(mail?.parsed.messageId).toMatch(/@acme\.test>$/)
    expect(mail?.parsed.date).toBeInstanceOf(Date)
    const text = mail?.parsed.text ?? ''
    const html = typeof mail?.parsed.html === 'string' ? mail.parsed.html : ''
    const link = /http:\/\/auth\.acme\.test\/reset\?token=[A-Za-z0-9_-]{43}/.exec(text)?.[0]
    expect(link).toBeDefined()
    expect(html).toContain(`href="${link ?? ''}"`)
    expect(text).toContain('Acme · http://auth.acme.test')
    expect(html).toContain('Acme · http://auth.acme.test')
    // no tracking: no images or remote resources, and the only links are the mail's own
    expect(html).not.toMatch(/<img|src=|<link|<script|url\(/i)
    const hrefs = [...html.matchAll(/href="([^"]+)"/g)].map((m) => m[1])
    expect(hrefs).toEqual([link])
  })

  it('retries a temporary failure and delivers; the metrics count it sent', async () => {
    const smtp = await startTestSMTPServer()
    onTestFinished(() => smtp.close())
    const server = await serverWithSMTP(smtp)
    await signup(server, 'ada@example.com')
    smtp.failNext(2)
    const client = new Client(server, Client.sameOrigin(server))
    await client.request('POST', '/auth/password-reset/request', {
      json: { email: 'ada@example.com' },
    })
    await smtp.waitForMatch((m) => m.parsed.subject === 'Reset your password')
    expect(
      await metric(server, /^tessera_mails_total\{kind="passwordReset",outcome="sent"\}/),
    ).toBe(1)
    expect(
      await metric(server, /^tessera_mails_total\{kind="passwordReset",outcome="failed"\}/),
    ).toBe(0)
  })

  it('an SMTP server that is down: the request still answers 202; the lost mail is logged and counted', async () => {
    const smtp = await startTestSMTPServer()
    const port = smtp.port
    await smtp.close()
    const server = await serverWithSMTP(smtp, { port })
    await signup(server, 'ada@example.com')
    const client = new Client(server, Client.sameOrigin(server))
    const asked = await client.request('POST', '/auth/password-reset/request', {
      json: { email: 'ada@example.com' },
    })
    expect(asked.status).toBe(202)
    let failed = 0
    for (let round = 0; round < 200 && failed === 0; round++) {
      failed = await metric(server, /^tessera_mails_total\{kind="passwordReset",outcome="failed"\}/)
      if (failed === 0) await new Promise((resolve) => setTimeout(resolve, 25))
    }
    expect(failed).toBe(1)
    const logged = server.log.lines().filter((line) => line.msg === 'mail could not be sent')
    expect(logged.some((line) => line.kind === 'passwordReset' && line.attempts === 3)).toBe(true)
    expect(server.log.text()).not.toMatch(/reset\?token=/)
  })
})
