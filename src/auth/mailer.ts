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

/**
 * The fields of a message as nodemailer takes them, with what every mail of tessera carries:
 * `Date` (nodemailer's), a `Message-ID` in the sender's domain, and `Auto-Submitted:
 * auto-generated` (RFC 3834) with `X-Auto-Response-Suppress: All`, so vacation responders and
 * mailing-list software do not answer a machine.
 */
function mailFields(from: string, message: MailMessage): Record<string, unknown> {
  const domain = /@([^\s<>@]+)>?\s*$/.exec(from)?.[1] ?? 'localhost'
  return {
    from,
    to: message.to,
    subject: message.subject,
    text: message.text,
    ...(message.html === undefined ? {} : { html: message.html }),
    messageId: `<${randomBytes(16).toString('hex')}@${domain}>`,
    headers: { 'Auto-Submitted': 'auto-generated', 'X-Auto-Response-Suppress': 'All' },
  }
}

async function compose(from: string, message: MailMessage): Promise<Buffer> {
  const info = await composer.sendMail(mailFields(from, message))
  const raw = info.message
  if (!Buffer.isBuffer(raw))
    throw new TesseraError('invalid_argument', 'mail composer returned a stream')
  return raw
}

/**
 * nodemailer's SMTP transport options (`host`, `port`, `secure`, `auth`, `tls`, `pool`, …; see
 * nodemailer's documentation), passed to `nodemailer.createTransport` as they are. Declared
 * here rather than imported, so tessera's types need no `@types/nodemailer` in your app.
 */
export interface SMTPTransportOptions {
  host?: string
  port?: number
  /** true for TLS from the start (port 465); false upgrades with STARTTLS when offered. */
  secure?: boolean
  auth?: { user: string; pass: string } | Record<string, unknown>
  /** Any other nodemailer SMTP option. */
  [option: string]: unknown
}

/** Options of {@link createSMTPMailer}. */
export interface SMTPMailerOptions extends MailerBaseOptions {
  /**
   * `smtp://user:pass@host:587` (STARTTLS, required when there are credentials) or
   * `smtps://user:pass@host:465` (TLS from the start); or pass `transport`.
   */
  url?: string
  /** nodemailer SMTP transport options (host, port, secure, auth, …), used as they are. */
  transport?: SMTPTransportOptions
  /**
   * PEM certificate(s) of the CA that signed the SMTP server's certificate, for a relay with a
   * private CA. The server's certificate is always verified. @default the system's CAs
   */
  ca?: string | undefined
}

/**
 * nodemailer transport options from an `smtp://` or `smtps://` URL.
 * @throws TesseraError `config_invalid` for another scheme or a URL without a host
 */
export function parseSMTPUrl(url: string): SMTPTransportOptions {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch (cause) {
    throw new TesseraError('config_invalid', 'SMTP url must be smtp://user:pass@host:port', {
      cause,
    })
  }
  if ((parsed.protocol !== 'smtp:' && parsed.protocol !== 'smtps:') || parsed.hostname === '') {
    throw new TesseraError(
      'config_invalid',
      'SMTP url must be smtp://user:pass@host:587 or smtps://user:pass@host:465',
    )
  }
  const secure = parsed.protocol === 'smtps:'
  const hasAuth = parsed.username !== ''
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port === '' ? (secure ? 465 : 587) : Number(parsed.port),
    secure,
    // SECURITY: credentials never cross the network in clear: with a user name, a plain smtp://
    // connection must be upgraded with STARTTLS or nodemailer gives up (ASVS 9.2.1).
    ...(hasAuth
      ? {
          requireTLS: !secure,
          auth: {
            user: decodeURIComponent(parsed.username),
            pass: decodeURIComponent(parsed.password),
          },
        }
      : {}),
  }
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
  let config: SMTPTransportOptions
  if (options.transport !== undefined) config = options.transport
  else if (options.url !== undefined && options.url !== '') config = parseSMTPUrl(options.url)
  else throw new TesseraError('config_invalid', 'createSMTPMailer needs url or transport')
  if (options.ca !== undefined) {
    const tls = (config.tls ?? {}) as Record<string, unknown>
    config = { ...config, tls: { ...tls, ca: options.ca } }
  }
  // The structural options above are nodemailer's own, passed through unchanged.
  const transport = nodemailer.createTransport(config as SMTPTransport.Options)
  return {
    async send(message: MailMessage): Promise<void> {
      await transport.sendMail(mailFields(options.from, message))
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

/** A message as the console mailer prints it: plain text, nothing encoded. */
export interface PrintedMail {
  from: string
  to: string
  subject: string
  /** The text part as written (never quoted-printable or base64). */
  text: string
  /** Every `http(s)://` link of the text, in order, each whole. */
  links: string[]
}

/** Options of {@link createConsoleMailer}. */
export interface ConsoleMailerOptions extends MailerBaseOptions {
  /**
   * Where each message goes: `text` is the readable form (headers, the text part, then each
   * link on a line of its own), `mail` the same message in parts, for a logger.
   * @default writes `text` to stdout
   */
  write?: (text: string, mail: PrintedMail) => void
}

/** The `http(s)://` links of a text, in order, each whole (without trailing punctuation). */
export function linksIn(text: string): string[] {
  const found = text.match(/\bhttps?:\/\/[^\s<>"'`]+/g) ?? []
  return found.map((link) => link.replace(/[.,;:!?)\]]+$/, ''))
}

/**
 * The readable form of a message the console mailer prints: headers, the text part as written,
 * and each link again on a line of its own, so a link can be copied whole from a terminal.
 */
export function formatPrintedMail(mail: PrintedMail): string {
  const lines = [
    '----- mail (console mailer, development only) -----',
    `From: ${mail.from}`,
    `To: ${mail.to}`,
    `Subject: ${mail.subject}`,
    '',
    mail.text.replace(/\r\n/g, '\n').trimEnd(),
  ]
  if (mail.links.length > 0) lines.push('', ...mail.links.map((link) => `link: ${link}`))
  lines.push('----- end of mail -----', '')
  return lines.join('\n')
}

/**
 * Prints each message instead of sending it: the text part as written (not the encoded MIME
 * form, in which quoted-printable breaks a long link across lines and turns `=` into `=3D`),
 * then each link on a line of its own. For development only: a reset link in a message is a
 * credential, and logs are not a safe place for it.
 *
 * @throws TesseraError `config_invalid` with a bad `from`.
 * @example
 * ```ts
 * const mailer = createConsoleMailer({ from: 'no-reply@localhost' })
 * ```
 */
export function createConsoleMailer(options: ConsoleMailerOptions): Mailer {
  requireFrom(options.from)
  const write =
    options.write ??
    ((text: string): void => {
      process.stdout.write(text)
    })
  return {
    send(message: MailMessage): Promise<void> {
      // SECURITY: the same header rule as a real transport: one line each, so a subject or
      // address cannot add lines that look like other headers in the printout.
      const mail: PrintedMail = {
        from: options.from,
        to: singleLine(message.to),
        subject: singleLine(message.subject),
        text: message.text,
        links: linksIn(message.text),
      }
      write(formatPrintedMail(mail), mail)
      return Promise.resolve()
    },
  }
}

function singleLine(value: string): string {
  return value.replace(/[\r\n]+/g, ' ')
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
