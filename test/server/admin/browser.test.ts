/*
 * The admin panel in a real headless Chromium (Debian's `chromium` package, driven by
 * playwright-core) against the panel served by @hono/node-server on a random loopback port, once
 * on SQLite and once on PostgreSQL + Redis (one browser for both). Screenshots of each page go to
 * test-results/admin/<backend>/*.png (git-ignored) for a person to look at.
 *
 * Skipped only when /usr/bin/chromium (or, for the second run, PostgreSQL or Redis) is missing and
 * TESSERA_REQUIRE_SERVICES is not 1; under TESSERA_REQUIRE_SERVICES=1 a missing part fails.
 */
import { mkdirSync } from 'node:fs'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { serve } from '@hono/node-server'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CHROMIUM, chromiumPresent, launchChromium } from '../../helpers/browser.js'
import type { TesseraApp } from '../../../src/server/app.js'
import { PG_URL, REDIS_URL } from '../../helpers/services.js'
import { ADMIN_EMAIL, ADMIN_PASSWORD, buildAdmin, type AdminBackend } from './fixture.js'

const present = chromiumPresent
const required = process.env.TESSERA_REQUIRE_SERVICES === '1'
const SHOTS = join(process.cwd(), 'test-results', 'admin')

/** The backends of the flow, by screenshot folder; `null` when its servers are not configured. */
const BACKENDS: Array<[string, AdminBackend | null]> = [
  ['sqlite', { kind: 'sqlite' }],
  [
    'postgres-redis',
    PG_URL !== undefined && PG_URL !== '' && REDIS_URL !== undefined && REDIS_URL !== ''
      ? { kind: 'postgres+redis', pgUrl: PG_URL, redisUrl: REDIS_URL }
      : null,
  ],
]

describe.runIf(present || required)('admin panel in headless Chromium', () => {
  let browser: Browser | undefined
  let server: Server | undefined
  let port = 0
  let current: TesseraApp | undefined

  beforeAll(async () => {
    if (!present) {
      throw new Error(
        `${CHROMIUM} is missing and TESSERA_REQUIRE_SERVICES=1: install it with apt-get install -y chromium`,
      )
    }
    for (const [name] of BACKENDS) mkdirSync(join(SHOTS, name), { recursive: true })
    // The app is built per test once the port is known (its public URL names the port).
    server = await new Promise<Server>((resolve) => {
      const created = serve(
        {
          fetch: (request, env) => {
            if (current === undefined) return new Response('not ready', { status: 503 })
            return current.fetch(request, env)
          },
          port: 0,
          hostname: '127.0.0.1',
        },
        () => resolve(created),
      ) as Server
    })
    port = (server.address() as AddressInfo).port
    browser = await launchChromium()
  }, 30_000)

  afterAll(async () => {
    await browser?.close()
    await new Promise<void>((resolve) => {
      if (server === undefined) resolve()
      else {
        server.closeAllConnections()
        server.close(() => resolve())
      }
    })
  })

  function watch(page: Page): string[] {
    const problems: string[] = []
    page.on('console', (message) => {
      const text = message.text()
      if (message.type() === 'error' || /Content Security Policy|Refused to/i.test(text)) {
        problems.push(`${message.type()}: ${text}`)
      }
    })
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`))
    return problems
  }

  for (const [folder, backend] of BACKENDS) {
    it(`on ${folder}: signs in, creates a user, revokes a session and rotates a key, with no CSP violation`, async (context) => {
      if (backend === null) {
        if (required)
          throw new Error(
            'PostgreSQL and Redis are required (TESSERA_REQUIRE_SERVICES=1): set TESSERA_TEST_PG_URL and TESSERA_TEST_REDIS_URL',
          )
        context.skip('set TESSERA_TEST_PG_URL and TESSERA_TEST_REDIS_URL to run')
        return
      }
      const shot = async (page: Page, name: string): Promise<void> => {
        await page.screenshot({ path: join(SHOTS, folder, `${name}.png`), fullPage: true })
      }
      const base = `http://127.0.0.1:${port}`
      const f = await buildAdmin({ backend, publicUrl: base })
      current = f.app
      if (browser === undefined) throw new Error('no browser')
      const tab = await browser.newContext({ viewport: { width: 1100, height: 800 } })
      const page = await tab.newPage()
      const problems = watch(page)

      // Sign in, after one failed attempt (for the dashboard's chart and failure list).
      await page.goto(`${base}/admin`)
      expect(new URL(page.url()).pathname).toBe('/admin/login')
      await shot(page, '01-sign-in')
      await page.fill('input[name=email]', ADMIN_EMAIL)
      await page.fill('input[name=password]', 'not the right password')
      await page.click('button:has-text("Sign in")')
      expect(await page.textContent('.flash.error')).toContain('E-mail or password is incorrect.')
      // Chromium reports the 401 page itself on the console; nothing else may appear.
      expect(problems.splice(0)).toEqual([
        'error: Failed to load resource: the server responded with a status of 401 (Unauthorized)',
      ])
      await page.fill('input[name=email]', ADMIN_EMAIL)
      await page.fill('input[name=password]', ADMIN_PASSWORD)
      await page.click('button:has-text("Sign in")')
      await page.waitForURL(`${base}/admin`)
      expect(await page.textContent('.flash')).toContain(`Signed in as ${ADMIN_EMAIL}`)
      expect(await page.getAttribute('#logins-24h', 'role')).toBe('img')
      expect(await page.textContent('#logins-24h desc')).toContain('1 sign-in and 1 failure.')
      await shot(page, '02-dashboard')

      // Create a user (the form states the password rules).
      const long = 'a.very.long.mailbox.name.for.testing.wrapping@departments.example.com'
      await f.createUser(long)
      await page.click('nav >> text=Users')
      expect(await page.textContent('#password-rules')).toBe(
        '12 to 128 characters, not a common password. Hard to guess: four or more unrelated words work well.',
      )
      await page.fill('form.stack input[name=email]', 'new.person@example.com')
      await page.fill('form.stack input[name=password]', 'a long enough password')
      await page.click('button:has-text("Create user")')
      await page.waitForURL(/\/admin\/users\/[^/]+$/)
      expect(await page.textContent('.flash')).toContain('Created user new.person@example.com.')
      const created = await f.auth.accounts.findUserByEmail('new.person@example.com')
      expect(created).not.toBeNull()
      await shot(page, '03-user-created')
      await page.goto(`${base}/admin/users`)
      await shot(page, '04-users')

      // Revoke one of the user's sessions.
      const id = created?.id ?? ''
      const laptop = await f.appSessions.create(id, {
        meta: { ip: '203.0.113.7', userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0' },
      })
      await f.appSessions.create(id, {
        meta: { ip: '198.51.100.2', userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Safari' },
      })
      await page.goto(`${base}/admin/users/${id}/sessions`)
      await shot(page, '05-sessions')
      await page.click(
        `form[action="/admin/users/${id}/sessions/${laptop.session.id}/revoke"] button`,
      )
      await page.waitForURL(`${base}/admin/users/${id}/sessions`)
      expect(await page.textContent('.flash')).toContain(
        `Revoked session ${laptop.session.id.slice(0, 8)}`,
      )
      expect(await f.appSessions.validateToken(laptop.token)).toBeNull()
      expect(await f.appSessions.list(id)).toHaveLength(1)
      await shot(page, '06-session-revoked')

      // Rotate the signing keys.
      const next = f.keys.list().find((k) => k.status === 'next')?.kid
      await page.click('nav >> text=Signing keys')
      await shot(page, '07-keys')
      await page.click('button:has-text("Rotate keys")')
      await page.waitForURL(`${base}/admin/keys`)
      expect(await page.textContent('.flash')).toContain(`${next} signs now`)
      expect(f.keys.list().find((k) => k.status === 'current')?.kid).toBe(next)
      await shot(page, '08-keys-rotated')

      // The other pages, for the record.
      await page.click('nav >> text=Groups & permissions')
      await shot(page, '09-groups')
      await page.click('nav >> text=Audit log')
      expect(await page.textContent('table')).toContain('Actor')
      await shot(page, '10-audit')
      await page.click('nav >> text=Sessions')
      expect(await page.textContent('table')).toContain('Safari on iOS (iPhone)')
      await shot(page, '13-all-sessions')

      // A phone-sized screen.
      await page.setViewportSize({ width: 390, height: 844 })
      await page.goto(`${base}/admin/users/${id}/sessions`)
      await shot(page, '11-phone-sessions')
      await page.goto(`${base}/admin`)
      await shot(page, '12-phone-dashboard')
      // A long e-mail wraps on a phone, but only between its parts (before an @ or a dot):
      // every text piece between two break opportunities stays on one line.
      await page.goto(`${base}/admin/users`)
      const wrapping = await page.evaluate<{ lines: number; pieces: number[] }>(`(() => {
        const span = [...document.querySelectorAll('.email')].find((e) => e.textContent === ${JSON.stringify(long)})
        const pieces = [...span.childNodes].filter((n) => n.nodeType === 3).map((n) => {
          const range = document.createRange()
          range.selectNodeContents(n)
          return range.getClientRects().length
        })
        return { lines: new Set([...span.getClientRects()].map((r) => Math.round(r.top))).size, pieces }
      })()`)
      expect(wrapping.lines).toBeGreaterThan(1)
      expect(wrapping.pieces.every((n) => n === 1)).toBe(true)
      await shot(page, '14-phone-users-long-email')

      // Signing out says so, in the neutral style.
      await page.setViewportSize({ width: 1100, height: 800 })
      await page.click('button:has-text("Sign out")')
      await page.waitForURL(`${base}/admin/login?signed_out=1`)
      expect(await page.textContent('.flash.info')).toContain('You are signed out.')
      expect(await page.$('.flash.error')).toBeNull()
      await shot(page, '15-signed-out')

      expect(problems).toEqual([])
      // The stylesheet applied (so its nonce matched the CSP): the header is laid out as flex.
      const display = await page.$eval(
        'header',
        (el) =>
          (
            globalThis as unknown as { getComputedStyle(e: unknown): { display: string } }
          ).getComputedStyle(el).display,
      )
      expect(display).toBe('flex')
      await tab.close()
    }, 60_000)
  }
})
