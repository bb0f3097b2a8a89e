/*
 * Second factors in the admin panel, in a real headless Chromium against the real server
 * (startServer, SQLite) with TESSERA_ADMIN_MFA=required and an injected clock: an administrator
 * signs in, is forced to enrol, "scans" nothing (the test computes the code from the key the
 * page shows), confirms, sees the recovery codes once, signs out, and signs in again with a
 * code. Screenshots of each page go to test-results/admin-mfa/ (git-ignored).
 */
import { mkdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDatabase } from '../../../src/auth/db/database.js'
import { totpCode } from '../../../src/auth/totp.js'
import { CHROMIUM, chromiumPresent, launchChromium } from '../../helpers/browser.js'
import {
  Client,
  startTestServer,
  testClock,
  type TestClock,
  type TestServer,
} from '../api-harness.js'

const present = chromiumPresent
const required = process.env.TESSERA_REQUIRE_SERVICES === '1'
const SHOTS = join(process.cwd(), 'test-results', 'admin-mfa')
const EMAIL = 'mfa.admin@example.com'
const PASSWORD = 'an administrator passphrase'

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      probe.close(() => resolve(port))
    })
  })
}

describe.runIf(present || required)('admin second factor in headless Chromium', () => {
  let browser: Browser | undefined
  let server: TestServer
  let clock: TestClock
  let base = ''

  beforeAll(async () => {
    if (!present) {
      throw new Error(
        `${CHROMIUM} is missing and TESSERA_REQUIRE_SERVICES=1: install it with apt-get install -y chromium`,
      )
    }
    mkdirSync(SHOTS, { recursive: true })
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    clock = testClock()
    server = await startTestServer(
      { kind: 'sqlite' },
      { PORT: String(port), TESSERA_PUBLIC_URL: base, TESSERA_ADMIN_MFA: 'required' },
      { now: clock.now },
    )
    // An administrator: signed up through the API, then promoted in the database.
    const api = new Client(server, Client.sameOrigin(server))
    const signup = await api.request('POST', '/auth/signup', {
      json: { email: EMAIL, password: PASSWORD },
    })
    expect(signup.status).toBe(201)
    const db = await createDatabase(`sqlite:${join(server.cwd, 'data', 'tessera.db')}`)
    await db.updateTable('users').set({ is_admin: 1 }).where('email', '=', EMAIL).execute()
    await db.destroy()
    browser = await launchChromium()
  }, 30_000)

  afterAll(async () => {
    await browser?.close()
    await server?.stop()
  })

  function watch(page: Page): string[] {
    const problems: string[] = []
    page.on('console', (message) => {
      const text = message.text()
      if (/^Failed to load resource: the server responded with a status of 40[14]/.test(text)) {
        return
      }
      if (message.type() === 'error' || /Content Security Policy|Refused to/i.test(text)) {
        problems.push(`${message.type()}: ${text}`)
      }
    })
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`))
    return problems
  }

  it('forces enrolment, shows the QR code and recovery codes once, then asks for a code at sign-in', async () => {
    if (browser === undefined) throw new Error('no browser')
    const context = await browser.newContext({ viewport: { width: 1000, height: 800 } })
    const page = await context.newPage()
    const problems = watch(page)
    const shot = (name: string): Promise<Buffer> =>
      page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })

    await page.goto(`${base}/admin`)
    expect(new URL(page.url()).pathname).toBe('/admin/login')
    await page.fill('input[name=email]', EMAIL)
    await page.fill('input[name=password]', PASSWORD)
    await shot('01-sign-in')
    await page.click('button:has-text("Sign in")')
    await page.waitForURL(`${base}/admin/mfa`)
    expect(await page.textContent('main')).toContain('Administrators must have a second factor')
    await shot('02-forced-enrolment')
    // No other page until a factor is set.
    await page.goto(`${base}/admin/users`)
    expect(new URL(page.url()).pathname).toBe('/admin/mfa')

    await page.click('button:has-text("Set up an authenticator")')
    await page.waitForSelector('#totp-secret')
    const secret = ((await page.textContent('#totp-secret')) ?? '').trim()
    expect(secret).toMatch(/^[A-Z2-7]{32}$/)
    expect(await page.locator('.qr svg').count()).toBe(1)
    await shot('03-enrol-qr')
    await page.fill('input[name=code]', totpCode(secret, { now: clock.now() }))
    await page.click('button:has-text("Confirm")')
    await page.waitForSelector('#recovery-codes')
    expect(await page.locator('#recovery-codes li').count()).toBe(10)
    await shot('04-recovery-codes')

    await page.click('text=Continue to the dashboard')
    await page.waitForURL(`${base}/admin`)
    await page.click('nav >> text=Users')
    await page.waitForURL(`${base}/admin/users`)
    expect(await page.textContent('table.list')).toContain('MFA')
    await shot('05-users-with-mfa')

    await page.click('button:has-text("Sign out")')
    await page.waitForURL(/\/admin\/login/)
    await page.fill('input[name=email]', EMAIL)
    await page.fill('input[name=password]', PASSWORD)
    await page.click('button:has-text("Sign in")')
    await page.waitForSelector('input[name=challenge]', { state: 'attached' })
    expect(await page.textContent('h1')).toBe('Second factor')
    await shot('06-second-step')
    // A wrong code keeps the form; the right one (a new step: the last was used) signs in.
    await page.fill('form:has(input[value=totp]) input[name=code]', '000000')
    await page.click('button:has-text("Verify")')
    await page.waitForSelector('[role=alert]')
    expect(await page.textContent('[role=alert]')).toContain('not correct')
    clock.advance(30)
    await page.fill(
      'form:has(input[value=totp]) input[name=code]',
      totpCode(secret, { now: clock.now() }),
    )
    await page.click('button:has-text("Verify")')
    await page.waitForURL(`${base}/admin`)
    expect(await page.textContent('.flash')).toContain('Signed in with a second factor')
    await shot('07-dashboard')
    expect(problems).toEqual([])
    await context.close()
  }, 60_000)
})
