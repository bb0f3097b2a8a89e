/*
 * A real OpenID provider for tests: panva's `oidc-provider` running in the test process on
 * 127.0.0.1, with a confidential client registered for tessera and its development login page
 * (devInteractions: any login, any password; the login names the account). Its own Koa
 * middleware can turn it into a deliberately broken peer for one test (`faults`): an ID token
 * re-signed with a key it does not publish, an expired one, a refused token exchange.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import {
  exportJWK,
  generateKeyPair,
  SignJWT,
  decodeJwt,
  decodeProtectedHeader,
  type JWK,
} from 'jose'
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider'

/** What an account at the test provider says about itself. */
export interface TestAccount {
  email?: string | undefined
  emailVerified?: boolean | undefined
}

/** How the provider misbehaves on its next token responses (a deliberately broken peer). */
export interface ProviderFaults {
  /** Re-sign the ID token with a key the provider does not publish (same `kid`). */
  unpublishedKey?: boolean
  /** Re-sign the ID token with the provider's own key, expired an hour ago. */
  expiredIdToken?: boolean
  /** Answer the token request with `400 invalid_grant`. */
  refuseTokenExchange?: boolean
}

/** A running test provider. */
export interface TestProvider {
  issuer: string
  clientId: string
  clientSecret: string
  /** Accounts by login name; a login not listed gets `<login>@example.test`, verified. */
  accounts: Map<string, TestAccount>
  faults: ProviderFaults
  close(): Promise<void>
}

/** Options of {@link startTestProvider}. */
export interface TestProviderOptions {
  /** The redirect URIs of tessera's client (`<public URL>/auth/oidc/<name>/callback`). */
  redirectUris: string[]
  /** Cookie names are per host, not per port: two providers on 127.0.0.1 need their own. */
  cookiePrefix?: string
  clientId?: string
  clientSecret?: string
  /** @default 0 (a free port) */
  port?: number
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => {
      const address = server.address()
      resolve(typeof address === 'object' && address !== null ? address.port : 0)
    })
  })
}

/** Starts an OpenID provider on a loopback port. */
export async function startTestProvider(options: TestProviderOptions): Promise<TestProvider> {
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.statusCode = 503
    res.end()
  }
  const server = createServer((req, res) => handler(req, res))
  const port = await listen(server, options.port ?? 0)
  const issuer = `http://127.0.0.1:${port}`
  const clientId = options.clientId ?? 'tessera'
  const clientSecret = options.clientSecret ?? 'a-client-secret-for-tessera-tests'
  const prefix = options.cookiePrefix ?? 'op'

  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const signingJwk: JWK = {
    ...(await exportJWK(privateKey)),
    kid: `${prefix}-key`,
    alg: 'RS256',
    use: 'sig',
  }
  const { privateKey: strangerKey } = await generateKeyPair('RS256')

  const accounts = new Map<string, TestAccount>()
  const faults: ProviderFaults = {}

  const configuration: Configuration = {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: options.redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [signingJwk] },
    cookies: {
      keys: [`cookie-key-of-${prefix}-for-tests-only`],
      names: {
        session: `_${prefix}_session`,
        interaction: `_${prefix}_interaction`,
        resume: `_${prefix}_resume`,
      },
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => true },
    // tessera is a first-party client: no consent page, only the login page.
    async loadExistingGrant(ctx: KoaContextWithOIDC) {
      const accountId = ctx.oidc.session?.accountId
      if (accountId === undefined || ctx.oidc.client === undefined) return undefined
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId })
      grant.addOIDCScope('openid email profile')
      await grant.save()
      return grant
    },
    findAccount(_ctx, id) {
      const account = accounts.get(id) ?? { email: `${id}@example.test`, emailVerified: true }
      return {
        accountId: id,
        claims: () => ({
          sub: id,
          ...(account.email === undefined ? {} : { email: account.email }),
          ...(account.emailVerified === undefined ? {} : { email_verified: account.emailVerified }),
        }),
      }
    },
  }
  const provider = new Provider(issuer, configuration)
  // Quiet: the provider's own errors are the tests' business, not the log's.
  provider.on('server_error', () => undefined)

  provider.use(async (ctx, next) => {
    await next()
    if (ctx.path !== '/token' || ctx.method !== 'POST') return
    if (faults.refuseTokenExchange === true) {
      ctx.status = 400
      ctx.body = { error: 'invalid_grant', error_description: 'refused by the test' }
      return
    }
    const body = ctx.body as { id_token?: string } | undefined
    const idToken = body?.id_token
    if (body === undefined || idToken === undefined) return
    if (faults.unpublishedKey === true || faults.expiredIdToken === true) {
      const claims = decodeJwt(idToken)
      const header = decodeProtectedHeader(idToken)
      const now = Math.floor(Date.now() / 1000)
      const payload =
        faults.expiredIdToken === true ? { ...claims, iat: now - 7200, exp: now - 3600 } : claims
      const key = faults.unpublishedKey === true ? strangerKey : privateKey
      body.id_token = await new SignJWT(payload)
        .setProtectedHeader({
          alg: 'RS256',
          ...(header.kid === undefined ? {} : { kid: header.kid }),
        })
        .sign(key)
    }
  })

  const callback = provider.callback()
  handler = (req, res) => {
    void callback(req, res)
  }
  return {
    issuer,
    clientId,
    clientSecret,
    accounts,
    faults,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** One user agent at the provider: its own cookie jar, following the provider's redirects. */
export class ProviderBrowser {
  private readonly cookies = new Map<string, string>()

  /**
   * Opens the provider's authorization URL, signs in as `login` on its login page, and returns
   * the URL it redirects back to (tessera's callback, with `code`, `state` and `iss`).
   */
  async signIn(authorizationUrl: string, login: string): Promise<URL> {
    let response = await this.fetch(authorizationUrl)
    let location = this.next(response, authorizationUrl)
    // To the interaction (login) page.
    while (location !== null && !location.pathname.startsWith('/interaction/')) {
      if (!location.href.startsWith(new URL(authorizationUrl).origin)) return location
      response = await this.fetch(location.href)
      location = this.next(response, location.href)
    }
    if (location === null)
      throw new Error(`the provider did not ask for a login (${response.status})`)
    response = await this.fetch(location.href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ prompt: 'login', login, password: 'any' }).toString(),
    })
    let at = location.href
    location = this.next(response, at)
    const origin = new URL(authorizationUrl).origin
    while (location !== null && location.origin === origin) {
      at = location.href
      response = await this.fetch(at)
      location = this.next(response, at)
    }
    if (location === null)
      throw new Error(`the provider did not redirect back (${response.status})`)
    return location
  }

  private next(response: Response, from: string): URL | null {
    const location = response.headers.get('location')
    return response.status >= 300 && response.status < 400 && location !== null
      ? new URL(location, from)
      : null
  }

  private async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers)
    if (this.cookies.size > 0) {
      headers.set('cookie', [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; '))
    }
    const response = await fetch(url, { ...init, headers, redirect: 'manual' })
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq)
      const value = pair.slice(eq + 1)
      if (value === '' || /expires=thu, 01 jan 1970/i.test(line)) this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
    await response.body?.cancel()
    return response
  }
}
