/*
 * Passkeys in a real headless Chromium (Debian's, through playwright-core) with a CDP virtual
 * authenticator (ctap2, internal transport, resident keys, user verification), against the real
 * server on a loopback port serving the example page (examples/passkeys, @simplewebauthn/browser):
 * register a passkey, sign out, sign in with it usernameless; a failed user verification; a
 * cloned authenticator (the credential removed and added back with a lower sign counter); a
 * password, then the passkey as second factor.
 * Screenshots go to test-results/passkeys/.
 *
 * Skipped only when /usr/bin/chromium is missing and TESSERA_REQUIRE_SERVICES is not 1.
 */
import { mkdirSync } from 'node:fs'
import Database from 'better-sqlite3'
import { join } from 'node:path'
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { passkeyPage } from '../../examples/passkeys/page.js'
import { CHROMIUM, chromiumPresent, launchChromium } from '../helpers/browser.js'
import { freePort } from '../helpers/private-servers.js'
import { uniqueName } from '../helpers/services.js'
import { startTestServer, type TestServer } from './api-harness.js'

const present = chromiumPresent
const required = process.env.TESSERA_REQUIRE_SERVICES === '1'
const SHOTS = join(process.cwd(), 'test-results', 'passkeys')
const PASSWORD = 'correct horse battery staple'

/** A credential of the virtual authenticator (CDP `WebAuthn.Credential`). */
interface VirtualCredential {
  credentialId: string
  isResidentCredential: boolean
  rpId?: string
  privateKey: string
  userHandle?: string
  signCount: number
}

describe.runIf(present || required)(
  'passkeys in headless Chromium with a virtual authenticator',
  { timeout: 60_000 },
  () => {
    let browser: Browser | undefined
    let server: TestServer
    let base = ''
    let context: BrowserContext
    let page: Page
    let cdp: CDPSession
    let authenticatorId = ''
    let problems: string[] = []

    beforeAll(async () => {
      if (!present) {
        throw new Error(
          `${CHROMIUM} is missing and TESSERA_REQUIRE_SERVICES=1: install it with apt-get install -y chromium`,
        )
      }
      mkdirSync(SHOTS, { recursive: true })
      const port = await freePort()
      // localhost, not 127.0.0.1: an IP address is not a valid relying party id.
      base = `http://localhost:${port}`
      server = await startTestServer(
        { kind: 'sqlite' },
        { PORT: String(port), TESSERA_PUBLIC_URL: base },
        { routes: [passkeyPage] },
      )
      browser = await launchChromium()
    }, 30_000)

    afterAll(async () => {
      await browser?.close()
      await server?.stop()
    })

    beforeEach(async () => {
      if (browser === undefined) throw new Error('no browser')
      context = await browser.newContext()
      page = await context.newPage()
      problems = []
      page.on('console', (message) => {
        const text = message.text()
        // Refused answers (401, 403) are logged by Chromium as failed loads: they are answers.
        if (/^Failed to load resource: the server responded with a status of 40[134]/.test(text)) {
          return
        }
        if (message.type() === 'error' || /Content Security Policy|Refused to/i.test(text)) {
          problems.push(`${message.type()}: ${text}`)
        }
      })
      page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`))
      cdp = await context.newCDPSession(page)
      await cdp.send('WebAuthn.enable')
      const added = await cdp.send('WebAuthn.addVirtualAuthenticator', {
        options: {
          protocol: 'ctap2',
          transport: 'internal',
          hasResidentKey: true,
          hasUserVerification: true,
          isUserVerified: true,
          automaticPresenceSimulation: true,
        },
      })
      authenticatorId = added.authenticatorId
      return async () => {
        await context.close()
      }
    })

    async function status(text: string | RegExp): Promise<void> {
      await page.locator('#status').filter({ hasText: text }).waitFor({ timeout: 10_000 })
    }

    async function signUpAndAddPasskey(email: string): Promise<void> {
      await page.goto(`${base}/passkeys?autofill=off`)
      await status('Ready.')
      await page.fill('#email', email)
      await page.fill('#password', PASSWORD)
      await page.click('#signup')
      await status('Account created.')
      await page.fill('#passkey-name', 'Chromium')
      await page.click('#register')
      await status('Passkey "Chromium" added.')
      await expect.poll(() => page.locator('#passkeys li').count()).toBe(1)
    }

    async function credentials(): Promise<VirtualCredential[]> {
      const answer: { credentials: VirtualCredential[] } = await cdp.send(
        'WebAuthn.getCredentials',
        { authenticatorId },
      )
      return answer.credentials
    }

    it('registers a passkey, signs out, and signs in with it usernameless at aal 2', async () => {
      const email = `${uniqueName('pkb')}@example.com`
      await signUpAndAddPasskey(email)
      const [credential] = await credentials()
      expect(credential?.isResidentCredential).toBe(true)
      expect(credential?.rpId).toBe('localhost')
      await page.screenshot({ path: join(SHOTS, '1-passkey-added.png'), fullPage: true })

      await page.click('#logout')
      await status('Signed out.')
      await page.screenshot({ path: join(SHOTS, '2-signed-out.png'), fullPage: true })
      // No e-mail typed: the browser picks the site's discoverable passkey.
      await page.click('#passkey-login')
      await status('Signed in with a passkey at aal 2.')
      await expect
        .poll(() => page.locator('#who').textContent())
        .toBe(`${email}: aal 2, amr hwk user mfa`)
      await page.screenshot({ path: join(SHOTS, '3-signed-in-with-passkey.png'), fullPage: true })

      // Conditional UI: signed out, the page asks for a passkey from the e-mail field's autofill
      // on load, with the options every caller gets; the virtual authenticator answers at once.
      await page.click('#logout')
      await status('Signed out.')
      await page.goto(`${base}/passkeys`)
      await status('Signed in with a passkey (autofill).')
      await expect
        .poll(() => page.locator('#who').textContent())
        .toBe(`${email}: aal 2, amr hwk user mfa`)
      expect(problems).toEqual([])
    })

    it('a passkey as the second factor after a password', async () => {
      const email = `${uniqueName('pk2f')}@example.com`
      await signUpAndAddPasskey(email)
      await page.click('#logout')
      await status('Signed out.')
      await page.fill('#email', email)
      await page.fill('#password', PASSWORD)
      await page.click('#login')
      await status('A second factor is needed.')
      await page.screenshot({ path: join(SHOTS, '6-second-factor-asked.png'), fullPage: true })
      await page.click('#second-factor-passkey')
      await status('Signed in with a password and a passkey at aal 2.')
      await expect
        .poll(() => page.locator('#who').textContent())
        .toBe(`${email}: aal 2, amr pwd hwk mfa`)
      await page.screenshot({ path: join(SHOTS, '7-password-and-passkey.png'), fullPage: true })
      expect(problems).toEqual([])
    })

    it('a failed user verification signs nobody in', async () => {
      await signUpAndAddPasskey(`${uniqueName('pkuv')}@example.com`)
      await page.click('#logout')
      await status('Signed out.')
      await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false })
      await page.click('#passkey-login')
      await status(/Passkey sign-in failed|aal 1/)
      const text = (await page.locator('#status').textContent()) ?? ''
      await page.screenshot({ path: join(SHOTS, '4-user-verification-failed.png'), fullPage: true })
      // Chromium's authenticator refuses the ceremony when the user cannot be verified (the
      // browser never gets an assertion): nobody is signed in, and no session exists.
      expect(text).toMatch(/Passkey sign-in failed/)
      expect(await page.locator('#signed-in').isHidden()).toBe(true)
      const session = await page.evaluate(async () => (await fetch('/auth/session')).status)
      expect(session).toBe(401)
    })

    it('a cloned authenticator (the counter goes back) is refused', async () => {
      await signUpAndAddPasskey(`${uniqueName('pkcl')}@example.com`)
      await page.click('#logout')
      await status('Signed out.')
      await page.click('#passkey-login')
      await status('Signed in with a passkey at aal 2.')
      await page.click('#logout')
      await status('Signed out.')

      const [credential] = await credentials()
      if (credential === undefined) throw new Error('no credential')
      expect(credential.signCount).toBeGreaterThan(1)
      // The same key with a lower counter: what a copy of the authenticator would report.
      await cdp.send('WebAuthn.removeCredential', {
        authenticatorId,
        credentialId: credential.credentialId,
      })
      await cdp.send('WebAuthn.addCredential', {
        authenticatorId,
        credential: { ...credential, signCount: 0 },
      })
      await page.click('#passkey-login')
      await status('Passkey sign-in failed: 401 invalid_credentials')
      await page.screenshot({ path: join(SHOTS, '5-counter-went-back.png'), fullPage: true })
      const session = await page.evaluate(async () => (await fetch('/auth/session')).status)
      expect(session).toBe(401)
      // Audited as a refused sign-in, with both counters.
      const db = new Database(join(server.cwd, 'data', 'tessera.db'), { readonly: true })
      try {
        const rows = db
          .prepare("SELECT outcome, detail FROM audit_events WHERE type = 'login' ORDER BY id")
          .all() as Array<{ outcome: string; detail: string }>
        const denied = rows.filter((row) => row.detail.includes('counter_regressed'))
        expect(denied).toHaveLength(1)
        expect(denied[0]?.outcome).toBe('denied')
        expect(JSON.parse(denied[0]?.detail ?? '{}')).toMatchObject({
          method: 'webauthn',
          storedCounter: credential.signCount,
        })
      } finally {
        db.close()
      }
    })
  },
)
