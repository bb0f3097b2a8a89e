/*
 * Sign-in with an identity provider end to end in a real headless Chromium (Debian's, through
 * playwright-core): the browser opens /auth/oidc/test on the real server (startServer), signs in
 * on the provider's own login page (panva's oidc-provider in this process, on 127.0.0.1), and
 * comes back signed in; then links a second provider from the signed-in page and unlinks it.
 * Screenshots go to test-results/oidc/.
 *
 * Skipped only when /usr/bin/chromium is missing and TESSERA_REQUIRE_SERVICES is not 1.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CHROMIUM, chromiumPresent, launchChromium } from '../helpers/browser.js'
import { startTestProvider, type TestProvider } from '../helpers/oidc-provider.js'
import { freePort } from '../helpers/private-servers.js'
import { startTestServer, type TestServer } from './api-harness.js'

const present = chromiumPresent
const required = process.env.TESSERA_REQUIRE_SERVICES === '1'
const SHOTS = join(process.cwd(), 'test-results', 'oidc')

describe.runIf(present || required)(
  'sign-in with an identity provider in headless Chromium',
  () => {
    let browser: Browser | undefined
    let server: TestServer
    let op: TestProvider
    let second: TestProvider
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
      op = await startTestProvider({
        redirectUris: [`${base}/auth/oidc/test/callback`],
        cookiePrefix: 'b1',
      })
      second = await startTestProvider({
        redirectUris: [`${base}/auth/oidc/second/callback`],
        cookiePrefix: 'b2',
      })
      server = await startTestServer(
        { kind: 'sqlite' },
        {
          PORT: String(port),
          TESSERA_PUBLIC_URL: base,
          TESSERA_OIDC_PROVIDERS: 'test,second',
          TESSERA_OIDC_TEST_ISSUER: op.issuer,
          TESSERA_OIDC_TEST_CLIENT_ID: op.clientId,
          TESSERA_OIDC_TEST_CLIENT_SECRET: op.clientSecret,
          TESSERA_OIDC_SECOND_ISSUER: second.issuer,
          TESSERA_OIDC_SECOND_CLIENT_ID: second.clientId,
          TESSERA_OIDC_SECOND_CLIENT_SECRET: second.clientSecret,
        },
      )
      browser = await launchChromium()
    })

    afterAll(async () => {
      await browser?.close()
      await server?.stop()
      await op?.close()
      await second?.close()
    })

    /** Fills the provider's own login page (devInteractions) and submits it. */
    async function logInAtProvider(
      page: Page,
      issuer: string,
      login: string,
      shot: string,
    ): Promise<void> {
      await page.waitForURL((url) => url.href.startsWith(`${issuer}/interaction/`))
      await page.fill('input[name="login"]', login)
      await page.fill('input[name="password"]', 'any password')
      await page.screenshot({ path: join(SHOTS, shot) })
      await page.click('button[type="submit"]')
    }

    /**
     * The application's own page on the server's origin (the API's responses forbid every fetch
     * with `default-src 'none'`): served by the browser's request interception, so the `fetch`
     * calls below are the browser's own, same-origin, with its cookies and Fetch Metadata.
     */
    async function openAppPage(page: Page): Promise<void> {
      await page.route(`${base}/app-page`, (route) =>
        route.fulfill({
          status: 200,
          contentType: 'text/html',
          body: '<!doctype html><title>app</title><p>app</p>',
        }),
      )
      await page.goto(`${base}/app-page`)
    }

    async function json(
      page: Page,
      path: string,
      init: { method?: string; body?: string } = {},
    ): Promise<{ status: number; body: unknown }> {
      return page.evaluate(
        async ({ path, init }) => {
          const response = await fetch(path, {
            method: init.method ?? 'GET',
            headers: init.body === undefined ? {} : { 'content-type': 'application/json' },
            ...(init.body === undefined ? {} : { body: init.body }),
          })
          const text = await response.text()
          return {
            status: response.status,
            body: text === '' ? null : (JSON.parse(text) as unknown),
          }
        },
        { path, init },
      )
    }

    it('signs in at the provider’s page and comes back signed in; links and unlinks a second provider', async () => {
      const context = await (browser as Browser).newContext()
      const page = await context.newPage()
      try {
        await page.goto(`${base}/auth/oidc/test?returnTo=${encodeURIComponent('/auth/session')}`)
        await logInAtProvider(page, op.issuer, 'grace', 'provider-login.png')
        await page.waitForURL(`${base}/auth/session`)
        const signedIn = JSON.parse((await page.textContent('body')) ?? '{}') as {
          user: { id: string; email: string }
          session: { amr: string[] }
        }
        expect(signedIn.user.email).toBe('grace@example.test')
        expect(signedIn.session.amr).toEqual(['fed'])
        const cookies = await context.cookies(base)
        expect(cookies.map((cookie) => cookie.name)).toContain('tessera_session')
        expect(cookies.map((cookie) => cookie.name)).not.toContain('tessera_oidc')
        await page.screenshot({ path: join(SHOTS, 'signed-in.png') })

        // The signed-in page asks to link a second provider (a same-origin POST), then goes there.
        await openAppPage(page)
        const asked = await json(page, '/auth/oidc/second/link', {
          method: 'POST',
          body: '{"returnTo":"/auth/identities"}',
        })
        expect(asked.status).toBe(200)
        await page.goto((asked.body as { location: string }).location)
        await logInAtProvider(page, second.issuer, 'grace-at-second', 'second-provider-login.png')
        await page.waitForURL(`${base}/auth/identities`)
        const listed = JSON.parse((await page.textContent('body')) ?? '{}') as {
          identities: Array<{ id: string; provider: string; subject: string }>
        }
        expect(listed.identities.map((identity) => [identity.provider, identity.subject])).toEqual([
          ['test', 'grace'],
          ['second', 'grace-at-second'],
        ])
        // Still the same session and user: a link signs nobody in anew.
        await openAppPage(page)
        const after = (await json(page, '/auth/session')).body as { user: { id: string } }
        expect(after.user.id).toBe(signedIn.user.id)

        const [first, linked] = listed.identities
        expect(
          (await json(page, `/auth/identities/${linked?.id ?? ''}`, { method: 'DELETE' })).status,
        ).toBe(204)
        const last = await json(page, `/auth/identities/${first?.id ?? ''}`, { method: 'DELETE' })
        expect(last.status).toBe(409)
        expect(
          ((await json(page, '/auth/identities')).body as { identities: unknown[] }).identities,
        ).toHaveLength(1)
      } finally {
        await context.close()
      }
    })
  },
)
