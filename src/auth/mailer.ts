import { randomBytes } from 'node:crypto'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import nodemailer from 'nodemailer'
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js'
import { TesseraError } from '../core/errors.js'

/** One outgoing message. The sender is configured on the transport. */
export interface MailMessage {
  to: string
  subject: string
  text: string
  html?: string
}

/** Sends mail. Implementations: SMTP, console, file outbox; or your own. */
export interface Mailer {
  /** Resolves once the transport accepted the message. */
  send(message: MailMessage): Promise<void>
  /** Closes connections the mailer opened. */
  close?(): Promise<void>
}

/** Options shared by every transport. */
export interface MailerBaseOptions {
  /** The `From` address, e.g. `"Example" <no-reply@example.com>`. */
  from: string
}

function requireFrom(from: string): void {
  if (typeof from !== 'string' || from.trim() === '' || /[\r\n]/.test(from)) {
    throw new TesseraError('config_invalid', 'mailer option from must be a single-line address')
  }
}

// One composer for the console and file transports: a real RFC 5322 message from nodemailer,
// so what the outbox holds is byte-for-byte what SMTP would have carried.
const composer = nodemailer.createTransport({
  streamTransport: true,
  buffer: true,
  newline: 'windows',
})

async function compose(from: string, message: MailMessage): Promise<Buffer> {
  const info = await composer.sendMail({
    from,
    to: message.to,
    subject: message.subject,
    text: message.text,
    ...(message.html === undefined ? {} : { html: message.html }),
  })
  const raw = info.message
  if (!Buffer.isBuffer(raw))
    throw new TesseraError('invalid_argument', 'mail composer returned a stream')
  return raw
}

/** Options of {@link createSMTPMailer}. */
export interface SMTPMailerOptions extends MailerBaseOptions {
  /** `smtp://user:pass@host:587` or `smtps://…`; or pass `transport`. */
  url?: string
  /** nodemailer SMTP transport options (host, port, secure, auth, …). */
  transport?: SMTPTransport.Options
}

/**
 * Sends through an SMTP server with nodemailer (pooled connections are nodemailer's choice).
 *
 * @throws TesseraError `config_invalid` without `url` or `transport`, or with a bad `from`.
 * @example
 * ```ts
 * const mailer = createSMTPMailer({ from: 'no-reply@example.com', url: process.env.SMTP_URL })
 * ```
 */
export function createSMTPMailer(options: SMTPMailerOptions): Mailer {
  requireFrom(options.from)
  const config = options.transport ?? options.url
  if (config === undefined || config === '') {
    throw new TesseraError('config_invalid', 'createSMTPMailer needs url or transport')
  }
  const transport = nodemailer.createTransport(config)
  return {
    async send(message: MailMessage): Promise<void> {
      await transport.sendMail({
        from: options.from,
        to: message.to,
        subject: message.subject,
        text: message.text,
        ...(message.html === undefined ? {} : { html: message.html }),
      })
    },
    close(): Promise<void> {
      transport.close()
      return Promise.resolve()
    },
  }
}

/** @deprecated renamed {@link SMTPMailerOptions} (STYLE.md: acronyms upper case). */
export type SmtpMailerOptions = SMTPMailerOptions

/** @deprecated renamed {@link createSMTPMailer} (STYLE.md: acronyms upper case). */
export const createSmtpMailer = createSMTPMailer

/** Options of {@link createConsoleMailer}. */
export interface ConsoleMailerOptions extends MailerBaseOptions {
  /** Where the message text goes. @default process.stdout.write */
  write?: (text: string) => void
}

/**
 * Prints each message (headers and body) instead of sending it. For development only: a reset
 * link in a message is a credential, and logs are not a safe place for it.
 */
export function createConsoleMailer(options: ConsoleMailerOptions): Mailer {
  requireFrom(options.from)
  const write =
    options.write ??
    ((text: string): void => {
      process.stdout.write(text)
    })
  return {
    async send(message: MailMessage): Promise<void> {
      const raw = await compose(options.from, message)
      write(`----- mail -----\n${raw.toString('utf8').replace(/\r\n/g, '\n')}\n----- end -----\n`)
    },
  }
}

/** Options of {@link createFileOutboxMailer}. */
export interface FileOutboxMailerOptions extends MailerBaseOptions {
  /** Directory that receives one `.eml` file per message; created when missing. */
  directory: string
  /** @default Date.now */
  now?: () => number
}

/**
 * Writes each message as an `.eml` file (RFC 5322, CRLF) into a directory: open it with any
 * mail client, or read it in tests. Files are written under a temporary name and renamed, so
 * a reader never sees half a message. Names sort by time: `<epoch ms>-<random>.eml`.
 */
export function createFileOutboxMailer(options: FileOutboxMailerOptions): Mailer {
  requireFrom(options.from)
  if (typeof options.directory !== 'string' || options.directory === '') {
    throw new TesseraError('config_invalid', 'createFileOutboxMailer needs a directory')
  }
  const now = options.now ?? Date.now
  let ready: Promise<unknown> | undefined
  return {
    async send(message: MailMessage): Promise<void> {
      ready ??= mkdir(options.directory, { recursive: true })
      await ready
      const raw = await compose(options.from, message)
      const name = `${String(now()).padStart(13, '0')}-${randomBytes(6).toString('hex')}`
      const temp = join(options.directory, `.${name}.tmp`)
      await writeFile(temp, raw, { mode: 0o600 })
      await rename(temp, join(options.directory, `${name}.eml`))
    },
  }
}
