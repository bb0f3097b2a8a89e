/*
 * A loopback STAND-IN FOR GITHUB (not GitHub: there is no internet here). It speaks the same
 * endpoints as github.com's OAuth app flow and REST API, as far as tessera's GitHub preset uses
 * them, with GitHub's quirks: `/login/oauth/authorize` (here it approves at once, as the person
 * configured in `nextUser`), `/login/oauth/access_token` (form post; JSON with
 * `Accept: application/json`; errors as `200` with an `error` field, as GitHub does), and the
 * API's `/user` and `/user/emails` under `/api/v3` (GitHub Enterprise Server's layout).
 */
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'

/** A person at the stand-in. */
export interface StandInUser {
  id: number
  login: string
  /** What `/user/emails` lists; the public `/user` e-mail is always null (as for most people). */
  emails: Array<{ email: string; primary: boolean; verified: boolean }>
}

/** A running stand-in. */
export interface GitHubStandIn {
  /** `http://127.0.0.1:<port>`: the preset's `GITHUB_URL`. */
  webUrl: string
  /** `<webUrl>/api/v3`: the preset's `GITHUB_API_URL`. */
  apiUrl: string
  clientId: string
  clientSecret: string
  /** Who "signs in" at the next authorization request. */
  nextUser: StandInUser
  /** Requests to the token endpoint so far (form fields), to check what tessera sent. */
  tokenRequests: Array<Record<string, string>>
  close(): Promise<void>
}

interface IssuedCode {
  user: StandInUser
  redirectUri: string
  challenge: string | null
  used: boolean
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
  res.end(JSON.stringify(body))
}

/** Starts the stand-in on a loopback port. */
export async function startGitHubStandIn(options: { redirectUri: string }): Promise<GitHubStandIn> {
  const clientId = 'Iv1.standin0client'
  const clientSecret = 'stand-in-client-secret-0123456789abcdef'
  const codes = new Map<string, IssuedCode>()
  const tokens = new Map<string, StandInUser>()
  const standIn: Omit<GitHubStandIn, 'webUrl' | 'apiUrl' | 'close'> = {
    clientId,
    clientSecret,
    nextUser: {
      id: 1,
      login: 'octocat',
      emails: [{ email: 'octocat@example.test', primary: true, verified: true }],
    },
    tokenRequests: [],
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stand-in')
    if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
      const redirectUri = url.searchParams.get('redirect_uri') ?? ''
      if (url.searchParams.get('client_id') !== clientId || redirectUri !== options.redirectUri) {
        res.writeHead(400).end('bad client or redirect_uri')
        return
      }
      const code = randomBytes(10).toString('hex')
      codes.set(code, {
        user: standIn.nextUser,
        redirectUri,
        challenge: url.searchParams.get('code_challenge'),
        used: false,
      })
      const back = new URL(redirectUri)
      back.searchParams.set('code', code)
      const state = url.searchParams.get('state')
      if (state !== null) back.searchParams.set('state', state)
      res.writeHead(302, { location: back.href }).end()
      return
    }
    if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
      const form = Object.fromEntries(new URLSearchParams(await readBody(req)))
      // Client authentication: Basic (RFC 6749 2.3.1) or the form's client_secret.
      const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1]
      if (basic !== undefined) {
        const [id = '', secret = ''] = Buffer.from(basic, 'base64')
          .toString('utf8')
          .split(':')
          .map(decodeURIComponent)
        form.client_id = id
        form.client_secret = secret
      }
      standIn.tokenRequests.push(form)
      const issued = codes.get(form.code ?? '')
      const verifier = form.code_verifier
      const challengeOk =
        issued?.challenge == null ||
        (verifier !== undefined &&
          createHash('sha256').update(verifier).digest('base64url') === issued.challenge)
      if (form.client_id !== clientId || form.client_secret !== clientSecret) {
        json(res, 200, {
          error: 'incorrect_client_credentials',
          error_description: 'The client_id and/or client_secret passed are incorrect.',
        })
        return
      }
      if (
        issued === undefined ||
        issued.used ||
        issued.redirectUri !== form.redirect_uri ||
        !challengeOk
      ) {
        json(res, 200, {
          error: 'bad_verification_code',
          error_description: 'The code passed is incorrect or expired.',
        })
        return
      }
      issued.used = true
      const token = `gho_${randomBytes(18).toString('hex')}`
      tokens.set(token, issued.user)
      json(res, 200, { access_token: token, token_type: 'bearer', scope: 'read:user,user:email' })
      return
    }
    const bearer = /^(?:Bearer|token) (.+)$/i.exec(req.headers.authorization ?? '')?.[1]
    const user = bearer === undefined ? undefined : tokens.get(bearer)
    if (
      req.method === 'GET' &&
      (url.pathname === '/api/v3/user' || url.pathname === '/api/v3/user/emails')
    ) {
      if (user === undefined) {
        json(res, 401, { message: 'Bad credentials' })
        return
      }
      if (url.pathname === '/api/v3/user')
        json(res, 200, { id: user.id, login: user.login, email: null })
      else
        json(
          res,
          200,
          user.emails.map((email) => ({ ...email, visibility: 'private' })),
        )
      return
    }
    json(res, 404, { message: 'Not Found' })
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.writeHead(500).end())
  })
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      resolve(typeof address === 'object' && address !== null ? address.port : 0)
    })
  })
  const webUrl = `http://127.0.0.1:${port}`
  return Object.assign(standIn, {
    webUrl,
    apiUrl: `${webUrl}/api/v3`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  })
}
