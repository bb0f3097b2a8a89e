/*
 * The verification page (/verify-email) in a real headless Chromium (Debian's `chromium`, driven
 * by playwright-core) against the real server: the link of the signup mail shows a button and
 * verifies nothing (a mail scanner's GET), the button's POST verifies. Screenshots go to
 * test-results/verify-email/.
 *
 * Skipped only when /usr/bin/chromium is missing and TESSERA_REQUIRE_SERVICES is not 1.
 */
import { mkdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CHROMIUM, chromiumPresent, launchChromium } from '../helpers/browser.js'
import { uniqueName } from '../helpers/services.js'
import { Client, startTestServer, type TestServer } from './api-harness.js'

const present = chromiumPresent
const required = process.env.TESSERA_REQUIRE_SERVICES === '1'
const SHOTS = join(process.cwd(), 'test-results', 'verify-email')
const PASSWORD = 'correct horse battery staple'

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

describe.runIf(present || required)('the /verify-email page in headless Chromium', () => {
  let browser: Browser | undefined
  let server: TestServer
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
    server = await startTestServer(
      { kind: 'sqlite' },
      { PORT: String(port), TESSERA_PUBLIC_URL: base },
    )
    browser = await launchChromium()
  }, 30_000)

  afterAll(async () => {
    await browser?.close()
    await server?.stop()
  })

  it('GET shows a button and verifies nothing; the POST of the button verifies', async () => {
    const address = `${uniqueName('vb')}@example.com`
    const api = new Client(server, Client.sameOrigin(server))
    const signup = await api.request('POST', '/auth/signup', {
      json: { email: address, password: PASSWORD },
    })
    expect(signup.status).toBe(201)
    let mail: string | undefined
    for (let round = 0; round < 200 && mail === undefined; round++) {
      mail = server.mails({ all: true }).find((m) => /^Subject: Confirm your e-mail/m.test(m))
      if (mail === undefined) await new Promise((resolve) => setTimeout(resolve, 25))
    }
    const unfolded = (mail ?? '').replace(/=\r?\n/g, '').replace(/=3D/g, '=')
    const token = /\/verify-email\?token=([A-Za-z0-9_-]{43})/.exec(unfolded)?.[1] ?? ''
    expect(token).not.toBe('')
    const verified = async (): Promise<boolean> => {
      const response = await api.request('GET', '/auth/session')
      return ((await response.json()) as { user: { emailVerified: boolean } }).user.emailVerified
    }

    if (browser === undefined) throw new Error('no browser')
    const context = await browser.newContext({ viewport: { width: 420, height: 640 } })
    const page = await context.newPage()
    const problems: string[] = []
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text())
    })
    page.on('pageerror', (error) => problems.push(error.message))

    const opened = await page.goto(`${base}/verify-email?token=${token}`)
    expect(opened?.status()).toBe(200)
    expect(await page.textContent('h1')).toBe('Confirm your e-mail address')
    expect(await page.textContent('button[type=submit]')).toBe('Confirm the address')
    await page.screenshot({ path: join(SHOTS, '01-button.png'), fullPage: true })
    // SECURITY: opening the link (what a mail scanner does) verified nothing
    expect(await verified()).toBe(false)
    await page.reload()
    expect(await verified()).toBe(false)

    await page.click('button[type=submit]')
    await page.waitForLoadState()
    expect(await page.textContent('h1')).toBe('Address confirmed')
    expect(page.url()).not.toContain(token)
    await page.screenshot({ path: join(SHOTS, '02-confirmed.png'), fullPage: true })
    expect(await verified()).toBe(true)
    expect(problems).toEqual([])
    await context.close()
  })
})
