import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  createConsoleMailer,
  createFileOutboxMailer,
  createSMTPMailer,
} from '../../src/auth/mailer.js'

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

/** A minimal SMTP server (no TLS, no auth) that records what it receives. */
async function startSmtpListener(): Promise<{ port: number; messages: string[]; server: Server }> {
  const messages: string[] = []
  const server = createServer((socket) => {
    let buffer = ''
    let inData = false
    socket.write('220 localhost test SMTP\r\n')
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8')
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n')
          if (end === -1) return
          messages.push(buffer.slice(0, end))
          buffer = buffer.slice(end + 5)
          inData = false
          socket.write('250 queued\r\n')
          continue
        }
        const eol = buffer.indexOf('\r\n')
        if (eol === -1) return
        const line = buffer.slice(0, eol)
        buffer = buffer.slice(eol + 2)
        const verb = line.slice(0, 4).toUpperCase()
        if (verb === 'EHLO') socket.write('250-localhost\r\n250 8BITMIME\r\n')
        else if (verb === 'DATA') {
          inData = true
          socket.write('354 go ahead\r\n')
        } else if (verb === 'QUIT') socket.end('221 bye\r\n')
        else socket.write('250 ok\r\n')
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { port: (server.address() as AddressInfo).port, messages, server }
}

describe('SMTP mailer', () => {
  it('delivers through a real SMTP conversation (local listener)', async () => {
    const { port, messages } = await startSmtpListener()
    const mailer = createSMTPMailer({
      from: 'no-reply@example.com',
      transport: { host: '127.0.0.1', port, secure: false, ignoreTLS: true },
    })
    onTestFinished(() => mailer.close?.())
    await mailer.send({ to: 'alice@example.com', subject: 'Over SMTP', text: 'Hello via SMTP' })
    expect(messages).toHaveLength(1)
    expect(messages[0]).toMatch(/^To: alice@example\.com\r$/m)
    expect(messages[0]).toMatch(/^Subject: Over SMTP\r$/m)
    expect(messages[0]).toContain('Hello via SMTP')
  })

  it('needs a url or transport options', () => {
    expect(() => createSMTPMailer({ from: 'a@x.io' })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    )
  })
})
