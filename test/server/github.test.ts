/*
 * The GitHub preset (OAuth 2 only, no ID token) over HTTP against a loopback STAND-IN FOR GITHUB
 * (test/helpers/github-stand-in.ts: the same endpoints and quirks; there is no internet here),
 * through the real server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../helpers/private-servers.js'
import { startGitHubStandIn, type GitHubStandIn } from '../helpers/github-stand-in.js'
import { Client, startTestServer, type TestServer } from './api-harness.js'

describe('the GitHub preset, against a loopback GitHub stand-in', () => {
  let github: GitHubStandIn
  let server: TestServer
  let base = ''

  beforeAll(async () => {
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    github = await startGitHubStandIn({ redirectUri: `${base}/auth/oidc/github/callback` })
    server = await startTestServer(
      { kind: 'sqlite' },
      {
        PORT: String(port),
        TESSERA_PUBLIC_URL: base,
        TESSERA_OIDC_PROVIDERS: 'github',
        TESSERA_OIDC_GITHUB_CLIENT_ID: github.clientId,
        TESSERA_OIDC_GITHUB_CLIENT_SECRET: github.clientSecret,
        TESSERA_OIDC_GITHUB_GITHUB_URL: github.webUrl,
        TESSERA_OIDC_GITHUB_GITHUB_API_URL: github.apiUrl,
      },
    )
  })

  afterAll(async () => {
    await server?.stop()
    await github?.close()
  })

  /** Begin at tessera, "approve" at the stand-in: the callback URL it sends the browser to. */
  async function authorize(client: Client): Promise<URL> {
    const start = await client.request('GET', '/auth/oidc/github', { redirect: 'manual' })
    expect(start.status).toBe(302)
    const authorization = new URL(start.headers.get('location') ?? '')
    expect(authorization.origin + authorization.pathname).toBe(
      `${github.webUrl}/login/oauth/authorize`,
    )
    expect(authorization.searchParams.get('scope')).toBe('read:user user:email')
    expect(authorization.searchParams.get('code_challenge_method')).toBe('S256')
    expect(authorization.searchParams.get('nonce')).toBeNull()
    const approved = await fetch(authorization, { redirect: 'manual' })
    return new URL(approved.headers.get('location') ?? '')
  }

  async function callback(client: Client, url: URL): Promise<Response> {
    return client.request('GET', `${url.pathname}${url.search}`, { redirect: 'manual' })
  }

  it('signs in with the numeric GitHub id as subject and the verified primary e-mail', async () => {
    github.nextUser = {
      id: 583231,
      login: 'octocat',
      emails: [
        { email: 'octo-public@example.test', primary: false, verified: true },
        { email: 'octocat@example.test', primary: true, verified: true },
      ],
    }
    const client = new Client(server)
    const response = await callback(client, await authorize(client))
    expect(response.status).toBe(302)
    const me = (await (await client.request('GET', '/auth/session')).json()) as {
      user: { email: string }
      session: { amr: string[] }
    }
    expect(me.user.email).toBe('octocat@example.test')
    expect(me.session.amr).toEqual(['fed'])
    const list = (await (await client.request('GET', '/auth/identities')).json()) as {
      identities: Array<{ provider: string; subject: string }>
    }
    expect(list.identities).toEqual([
      expect.objectContaining({ provider: 'github', subject: '583231' }),
    ])
    // The code was exchanged with the PKCE verifier and the registered redirect URI.
    const sent = github.tokenRequests.at(-1)
    expect(sent?.code_verifier).toMatch(/^[A-Za-z0-9_-]{43,128}$/)
    expect(sent?.redirect_uri).toBe(`${base}/auth/oidc/github/callback`)
  })

  it('refuses a wrong state and GitHub’s 200-with-error answer to a used code', async () => {
    github.nextUser = {
      id: 7,
      login: 'seven',
      emails: [{ email: 'seven@example.test', primary: true, verified: true }],
    }
    const client = new Client(server)
    const back = await authorize(client)
    const forged = new URL(back)
    forged.searchParams.set('state', 'not-the-state')
    expect((await callback(client, forged)).status).toBe(400)

    const browser = new Client(server)
    const url = await authorize(browser)
    const copy = browser.cookies.get('tessera_oidc') ?? ''
    expect((await callback(browser, url)).status).toBe(302)
    const replay = new Client(server)
    replay.cookies.set('tessera_oidc', copy)
    const refused = await callback(replay, url)
    expect(refused.status).toBe(400)
    expect((await replay.request('GET', '/auth/session')).status).toBe(401)
  })

  it('makes no account for a person without an e-mail, nor for one whose e-mail an account has', async () => {
    github.nextUser = { id: 8, login: 'noemail', emails: [] }
    const client = new Client(server)
    const response = await callback(client, await authorize(client))
    expect(response.status).toBe(400)
    expect(await response.text()).toContain('did not give an e-mail address')

    const owner = new Client(server, Client.sameOrigin(server))
    const signup = await owner.request('POST', '/auth/signup', {
      json: { email: 'taken@example.test', password: 'correct horse battery staple' },
    })
    expect(signup.status).toBe(201)
    github.nextUser = {
      id: 9,
      login: 'squatter',
      emails: [{ email: 'taken@example.test', primary: true, verified: false }],
    }
    const attacker = new Client(server)
    const refused = await callback(attacker, await authorize(attacker))
    expect(refused.status).toBe(400)
    expect((await attacker.request('GET', '/auth/session')).status).toBe(401)
  })
})
