import { randomBytes } from 'node:crypto'
import { simpleParser } from 'mailparser'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { describeWithPostgresAndRedis, uniqueName } from '../helpers/services.js'
import {
  apiError,
  Client,
  postgresRedisBackend,
  startTestServer,
  testClock,
  type Backend,
  type TestClock,
  type TestServer,
} from './api-harness.js'

// Issue 16 over HTTP, on both backends: verification, change of address, sign-in codes and
// their limits; the pages of the mailed links (GET shows a button, the POST acts).

const PASSWORD = 'correct horse battery staple'

interface Mail {
  to: string
  subject: string
  text: string
  html: string
}

let ipCounter = 0
/** A client of its own IP (X-Forwarded-For from the trusted proxy 127.0.0.1). */
function client(server: TestServer, headers: Record<string, string> = {}): Client {
  ipCounter += 1
  const ip = `198.51.${Math.floor(ipCounter / 250) % 250}.${(ipCounter % 250) + 1}`
  return new Client(server, { ...Client.sameOrigin(server), 'x-forwarded-for': ip, ...headers })
}

function address(): string {
  return `${uniqueName('mail')}@example.com`
}

async function mails(server: TestServer): Promise<Mail[]> {
  return Promise.all(
    server.mails({ all: true }).map(async (raw) => {
      const parsed = await simpleParser(raw)
      return {
        to: parsed.to === undefined ? '' : Array.isArray(parsed.to) ? '' : parsed.to.text,
        subject: parsed.subject ?? '',
        text: parsed.text ?? '',
        html: typeof parsed.html === 'string' ? parsed.html : '',
      }
    }),
  )
}

/** The mails to `to` whose subject starts with `subject`, once there are `count`. */
async function mailsTo(
  server: TestServer,
  to: string,
  subject: string,
  count = 1,
): Promise<Mail[]> {
  for (let round = 0; round < 200; round++) {
    const found = (await mails(server)).filter((m) => m.to === to && m.subject.startsWith(subject))
    if (found.length >= count) return found
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`no mail "${subject}" to ${to}`)
}

/** Lets deferred mail work finish, then counts the mails to `to` with `subject`. */
async function countMails(server: TestServer, to: string, subject: string): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 150))
  return (await mails(server)).filter((m) => m.to === to && m.subject.startsWith(subject)).length
}

function tokenIn(mail: Mail, path: string): string {
  const match = new RegExp(`/${path}\\?token=([A-Za-z0-9_-]{43})`).exec(mail.text)
  if (match?.[1] === undefined) throw new Error(`no /${path} link in the mail`)
  return match[1]
}

function codeIn(mail: Mail): string {
  const match = /^(\d{8})$/m.exec(mail.text)
  if (match?.[1] === undefined) throw new Error('no code in the mail')
  return match[1]
}

async function signup(server: TestServer, email = address()): Promise<Client> {
  const c = client(server)
  const response = await c.request('POST', '/auth/signup', { json: { email, password: PASSWORD } })
  expect(response.status).toBe(201)
  return c
}

async function session(c: Client): Promise<{
  user: { email: string; emailVerified: boolean }
  session: { amr: string[]; aal: number }
}> {
  const response = await c.request('GET', '/auth/session')
  expect(response.status).toBe(200)
  return (await response.json()) as never
}

function emailSuite(
  name: string,
  backend: () => Promise<{ backend: Backend; done: () => Promise<void> }>,
): void {
  describe(name, () => {
    let server: TestServer
    let required: TestServer
    let clock: TestClock
    let cleanup: () => Promise<void> = () => Promise.resolve()

    beforeAll(async () => {
      const made = await backend()
      cleanup = made.done
      clock = testClock()
      const env = {
        TESSERA_TRUSTED_PROXIES: '127.0.0.1',
        TESSERA_SECRET: randomBytes(32).toString('base64url'),
      }
      server = await startTestServer(made.backend, env, {
        now: clock.now,
        mailRetryDelaysMs: [0],
      })
      required = await startTestServer(
        made.backend,
        { ...env, TESSERA_EMAIL_VERIFICATION: 'required' },
        { now: clock.now, mailRetryDelaysMs: [0] },
      )
    })

    afterAll(async () => {
      await server?.stop()
      await required?.stop()
      await cleanup()
    })

    it('signup mails a verification link; its page shows a button and verifies only on POST', async () => {
      const email = address()
      const c = await signup(server, email)
      expect((await session(c)).user.emailVerified).toBe(false)
      const [mail] = await mailsTo(server, email, 'Confirm your e-mail address')
      const token = tokenIn(mail as Mail, 'verify-email')
      expect(mail?.html).toContain(`/verify-email?token=${token}`)

      // SECURITY: a mail scanner's GET verifies nothing
      const page = await fetch(`${server.url}/verify-email?token=${token}`)
      expect(page.status).toBe(200)
      expect(page.headers.get('cache-control')).toBe('no-store')
      const body = await page.text()
      expect(body).toContain('<button type="submit">Confirm the address</button>')
      expect(body).toContain(`value="${token}"`)
      expect((await session(c)).user.emailVerified).toBe(false)

      const posted = await client(server).request('POST', '/verify-email', {
        body: new URLSearchParams({ token }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      })
      expect(posted.status).toBe(200)
      expect(await posted.text()).toContain('Address confirmed')
      expect((await session(c)).user.emailVerified).toBe(true)
      // single use
      const again = await client(server).request('POST', '/auth/email/verify', { json: { token } })
      expect(again.status).toBe(400)
      expect((await apiError(again)).code).toBe('invalid_token')
    })

    it('POST /auth/email/verify takes the same token; a resend mails a new link; links expire after 24 hours', async () => {
      const email = address()
      const c = await signup(server, email)
      await mailsTo(server, email, 'Confirm your e-mail address')
      expect((await c.request('POST', '/auth/email/verification')).status).toBe(202)
      const [first, second] = await mailsTo(server, email, 'Confirm your e-mail address', 2)
      clock.advance(24 * 3600 + 1)
      const expired = await client(server).request('POST', '/auth/email/verify', {
        json: { token: tokenIn(first as Mail, 'verify-email') },
      })
      expect((await apiError(expired)).code).toBe('invalid_token')
      const resent = await c.request('POST', '/auth/email/verification')
      expect(resent.status).toBe(202)
      const third = (await mailsTo(server, email, 'Confirm your e-mail address', 3))[2] as Mail
      expect(tokenIn(third, 'verify-email')).not.toBe(tokenIn(second as Mail, 'verify-email'))
      const verified = await client(server).request('POST', '/auth/email/verify', {
        json: { token: tokenIn(third, 'verify-email') },
      })
      expect(verified.status).toBe(200)
      const json = (await verified.json()) as { user: { email: string; emailVerified: boolean } }
      expect(json.user).toMatchObject({ email, emailVerified: true })
    })

    it('TESSERA_EMAIL_VERIFICATION=required: no session at signup, 403 email_unverified at login, a resend without a session', async () => {
      const email = address()
      const c = client(required)
      const made = await c.request('POST', '/auth/signup', { json: { email, password: PASSWORD } })
      expect(made.status).toBe(201)
      expect(made.headers.getSetCookie()).toEqual([])
      expect(await made.json()).toMatchObject({ verificationRequired: true })
      const login = await c.request('POST', '/auth/login', { json: { email, password: PASSWORD } })
      expect(login.status).toBe(403)
      expect((await apiError(login)).code).toBe('email_unverified')
      // the wrong password still gets the usual answer: nothing is said before it is right
      const wrong = await c.request('POST', '/auth/login', {
        json: { email, password: 'not the password at all' },
      })
      expect((await apiError(wrong)).code).toBe('invalid_credentials')
      const resend = await client(required).request('POST', '/auth/email/verification', {
        json: { email: email.toUpperCase() },
      })
      expect(resend.status).toBe(202)
      const unknown = await client(required).request('POST', '/auth/email/verification', {
        json: { email: address() },
      })
      expect(unknown.status).toBe(202)
      const sent = await mailsTo(required, email, 'Confirm your e-mail address', 2)
      const token = tokenIn(sent[1] as Mail, 'verify-email')
      expect((await c.request('POST', '/auth/email/verify', { json: { token } })).status).toBe(200)
      const after = await c.request('POST', '/auth/login', { json: { email, password: PASSWORD } })
      expect(after.status).toBe(200)
    })

    it('change of address: password and a recent sign-in, confirmation to the new address, notice to the old, tokens voided', async () => {
      const oldEmail = address()
      const newEmail = address()
      const c = await signup(server, oldEmail)
      const [verification] = await mailsTo(server, oldEmail, 'Confirm your e-mail address')
      await client(server).request('POST', '/auth/password-reset/request', {
        json: { email: oldEmail },
      })
      const [reset] = await mailsTo(server, oldEmail, 'Reset your password')

      const wrong = await c.request('POST', '/auth/email', {
        json: { newEmail, password: 'not the password at all' },
      })
      expect(wrong.status).toBe(401)
      expect((await apiError(wrong)).code).toBe('invalid_credentials')
      const asked = await c.request('POST', '/auth/email', {
        json: { newEmail: newEmail.toUpperCase(), password: PASSWORD },
      })
      expect(asked.status).toBe(202)
      const [confirm] = await mailsTo(server, newEmail, 'Confirm your new e-mail address')
      const [notice] = await mailsTo(
        server,
        oldEmail,
        'Your tessera e-mail address is being changed',
      )
      expect(notice?.text).toContain(newEmail)
      const reportToken = tokenIn(notice as Mail, 'report-email-change')
      expect(reportToken).toMatch(/^[A-Za-z0-9_-]{43}$/)
      // nothing changed yet
      expect((await session(c)).user.email).toBe(oldEmail)

      const token = tokenIn(confirm as Mail, 'confirm-email')
      const page = await fetch(`${server.url}/confirm-email?token=${token}`)
      expect(await page.text()).toContain('Use this address')
      expect((await session(c)).user.email).toBe(oldEmail)
      const confirmed = await client(server).request('POST', '/auth/email/confirm', {
        json: { token },
      })
      expect(confirmed.status).toBe(200)
      expect((await session(c)).user).toMatchObject({ email: newEmail, emailVerified: true })

      // SECURITY: the change voided the reset and verification links mailed to the old address
      const resetUse = await client(server).request('POST', '/auth/password-reset/confirm', {
        json: {
          token: /\/reset\?token=([A-Za-z0-9_-]{43})/.exec(reset?.text ?? '')?.[1] ?? '',
          newPassword: 'a new long passphrase here',
        },
      })
      expect((await apiError(resetUse)).code).toBe('invalid_token')
      const verifyUse = await client(server).request('POST', '/auth/email/verify', {
        json: { token: tokenIn(verification as Mail, 'verify-email') },
      })
      expect((await apiError(verifyUse)).code).toBe('invalid_token')
      // the old address now has no account; the new one signs in
      const login = await client(server).request('POST', '/auth/login', {
        json: { email: newEmail, password: PASSWORD },
      })
      expect(login.status).toBe(200)

      // the report link of the old address undoes the change and signs everyone out
      const reported = await client(server).request('POST', '/report-email-change', {
        body: new URLSearchParams({ token: reportToken }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      })
      expect(reported.status).toBe(200)
      expect((await c.request('GET', '/auth/session')).status).toBe(401)
      const back = await client(server).request('POST', '/auth/login', {
        json: { email: oldEmail, password: PASSWORD },
      })
      expect(back.status).toBe(200)
    })

    it('change of address needs a sign-in within TESSERA_REAUTH_MAX_AGE', async () => {
      const c = await signup(server)
      clock.advance(11 * 60)
      const stale = await c.request('POST', '/auth/email', {
        json: { newEmail: address(), password: PASSWORD },
      })
      expect(stale.status).toBe(403)
      expect((await apiError(stale)).code).toBe('reauthentication_required')
      const anonymous = await client(server).request('POST', '/auth/email', {
        json: { newEmail: address(), password: PASSWORD },
      })
      expect(anonymous.status).toBe(401)
    })

    it('sign-in codes: the same 202 for unknown addresses, 8 digits to the stored address, amr otp, five wrong tries kill a code', async () => {
      const email = address()
      await signup(server, email)
      const unknown = await client(server).request('POST', '/auth/email-code/request', {
        json: { email: address() },
      })
      expect(unknown.status).toBe(202)
      // a Unicode/case variant is the same address; only the stored address is mailed
      const variant = `\uFF4D${email.slice(1)}`.toUpperCase() // fullwidth m, upper case
      const asked = await client(server).request('POST', '/auth/email-code/request', {
        json: { email: ` ${variant} ` },
      })
      expect(asked.status).toBe(202)
      const [mail] = await mailsTo(server, email, 'Your tessera sign-in code')
      const code = codeIn(mail as Mail)
      expect(mail?.text).toContain(`/email-code?email=${encodeURIComponent(email)}&code=${code}`)

      const guesser = client(server)
      const wrongCode = code === '00000000' ? '00000001' : '00000000'
      for (let attempt = 0; attempt < 5; attempt++) {
        const wrong = await guesser.request('POST', '/auth/email-code/verify', {
          json: { email, code: wrongCode },
        })
        expect(wrong.status).toBe(401)
        expect((await apiError(wrong)).code).toBe('invalid_credentials')
      }
      const dead = await client(server).request('POST', '/auth/email-code/verify', {
        json: { email, code },
      })
      expect((await apiError(dead)).code).toBe('invalid_credentials')

      await client(server).request('POST', '/auth/email-code/request', { json: { email } })
      const fresh = (await mailsTo(server, email, 'Your tessera sign-in code', 2))[1] as Mail
      const c = client(server)
      const signedIn = await c.request('POST', '/auth/email-code/verify', {
        json: { email: email.toUpperCase(), code: codeIn(fresh) },
      })
      expect(signedIn.status).toBe(200)
      const body = (await signedIn.json()) as { session: { amr: string[]; aal: number } }
      expect(body.session).toMatchObject({ amr: ['otp'], aal: 1 })
      expect((await session(c)).user.emailVerified).toBe(true)
      // used once
      const replay = await client(server).request('POST', '/auth/email-code/verify', {
        json: { email, code: codeIn(fresh) },
      })
      expect(replay.status).toBe(401)
    })

    it('a sign-in code expires after 10 minutes; its page signs in only on POST', async () => {
      const email = address()
      await signup(server, email)
      await client(server).request('POST', '/auth/email-code/request', { json: { email } })
      const [first] = await mailsTo(server, email, 'Your tessera sign-in code')
      clock.advance(10 * 60 + 1)
      const late = await client(server).request('POST', '/auth/email-code/verify', {
        json: { email, code: codeIn(first as Mail) },
      })
      expect(late.status).toBe(401)

      await client(server).request('POST', '/auth/email-code/request', { json: { email } })
      const second = (await mailsTo(server, email, 'Your tessera sign-in code', 2))[1] as Mail
      const code = codeIn(second)
      const page = await fetch(
        `${server.url}/email-code?email=${encodeURIComponent(email)}&code=${code}`,
      )
      expect(page.status).toBe(200)
      expect(page.headers.getSetCookie()).toEqual([])
      expect(await page.text()).toContain('<button type="submit">Sign in</button>')
      const browser = client(server)
      const posted = await browser.request('POST', '/email-code', {
        body: new URLSearchParams({ email, code }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      })
      expect(posted.status).toBe(200)
      expect((await session(browser)).session.amr).toEqual(['otp'])
    })

    it('limits: code requests stay 202 but stop mailing; code and verification guesses get 429 with Retry-After', async () => {
      const email = address()
      await signup(server, email)
      // variants of one address are one address for the limit
      const variants = [email, email.toUpperCase(), ` ${email}`, `\uFF4D${email.slice(1)}`, email]
      for (const variant of [...variants, email, email]) {
        const answer = await client(server).request('POST', '/auth/email-code/request', {
          json: { email: variant },
        })
        expect(answer.status).toBe(202)
      }
      expect(await countMails(server, email, 'Your tessera sign-in code')).toBe(5)

      const guesser = client(server)
      let limited: Response | undefined
      for (let attempt = 0; attempt < 40 && limited === undefined; attempt++) {
        const answer = await guesser.request('POST', '/auth/email-code/verify', {
          json: { email: address(), code: '12345678' },
        })
        if (answer.status === 429) limited = answer
      }
      expect(limited?.status).toBe(429)
      expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThan(0)

      const tokenGuesser = client(server)
      let refused: Response | undefined
      for (let attempt = 0; attempt < 30 && refused === undefined; attempt++) {
        const answer = await tokenGuesser.request('POST', '/auth/email/verify', {
          json: { token: randomBytes(32).toString('base64url') },
        })
        if (answer.status === 429) refused = answer
        else expect(answer.status).toBe(400)
      }
      expect(refused?.status).toBe(429)
      expect((await apiError(refused as Response)).code).toBe('rate_limited')
    })

    // Two SQLite servers of this harness have files of their own; PostgreSQL + Redis is shared.
    it.runIf(!name.includes('SQLite'))(
      'the limit is shared by two servers over the same stores',
      async () => {
        const email = address()
        await signup(server, email)
        for (let attempt = 0; attempt < 3; attempt++) {
          await client(server).request('POST', '/auth/email/verification', { json: { email } })
        }
        await client(required).request('POST', '/auth/email/verification', { json: { email } })
        // signup's mail, then three resends (the limit); the fourth, on the other server, is silent
        expect(await countMails(server, email, 'Confirm your e-mail address')).toBe(4)
        expect(await countMails(required, email, 'Confirm your e-mail address')).toBe(0)
      },
    )
  })
}

emailSuite('e-mail flows on SQLite', () =>
  Promise.resolve({ backend: { kind: 'sqlite' }, done: () => Promise.resolve() }),
)

describeWithPostgresAndRedis('e-mail flows on PostgreSQL + Redis', (urls) => {
  emailSuite('(postgres + redis)', () => postgresRedisBackend(urls, 'eml'))
})
