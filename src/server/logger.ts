import { styleText } from 'node:util'
import { pino, type DestinationStream, type Logger } from 'pino'
import { formatPrintedMail, type PrintedMail } from '../auth/mailer.js'
import type { LogFormat, LogLevel } from './config.js'

/**
 * Paths pino censors in anything logged, in case an object with credentials is ever passed to
 * the logger. The request log itself only writes method, route, status and duration.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.password',
  '*.currentPassword',
  '*.newPassword',
  '*.token',
  '*.access_token',
  '*.refresh_token',
  '*.secret',
  'password',
  'token',
  'secret',
]

/** The command that creates the first administrator, as the server's hints name it. */
export const CREATE_ADMIN_COMMAND = 'npx tessera-auth user create --admin'

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /**
   * `json`: one JSON object per line (pino's format, for log collectors); `pretty`: one
   * readable line per entry, with the setup link and console mails set apart; `auto`: pretty
   * when the destination is a terminal (stdout, `isTTY`), JSON otherwise. @default 'auto'
   */
  format?: LogFormat
}

/**
 * Creates the server's logger (pino): JSON lines, or readable lines on a terminal.
 *
 * @param destination where lines go; `undefined` is stdout. Tests pass a stream to read them.
 * @example
 * ```ts
 * const logger = createLogger('info') // pretty in a terminal, JSON when piped or in a container
 * ```
 */
export function createLogger(
  level: LogLevel,
  destination?: DestinationStream,
  options: LoggerOptions = {},
): Logger {
  const settings = {
    level,
    base: { service: 'tessera' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  }
  const format = options.format ?? 'auto'
  const target: DestinationStream = destination ?? process.stdout
  const pretty =
    format === 'pretty' || (format === 'auto' && (target as { isTTY?: boolean }).isTTY === true)
  if (pretty) return pino(settings, prettyStream(target, { color: wantsColor(target) }))
  return destination === undefined ? pino(settings) : pino(settings, destination)
}

/**
 * Logs the first-admin setup link: one warning with the link in `setupUrl` and the command in
 * `hint`. In the pretty format it is printed as a block of its own.
 */
export function logSetupLink(logger: Logger, setupUrl: string): void {
  logger.warn(
    { setupUrl, hint: CREATE_ADMIN_COMMAND },
    `no admin account yet: open ${setupUrl} to create one (one-time link), or run \`${CREATE_ADMIN_COMMAND}\``,
  )
}

/**
 * Logs a message of the console mailer: in JSON, one line whose `mail` field has the text and
 * each link whole (`mail.links`); in the pretty format, the message as text with each link on
 * a line of its own.
 */
export function logMail(logger: Logger, mail: PrintedMail): void {
  logger.warn(
    {
      mail: {
        from: mail.from,
        to: mail.to,
        subject: mail.subject,
        text: mail.text,
        links: mail.links,
      },
    },
    `mail to ${mail.to} (console mailer, development only)`,
  )
}

const LEVELS: Record<number, { name: string; style: Parameters<typeof styleText>[0] }> = {
  10: { name: 'TRACE', style: 'gray' },
  20: { name: 'DEBUG', style: 'gray' },
  30: { name: 'INFO', style: 'green' },
  40: { name: 'WARN', style: 'yellow' },
  50: { name: 'ERROR', style: 'red' },
  60: { name: 'FATAL', style: 'red' },
}

/** Fields every entry has, left out of the `key=value` tail. */
const QUIET = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname'])

function wantsColor(target: unknown): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false
  if (process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '0') return true
  return (target as { isTTY?: boolean }).isTTY === true
}

/**
 * A pino destination that turns each JSON line into readable text: `HH:MM:SS LEVEL message
 * key=value…`; the setup link and console mails as blocks of their own.
 */
export function prettyStream(
  target: DestinationStream,
  options: { color: boolean },
): DestinationStream {
  const paint = (style: Parameters<typeof styleText>[0], text: string): string =>
    options.color ? styleText(style, text) : text
  return {
    write(line: string): void {
      let entry: Record<string, unknown>
      try {
        entry = JSON.parse(line) as Record<string, unknown>
      } catch {
        target.write(line)
        return
      }
      target.write(`${formatEntry(entry, paint)}\n`)
    },
  }
}

function formatEntry(
  entry: Record<string, unknown>,
  paint: (style: Parameters<typeof styleText>[0], text: string) => string,
): string {
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 19) : ''
  const level = LEVELS[Number(entry.level)] ?? { name: String(entry.level), style: 'white' }
  const head = `${paint('gray', time)} ${paint(level.style, level.name.padEnd(5))}`
  const msg = typeof entry.msg === 'string' ? entry.msg : ''

  if (typeof entry.setupUrl === 'string') {
    const hint = typeof entry.hint === 'string' ? entry.hint : CREATE_ADMIN_COMMAND
    const bar = paint('yellow', '┃')
    return [
      `${head} ${paint('bold', 'no admin account yet: create the first one')}`,
      `      ${bar} open    ${paint('bold', entry.setupUrl)}`,
      `      ${bar}         (one-time link; it expires after 30 minutes unused)`,
      `      ${bar} or run  ${paint('bold', hint)}`,
    ].join('\n')
  }

  const mail = entry.mail
  if (typeof mail === 'object' && mail !== null && typeof (mail as PrintedMail).text === 'string') {
    const printed = mail as Partial<PrintedMail>
    return `${head} ${msg}\n${formatPrintedMail({
      from: typeof printed.from === 'string' ? printed.from : '',
      to: String(printed.to ?? ''),
      subject: String(printed.subject ?? ''),
      text: String(printed.text),
      links: Array.isArray(printed.links) ? printed.links.map(String) : [],
    }).trimEnd()}`
  }

  const fields: string[] = []
  let stack: string | undefined
  for (const [key, value] of Object.entries(entry)) {
    if (QUIET.has(key)) continue
    if (key === 'err' && typeof value === 'object' && value !== null) {
      const err = value as { message?: unknown; stack?: unknown }
      fields.push(`err=${JSON.stringify(err.message ?? '')}`)
      if (typeof err.stack === 'string') stack = err.stack
      continue
    }
    const text =
      typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)
    fields.push(`${paint('gray', `${key}=`)}${text}`)
  }
  const tail = fields.length === 0 ? '' : ` ${fields.join(' ')}`
  const lines = [`${head} ${msg}${tail}`]
  if (stack !== undefined) lines.push(paint('gray', stack.replace(/^/gm, '      ')))
  return lines.join('\n')
}
