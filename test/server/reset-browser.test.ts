/*
 * The reset page (/reset) in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core) against the real server (startServer) on a loopback port: the link from the
 * outbox mail, the form, a mismatch, the new password. Screenshots go to test-results/reset/.
 *
 * Skipped only when /usr/bin/chromium is missing and TESSERA_REQUIRE_SERVICES is not 1.
 */
import { mkdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CHROMIUM, chromiumPresent, launchChromium } from '../helpers/browser.js'
import { uniqueName } from '../helpers/services.js'
import {
  Client,
  resetTokenFrom,
  startTestServer,
  waitForMail,
  type TestServer,
} from './api-harness.js'

const present = chromiumPresent
const required = process.env.TESSERA_REQUIRE_SERVICES === '1'
const SHOTS = join(process.cwd(), 'test-results', 'reset')
const PASSWORD = 'correct horse battery staple'
const NEW_PASSWORD = 'a brand new passphrase for tessera'

/** A loopback port free right now (the public URL must name the port before the server starts). */
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

describe.runIf(present || required)('the /reset page in headless Chromium', () => {
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

  function watch(page: Page): string[] {
    const problems: string[] = []
    page.on('console', (message) => {
      const text = message.text()
      // The 400 of the mismatch page and the 404 of the browser's own /favicon.ico request are
      // logged as failed loads; they are answers, not problems.
      if (/^Failed to load resource: the server responded with a status of 40[04]/.test(text)) {
        return
      }
      if (message.type() === 'error' || /Content Security Policy|Refused to/i.test(text)) {
        problems.push(`${message.type()}: ${text}`)
      }
    })
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`))
    return problems
  }

  it('opens the mailed link, refuses a mismatch, sets the new password, with no CSP violation', async () => {
    const address = `${uniqueName('rb')}@example.com`
    const api = new Client(server, Client.sameOrigin(server))
    expect(
      (
        await api.request('POST', '/auth/signup', {
          json: { email: address, password: PASSWORD },
        })
      ).status,
    ).toBe(201)
    const before = server.mails().length
    await new Client(server).request('POST', '/auth/password-reset/request', {
      json: { email: address },
    })
    const mail = await waitForMail(server, before + 1)
    const token = resetTokenFrom(mail)
    const link = `${base}/reset?token=${token}`

    if (browser === undefined) throw new Error('no browser')
    const context = await browser.newContext({ viewport: { width: 420, height: 760 } })
    const page = await context.newPage()
    const problems = watch(page)
    const posts: Array<Promise<Record<string, string>>> = []
    page.on('request', (request) => {
      if (request.method() === 'POST') posts.push(request.allHeaders())
    })

    const opened = await page.goto(link)
    expect(opened?.status()).toBe(200)
    expect(await page.textContent('h1')).toBe('Choose a new password')
    await page.screenshot({ path: join(SHOTS, '01-form.png'), fullPage: true })

    // Two different passwords: the server says so and keeps the form.
    await page.fill('input[name=newPassword]', NEW_PASSWORD)
    await page.fill('input[name=confirmPassword]', `${NEW_PASSWORD}!`)
    await page.click('button[type=submit]')
    await page.waitForLoadState()
    expect(new URL(page.url()).pathname).toBe('/reset')
    expect(page.url()).not.toContain(token)
    expect(await page.textContent('[role=alert]')).toContain('not the same')
    await page.screenshot({ path: join(SHOTS, '02-mismatch.png'), fullPage: true })

    await page.fill('input[name=newPassword]', NEW_PASSWORD)
    await page.fill('input[name=confirmPassword]', NEW_PASSWORD)
    await page.click('button[type=submit]')
    await page.waitForLoadState()
    expect(await page.textContent('h1')).toBe('Password changed')
    await page.screenshot({ path: join(SHOTS, '03-done.png'), fullPage: true })

    // The browser sent a real Origin (Referrer-Policy strict-origin) and no token in a Referer.
    expect(posts).toHaveLength(2)
    for (const headers of await Promise.all(posts)) {
      expect(headers.origin).toBe(base)
      expect(headers.referer ?? '').not.toContain(token)
    }
    expect(problems).toEqual([])
    expect(
      (
        await new Client(server).request('POST', '/auth/login', {
          json: { email: address, password: NEW_PASSWORD },
        })
      ).status,
    ).toBe(200)
    expect((await api.request('GET', '/auth/session')).status).toBe(401)
    await context.close()
  })
})
