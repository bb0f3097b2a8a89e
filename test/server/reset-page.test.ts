import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { uniqueName } from '../helpers/services.js'
import {
  Client,
  resetTokenFrom,
  startTestServer,
  waitForMail,
  type TestServer,
} from './api-harness.js'

/*
 * The page the reset e-mail links to (GET/POST /reset), against the real server on a socket
 * (SQLite). The same page in a real Chromium is in reset-browser.test.ts.
 */

const PASSWORD = 'correct horse battery staple'
const NEW_PASSWORD = 'a brand new passphrase for tessera'

function email(): string {
  return `${uniqueName('reset')}@example.com`
}

function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString()
}

const FORM_TYPE = { 'content-type': 'application/x-www-form-urlencoded' }

describe('the /reset page (SQLite)', () => {
  let server: TestServer

  beforeAll(async () => {
    server = await startTestServer({ kind: 'sqlite' })
  })

  afterAll(async () => {
    await server?.stop()
  })

  /** A signed-up user with a live session, and a reset token from the mail sent to them. */
  async function userWithResetMail(): Promise<{
    address: string
    browser: Client
    link: string
    token: string
  }> {
    const address = email()
    const browser = new Client(server, Client.sameOrigin(server))
    const signup = await browser.request('POST', '/auth/signup', {
      json: { email: address, password: PASSWORD },
    })
    expect(signup.status).toBe(201)
    const before = server.mails().length
    const requested = await new Client(server).request('POST', '/auth/password-reset/request', {
      json: { email: address },
    })
    expect(requested.status).toBe(202)
    const mail = await waitForMail(server, before + 1)
    const token = resetTokenFrom(mail)
    const link = `${server.origin}/reset?token=${token}`
    expect(mail.replace(/=\r?\n/g, '').replace(/=3D/g, '=')).toContain(link)
    return { address, browser, link, token }
  }

  async function login(address: string, password: string): Promise<number> {
    const response = await new Client(server).request('POST', '/auth/login', {
      json: { email: address, password },
    })
    return response.status
  }

  /** Posts the form as a same-origin browser would. */
  function postReset(fields: Record<string, string>, headers = Client.sameOrigin(server)) {
    return new Client(server).request('POST', '/reset', {
      body: form(fields),
      headers: { ...FORM_TYPE, ...headers },
    })
  }

  function expectPageHeaders(response: Response): string {
    expect(response.headers.get('content-type')).toMatch(/^text\/html/)
    const csp = response.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("default-src 'none'")
    expect(csp).toContain("script-src 'none'")
    expect(csp).toContain("form-action 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).not.toContain('unsafe-inline')
    expect(response.headers.get('cache-control')).toBe('no-store')
    expect(response.headers.get('referrer-policy')).toBe('strict-origin')
    expect(response.headers.get('x-content-type-options')).toBe('nosniff')
    return csp
  }

  async function expectPage(response: Response, status: number): Promise<string> {
    expect(response.status).toBe(status)
    const csp = expectPageHeaders(response)
    const text = await response.text()
    // SECURITY: no script at all, no inline style attribute; the one <style> carries the nonce
    // of this response's CSP.
    expect(text).not.toMatch(/<script/i)
    expect(text).not.toMatch(/\sstyle=/i)
    const nonce = /style-src 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1]
    expect(nonce).toBeDefined()
    expect(text).toContain(`<style nonce="${nonce}">`)
    return text
  }

  it('the mailed link works end to end: form, new password, every session signed out', async () => {
    const { address, browser, token } = await userWithResetMail()
    expect((await browser.request('GET', '/auth/session')).status).toBe(200)

    const page = await expectPage(await fetch(`${server.url}/reset?token=${token}`), 200)
    expect(page).toContain('<form method="post" action="reset"')
    expect(page).toContain(`<input type="hidden" name="token" value="${token}" />`)
    expect(page).toMatch(/name="newPassword"/)
    expect(page).toMatch(/name="confirmPassword"/)

    const done = await postReset({
      token,
      newPassword: NEW_PASSWORD,
      confirmPassword: NEW_PASSWORD,
    })
    const text = await expectPage(done, 200)
    expect(text).toContain('Password changed')
    expect(text).not.toContain(token)

    // SECURITY: using the token ended the session that was live before.
    expect((await browser.request('GET', '/auth/session')).status).toBe(401)
    expect(await login(address, NEW_PASSWORD)).toBe(200)
    expect(await login(address, PASSWORD)).toBe(401)
  })

  it('a used link fails on the page and through the API, and changes nothing', async () => {
    const { address, token } = await userWithResetMail()
    const first = await postReset({
      token,
      newPassword: NEW_PASSWORD,
      confirmPassword: NEW_PASSWORD,
    })
    expect(first.status).toBe(200)

    const again = await postReset({
      token,
      newPassword: `${NEW_PASSWORD} again`,
      confirmPassword: `${NEW_PASSWORD} again`,
    })
    const text = await expectPage(again, 400)
    expect(text).toContain('This reset link does not work')
    expect(text).not.toContain('<form')
    expect(await login(address, `${NEW_PASSWORD} again`)).toBe(401)
    expect(await login(address, NEW_PASSWORD)).toBe(200)
  })

  it.each([
    ['missing', '/reset'],
    ['empty', '/reset?token='],
    ['too short', '/reset?token=abc'],
    ['markup', `/reset?token=${encodeURIComponent('<script>alert(1)</script>')}`],
    ['two tokens', '/reset?token=a&token=b'],
    ['malformed percent-encoded', '/reset?token=%ff%E0%A4%A'],
    ['lone percent', '/reset?token=%'],
  ])('GET with a %s token: 400 page, nothing echoed', async (_name, path) => {
    const response = await fetch(`${server.url}${path}`)
    const text = await expectPage(response, 400)
    expect(text).toContain('This reset link does not work')
    expect(text).not.toContain('<form')
    expect(text).not.toContain('alert(1)')
  })

  it('a bad or missing token in the form: 400 page, the account and its sessions unchanged', async () => {
    const { address, browser, token } = await userWithResetMail()
    const unknown = randomBytes(32).toString('base64url')
    for (const fields of [
      { token: unknown, newPassword: NEW_PASSWORD, confirmPassword: NEW_PASSWORD },
      { token: `${token}x`, newPassword: NEW_PASSWORD, confirmPassword: NEW_PASSWORD },
      { token: '"><b>', newPassword: NEW_PASSWORD, confirmPassword: NEW_PASSWORD },
      { newPassword: NEW_PASSWORD, confirmPassword: NEW_PASSWORD },
      {},
    ]) {
      const text = await expectPage(await postReset(fields), 400)
      expect(text).toContain('This reset link does not work')
      expect(text).not.toContain('<b>')
    }
    expect((await browser.request('GET', '/auth/session')).status).toBe(200)
    expect(await login(address, PASSWORD)).toBe(200)
    // The real token was not touched by any of that.
    const ok = await postReset({ token, newPassword: NEW_PASSWORD, confirmPassword: NEW_PASSWORD })
    expect(ok.status).toBe(200)
  })

  it('a weak password, a mismatch or an empty field: the form again with the reason, nothing changed', async () => {
    const { address, browser, token } = await userWithResetMail()
    const cases: Array<[Record<string, string>, string]> = [
      [{ token, newPassword: 'short', confirmPassword: 'short' }, 'at least 12'],
      [{ token, newPassword: 'unbelievable', confirmPassword: 'unbelievable' }, 'common'],
      [{ token, newPassword: NEW_PASSWORD, confirmPassword: `${NEW_PASSWORD}!` }, 'not the same'],
      [{ token, newPassword: NEW_PASSWORD }, 'not the same'],
      [{ token, newPassword: '', confirmPassword: '' }, 'both fields'],
    ]
    for (const [fields, reason] of cases) {
      const text = await expectPage(await postReset(fields), 400)
      expect(text).toContain('role="alert"')
      expect(text.toLowerCase()).toContain(reason)
      // The form comes back with the token so the person can try again.
      expect(text).toContain(`<input type="hidden" name="token" value="${token}" />`)
    }
    expect((await browser.request('GET', '/auth/session')).status).toBe(200)
    expect(await login(address, PASSWORD)).toBe(200)
    const ok = await postReset({ token, newPassword: NEW_PASSWORD, confirmPassword: NEW_PASSWORD })
    expect(ok.status).toBe(200)
    expect(await login(address, NEW_PASSWORD)).toBe(200)
  })

  it.each([
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }],
    ['an untrusted Origin', { origin: 'https://evil.example' }],
    ['Origin: null', { origin: 'null' }],
  ])('a cross-site post (%s) is refused with 403 and changes nothing', async (_name, headers) => {
    const { address, token } = await userWithResetMail()
    const refused = await postReset(
      { token, newPassword: NEW_PASSWORD, confirmPassword: NEW_PASSWORD },
      headers,
    )
    const text = await expectPage(refused, 403)
    expect(text).toContain('Request refused')
    expect(await login(address, PASSWORD)).toBe(200)
    const ok = await postReset({ token, newPassword: NEW_PASSWORD, confirmPassword: NEW_PASSWORD })
    expect(ok.status).toBe(200)
  })

  it('a client with no browser headers (no Origin, no Sec-Fetch-Site) may post the form', async () => {
    const { address, token } = await userWithResetMail()
    const ok = await postReset(
      { token, newPassword: NEW_PASSWORD, confirmPassword: NEW_PASSWORD },
      {},
    )
    expect(ok.status).toBe(200)
    expect(await login(address, NEW_PASSWORD)).toBe(200)
  })

  it('a session cookie of another account does not matter: the token decides', async () => {
    const { address, token } = await userWithResetMail()
    const other = await userWithResetMail()
    // Posted from the other user's browser (its cookie attached), same-origin.
    const response = await other.browser.request('POST', '/reset', {
      body: form({ token, newPassword: NEW_PASSWORD, confirmPassword: NEW_PASSWORD }),
      headers: FORM_TYPE,
    })
    expect(response.status).toBe(200)
    expect(await login(address, NEW_PASSWORD)).toBe(200)
    expect(await login(other.address, PASSWORD)).toBe(200)
  })

  it.each([
    ['JSON', 'application/json', JSON.stringify({ token: 'x' })],
    ['text/plain', 'text/plain', 'token=x'],
    ['multipart', 'multipart/form-data; boundary=x', '--x--'],
  ])('a %s body gets a 415 page', async (_name, type, body) => {
    const response = await new Client(server).request('POST', '/reset', {
      body,
      headers: { ...Client.sameOrigin(server), 'content-type': type },
    })
    await expectPage(response, 415)
  })

  it('a form over 64 KiB gets a 413 page, and malformed bytes never a 500', async () => {
    const big = await postReset({ token: 'x', newPassword: 'a'.repeat(70 * 1024) })
    await expectPage(big, 413)
    const garbage = await new Client(server).request('POST', '/reset', {
      body: '%%%&&&=%ZZ&token=%ff%fe&newPassword=%00',
      headers: { ...FORM_TYPE, ...Client.sameOrigin(server) },
    })
    await expectPage(garbage, 400)
  })

  it('neither the token nor the passwords reach the log; the route pattern does', async () => {
    const { token } = await userWithResetMail()
    await fetch(`${server.url}/reset?token=${token}`)
    await postReset({ token, newPassword: 'short', confirmPassword: 'short' })
    await postReset({ token, newPassword: NEW_PASSWORD, confirmPassword: NEW_PASSWORD })
    const text = server.log.text()
    expect(text).toMatch(/"route":"\/reset"/)
    expect(text).not.toContain(token)
    expect(text).not.toContain(NEW_PASSWORD)
    expect(text).not.toMatch(/reset\?token=/)
  })
})
