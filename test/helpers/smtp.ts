import type { AddressInfo } from 'node:net'
import { simpleParser, type ParsedMail } from 'mailparser'
import { generate } from 'selfsigned'
import { SMTPServer } from 'smtp-server'

/** One message the test SMTP server accepted, parsed, with what the session proved. */
export interface ReceivedMail {
  parsed: ParsedMail
  raw: string
  /** The envelope recipients. */
  to: string[]
  /** The user that authenticated (AUTH) for this message. */
  user: string | undefined
  /** True when the connection had been upgraded with STARTTLS (or was TLS) at AUTH time. */
  secureAtAuth: boolean
}

/** A real SMTP server in the test process: AUTH required, only after STARTTLS. */
export interface TestSMTPServer {
  port: number
  /** The PEM of its self-signed certificate: the CA a client must trust. */
  ca: string
  user: string
  pass: string
  received: ReceivedMail[]
  /** The next `count` messages are refused with a temporary error (451). */
  failNext(count: number): void
  /** Resolves when `count` messages were received in all. */
  waitFor(count: number): Promise<ReceivedMail[]>
  /** Resolves with the first received message that `match` accepts, once there is one. */
  waitForMatch(match: (mail: ReceivedMail) => boolean): Promise<ReceivedMail>
  close(): Promise<void>
}

/**
 * Starts `smtp-server` on 127.0.0.1 and a free port, with a certificate made for this run
 * (self-signed, `localhost` and `127.0.0.1`), STARTTLS, and AUTH PLAIN/LOGIN that accepts only
 * `user`/`pass` and only over TLS (smtp-server's `allowInsecureAuth: false`).
 */
export async function startTestSMTPServer(
  credentials: { user: string; pass: string } = { user: 'mailer', pass: 's3cret pass' },
): Promise<TestSMTPServer> {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  })
  const received: ReceivedMail[] = []
  const waiters: Array<() => void> = []
  let failing = 0
  const secureAuth = new Map<string, boolean>()
  const server = new SMTPServer({
    secure: false,
    key: pems.private,
    cert: pems.cert,
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: false,
    logger: false,
    onAuth(auth, session, callback) {
      if (auth.username === credentials.user && auth.password === credentials.pass) {
        secureAuth.set(session.id, session.secure)
        callback(null, { user: auth.username })
        return
      }
      callback(new Error('Invalid username or password'))
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('end', () => {
        if (failing > 0) {
          failing -= 1
          const error = Object.assign(new Error('try again later'), { responseCode: 451 })
          callback(error)
          return
        }
        const raw = Buffer.concat(chunks).toString('utf8')
        void simpleParser(raw).then((parsed) => {
          received.push({
            parsed,
            raw,
            to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
            user: typeof session.user === 'string' ? session.user : undefined,
            secureAtAuth: secureAuth.get(session.id) ?? false,
          })
          for (const wake of waiters.splice(0)) wake()
          callback()
        }, callback)
      })
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.server.address() as AddressInfo).port
  return {
    port,
    ca: pems.cert,
    user: credentials.user,
    pass: credentials.pass,
    received,
    failNext(count) {
      failing = count
    },
    async waitForMatch(match) {
      for (let round = 0; ; round++) {
        const found = received.find(match)
        if (found !== undefined) return found
        if (round > 400) throw new Error('the expected mail did not arrive')
        await new Promise<void>((resolve) => {
          waiters.push(resolve)
          setTimeout(resolve, 25)
        })
      }
    },
    async waitFor(count) {
      for (let round = 0; received.length < count; round++) {
        if (round > 400) throw new Error(`expected ${count} mails, got ${received.length}`)
        await new Promise<void>((resolve) => {
          waiters.push(resolve)
          setTimeout(resolve, 25)
        })
      }
      return received
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
