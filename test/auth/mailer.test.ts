import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  createConsoleMailer,
  createFileOutboxMailer,
  createSMTPMailer,
  parseSMTPUrl,
} from '../../src/auth/mailer.js'
import { startTestSMTPServer } from '../helpers/smtp.js'

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-mail-'))
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

describe('file outbox mailer', () => {
  it('writes one RFC 5322 .eml file per message, named in time order', async () => {
    const dir = join(tempDir(), 'outbox') // created on first send
    let clock = 1_700_000_000_000
    const mailer = createFileOutboxMailer({
      from: '"Tessera" <no-reply@example.com>',
      directory: dir,
      now: () => clock,
    })
    await mailer.send({ to: 'alice@example.com', subject: 'First', text: 'Hello Alice\n' })
    clock += 1
    await mailer.send({
      to: 'bob@example.com',
      subject: 'Zweite Nachricht – äöü',
      text: 'Grüße',
      html: '<p>Grüße</p>',
    })
    const files = readdirSync(dir)
    expect(files).toHaveLength(2)
    expect(files.every((f) => /^\d{13}-[0-9a-f]{12}\.eml$/.test(f))).toBe(true)
    const [first, second] = files.sort().map((f) => readFileSync(join(dir, f), 'utf8'))
    expect(first).toMatch(/^From: Tessera <no-reply@example\.com>\r$/m)
    expect(first).toMatch(/^To: alice@example\.com\r$/m)
    expect(first).toMatch(/^Subject: First\r$/m)
    expect(first).toMatch(/^Message-ID: <.+>\r$/m)
    expect(first).toMatch(/^Date: .+\r$/m)
    expect(first).toContain('\r\n\r\nHello Alice')
    // non-ASCII subject is encoded (RFC 2047), body is multipart with both parts
    expect(second).toMatch(/^Subject: =\?UTF-8\?/m)
    expect(second).toMatch(/^Content-Type: multipart\/alternative/m)
    expect(second).toContain('text/html')
    expect(statSync(join(dir, files[0] ?? '')).mode & 0o077).toBe(0)
  })

  it('keeps a header injection attempt out of the headers', async () => {
    const dir = tempDir()
    const mailer = createFileOutboxMailer({ from: 'no-reply@example.com', directory: dir })
    await mailer.send({
      to: 'alice@example.com',
      subject: 'Hi\r\nBcc: eve@evil.example',
      text: 'x',
    })
    const mail = readFileSync(join(dir, readdirSync(dir)[0] ?? ''), 'utf8')
    expect(mail).not.toMatch(/^Bcc:/im)
  })

  it('refuses a missing directory or a multi-line from', () => {
    expect(() => createFileOutboxMailer({ from: 'a@x.io', directory: '' })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    )
    expect(() => createFileOutboxMailer({ from: 'a@x.io\r\nBcc: b@x.io', directory: 'x' })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    )
  })
})

describe('console mailer', () => {
  it('prints the decoded text and each link whole on a line of its own', async () => {
    const out: Array<{ text: string; links: string[] }> = []
    const mailer = createConsoleMailer({
      from: 'no-reply@example.com',
      write: (text, mail) => out.push({ text, links: mail.links }),
    })
    // A long token with `=` and non-ASCII text: quoted-printable would have turned `=` into
    // `=3D` and broken the link across lines with a soft line break (`=` + newline).
    const link = `http://localhost:3000/reset?token=${'nTrT-_aZ09'.repeat(8)}&x=1`
    await mailer.send({
      to: 'alice@example.com',
      subject: 'Reset your password',
      text: `Grüße! To choose a new password, open this link:\n\n${link}.\n`,
    })
    expect(out).toHaveLength(1)
    const printed = out[0]?.text ?? ''
    expect(printed).toContain('To: alice@example.com\n')
    expect(printed).toContain('Subject: Reset your password\n')
    expect(printed).toContain('Grüße! To choose a new password')
    expect(printed).not.toContain('=3D')
    expect(printed.split('\n')).toContain(`link: ${link}`)
    expect(out[0]?.links).toEqual([link])
  })

  it('keeps a header injection attempt on one line', async () => {
    const out: string[] = []
    const mailer = createConsoleMailer({ from: 'no-reply@example.com', write: (t) => out.push(t) })
    await mailer.send({
      to: 'alice@example.com',
      subject: 'Hi\r\nBcc: eve@evil.example',
      text: 'x',
    })
    expect(out[0]).toContain('Subject: Hi Bcc: eve@evil.example\n')
    expect(out[0]).not.toMatch(/^Bcc:/m)
  })
})

describe('SMTP mailer, against a real SMTP server (smtp-server: STARTTLS, AUTH)', () => {
  it('smtp://user:pass@host:port upgrades with STARTTLS, authenticates and delivers', async () => {
    const smtp = await startTestSMTPServer()
    onTestFinished(() => smtp.close())
    const url = `smtp://${smtp.user}:${encodeURIComponent(smtp.pass)}@127.0.0.1:${smtp.port}`
    const mailer = createSMTPMailer({ from: '"Example" <no-reply@example.com>', url, ca: smtp.ca })
    onTestFinished(() => mailer.close?.())
    await mailer.send({
      to: 'alice@example.com',
      subject: 'Über SMTP',
      text: 'Hello via SMTP\n',
      html: '<p>Hello via SMTP</p>',
    })
    const [mail] = await smtp.waitFor(1)
    expect(mail?.user).toBe(smtp.user)
    expect(mail?.secureAtAuth).toBe(true)
    expect(mail?.to).toEqual(['alice@example.com'])
    expect(mail?.parsed.subject).toBe('Über SMTP')
    expect(mail?.parsed.text).toBe('Hello via SMTP\n')
    expect(mail?.parsed.html).toBe('<p>Hello via SMTP</p>')
    expect(mail?.parsed.messageId).toMatch(/^<[0-9a-f]{32}@example\.com>$/)
    expect(mail?.parsed.date).toBeInstanceOf(Date)
    expect(mail?.parsed.headers.get('auto-submitted')).toBe('auto-generated')
    expect(mail?.parsed.headers.get('x-auto-response-suppress')).toBe('All')
  })

  it('verifies the certificate: without the CA nothing is sent', async () => {
    const smtp = await startTestSMTPServer()
    onTestFinished(() => smtp.close())
    const url = `smtp://${smtp.user}:${encodeURIComponent(smtp.pass)}@127.0.0.1:${smtp.port}`
    const mailer = createSMTPMailer({ from: 'no-reply@example.com', url })
    onTestFinished(() => mailer.close?.())
    await expect(
      mailer.send({ to: 'alice@example.com', subject: 'x', text: 'x' }),
    ).rejects.toThrow()
    expect(smtp.received).toHaveLength(0)
  })

  it('refuses wrong credentials (the server says no; nothing is delivered)', async () => {
    const smtp = await startTestSMTPServer()
    onTestFinished(() => smtp.close())
    const url = `smtp://${smtp.user}:wrong@127.0.0.1:${smtp.port}`
    const mailer = createSMTPMailer({ from: 'no-reply@example.com', url, ca: smtp.ca })
    onTestFinished(() => mailer.close?.())
    await expect(
      mailer.send({ to: 'alice@example.com', subject: 'x', text: 'x' }),
    ).rejects.toThrow()
    expect(smtp.received).toHaveLength(0)
  })

  it('parses smtp:// and smtps:// URLs; credentials require TLS', () => {
    expect(parseSMTPUrl('smtp://u%40x:p%3Aw@mail.example.com')).toEqual({
      host: 'mail.example.com',
      port: 587,
      secure: false,
      requireTLS: true,
      auth: { user: 'u@x', pass: 'p:w' },
    })
    expect(parseSMTPUrl('smtps://mail.example.com')).toEqual({
      host: 'mail.example.com',
      port: 465,
      secure: true,
    })
    expect(() => parseSMTPUrl('http://mail.example.com')).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    )
  })

  it('needs a url or transport options', () => {
    expect(() => createSMTPMailer({ from: 'a@x.io' })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    )
  })
})
