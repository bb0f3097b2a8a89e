import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dropRedisPrefix } from '../server/api-harness.js'
import { REDIS_URL, uniqueName } from '../helpers/services.js'
import {
  createConsumerApp,
  packTarball,
  ROOT,
  run,
  STRICT_TSCONFIG,
  type ConsumerApp,
} from './consumer.js'

// docs/quickstart.md as a reader uses it: every `<!-- snippet: NAME -->` block is taken from
// the page as it is, pasted into a new app that installs the packed package and exactly the
// packages the page's install lines name, typechecked (strict, skipLibCheck off, NodeNext) and
// run with tsx; each server is then walked over HTTP: signup, login, /me, the CSRF token, a
// cross-site logout refused, logout with the token. So the page cannot drift from the package.
// The Next.js files likewise, in a new Next.js app (next build without the secret, next start),
// and in test/fixtures/next-app from the sources (test/adapters/next.test.ts).

const PAGE = readFileSync(join(ROOT, 'docs/quickstart.md'), 'utf8')
const PASSWORD = 'correct horse battery staple'

/** The code of the block that follows `<!-- snippet: name -->`. */
export function quickstartSnippet(name: string, page = PAGE): string {
  const marker = `<!-- snippet: ${name} -->`
  const at = page.indexOf(marker)
  if (at === -1) throw new Error(`docs/quickstart.md has no snippet ${name}`)
  const block = /```[a-z]*\n([\s\S]*?)```/.exec(page.slice(at + marker.length))
  if (block?.[1] === undefined) throw new Error(`no code block after ${marker}`)
  return block[1]
}

/** Lines of code a reader writes: not blank, not only a comment. */
function codeLines(text: string): number {
  return text.split('\n').filter((line) => line.trim() !== '' && !/^\s*\/\//.test(line)).length
}

/** The packages of a snippet's `npm install` lines (dev ones included). */
function installed(name: string): string[] {
  return quickstartSnippet(`${name}-install`)
    .split('\n')
    .filter((line) => line.startsWith('npm install'))
    .flatMap((line) =>
      line
        .replace(/^npm install( -D)?/, '')
        .trim()
        .split(/\s+/),
    )
}

/** The packages a snippet imports (not node: builtins), by package name. */
function imported(text: string): string[] {
  const names = [...text.matchAll(/from '([^'.][^']*)'/g)].map((match) => match[1] ?? '')
  return names
    .filter((name) => !name.startsWith('node:'))
    .map((name) =>
      name.startsWith('@') ? name.split('/').slice(0, 2).join('/') : (name.split('/')[0] ?? name),
    )
}

const SERVERS = [
  'express-mounted',
  'fastify-mounted',
  'hono-mounted',
  'express-by-hand',
  'fastify-by-hand',
  'hono-by-hand',
] as const

describe('docs/quickstart.md', () => {
  it.each(SERVERS)('%s names every package it imports in its install line', (name) => {
    const packages = installed(name)
    for (const dependency of imported(quickstartSnippet(name))) {
      expect(packages, dependency).toContain(dependency)
    }
  })

  it('is short: 15 lines or fewer with the mounted API, 30 or fewer by hand', () => {
    for (const name of ['express-mounted', 'fastify-mounted', 'hono-mounted']) {
      expect(codeLines(quickstartSnippet(name)), name).toBeLessThanOrEqual(15)
    }
    const next = ['next-mounted-lib', 'next-mounted-route', 'next-mounted-me']
    expect(
      next.reduce((sum, name) => sum + codeLines(quickstartSnippet(name)), 0),
    ).toBeLessThanOrEqual(15)
    for (const name of ['express-by-hand', 'fastify-by-hand']) {
      expect(codeLines(quickstartSnippet(name)), name).toBeLessThanOrEqual(30)
    }
    // One line more than the others: Hono needs @hono/node-server (a second import) to listen.
    expect(codeLines(quickstartSnippet('hono-by-hand'))).toBeLessThanOrEqual(31)
  })

  it('is what README.md shows for Express', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    expect(readme).toContain(`\`\`\`ts\n${quickstartSnippet('express-mounted')}\`\`\``)
  })

  it('keeps the Next.js files equal to the ones the Next.js test builds and runs', () => {
    const fixture = join(ROOT, 'test/fixtures/next-app')
    expect(readFileSync(join(fixture, 'lib/tessera.ts'), 'utf8')).toBe(
      quickstartSnippet('next-mounted-lib'),
    )
    expect(readFileSync(join(fixture, 'app/api/[...tessera]/route.ts'), 'utf8')).toBe(
      quickstartSnippet('next-mounted-route'),
    )
    expect(readFileSync(join(fixture, 'app/me/route.ts'), 'utf8')).toBe(
      quickstartSnippet('next-mounted-me'),
    )
  })
})

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port)
        else reject(new Error('no port'))
      })
    })
  })
}

/** Starts a snippet with tsx in the consumer app; resolves once it answers HTTP. */
async function startSnippet(
  app: ConsumerApp,
  file: string,
  env: Record<string, string>,
): Promise<{ base: string; child: ChildProcess; output: () => string }> {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const tsx = join(ROOT, 'node_modules/.bin/tsx')
  const child = spawn(tsx, [file], {
    cwd: app.dir,
    env: { ...process.env, ...env, PORT: String(port), TESSERA_PUBLIC_URL: base, PUBLIC_URL: base },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  // Polling the child's socket (it prints nothing when it is up); bounded at 60 s.
  for (let attempt = 0; attempt < 300; attempt++) {
    if (child.exitCode !== null) throw new Error(`${file} exited:\n${output}`)
    try {
      await fetch(`${base}/me`)
      return { base, child, output: () => output }
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  child.kill('SIGKILL')
  throw new Error(`${file} did not answer:\n${output}`)
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
}

/** Paths of one walk: the mounted API's, or the by-hand app's own. */
interface Paths {
  signup: string
  login: string
  logout: string
  csrf: string
}

const MOUNTED: Paths = {
  signup: '/api/auth/signup',
  login: '/api/auth/login',
  logout: '/api/auth/logout',
  csrf: '/api/auth/csrf',
}
const BY_HAND: Paths = { signup: '/signup', login: '/login', logout: '/logout', csrf: '/csrf' }

function cookieOf(response: Response): string {
  const line = response.headers
    .getSetCookie()
    .find((entry) => /^(__Host-)?tessera_session=/.test(entry))
  return line?.split(';')[0] ?? ''
}

/** Signup, login, /me, CSRF token, a cross-site logout refused, logout: the statuses seen. */
async function walk(base: string, paths: Paths): Promise<Record<string, unknown>> {
  const email = `${uniqueName('quick')}@example.com`
  const json = { 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' }
  const body = JSON.stringify({ email, password: PASSWORD })
  const steps: Record<string, unknown> = {}
  const signup = await fetch(base + paths.signup, { method: 'POST', headers: json, body })
  steps.signup = signup.status
  steps.signupCookie = cookieOf(signup) !== ''
  const login = await fetch(base + paths.login, { method: 'POST', headers: json, body })
  steps.login = login.status
  const cookie = cookieOf(login)
  const id = /"id":"([^"]+)"/.exec(await login.text())?.[1] ?? 'no id'
  const me = await fetch(`${base}/me`, { headers: { cookie } })
  steps.me = me.status
  steps.meIsTheUser = (await me.text()).includes(id)
  const csrf = await fetch(base + paths.csrf, { headers: { cookie } })
  steps.csrf = csrf.status
  const { token } = (await csrf.json()) as { token: string }
  const evil = { cookie, origin: 'https://evil.example' }
  steps.crossSite = (await fetch(base + paths.logout, { method: 'POST', headers: evil })).status
  const logout = await fetch(base + paths.logout, {
    method: 'POST',
    headers: { cookie, 'x-csrf-token': token },
  })
  steps.logout = logout.status
  steps.after = (await fetch(`${base}/me`, { headers: { cookie } })).status
  return steps
}

const EXPECTED = {
  signup: 201,
  signupCookie: true,
  login: 200,
  me: 200,
  meIsTheUser: true,
  csrf: 200,
  crossSite: 403,
  logout: 204,
  after: 401,
}

let packDir = ''
let tarball = ''

beforeAll(async () => {
  packDir = mkdtempSync(join(tmpdir(), 'tessera-pack-'))
  tarball = await packTarball(packDir)
}, 300_000)

afterAll(() => {
  if (packDir !== '') rmSync(packDir, { recursive: true, force: true })
})

describe('the quick starts pasted into a new app on the packed package', () => {
  let app: ConsumerApp | undefined
  const redisPrefix = `${uniqueName('tquick')}:`

  beforeAll(async () => {
    const packages = [...new Set(SERVERS.flatMap(installed))].filter(
      (name) => name !== 'tessera-auth',
    )
    app = await createConsumerApp({
      tarball,
      packages,
      nativeBuilds: ['better-sqlite3'],
      files: {
        // DOM: @hono/node-server's own declarations need it with skipLibCheck off (the page says
        // so); test/package/consumer.test.ts checks tessera's without it.
        'tsconfig.json': STRICT_TSCONFIG.replace('"ES2023"', '"ES2023",\n      "DOM"'),
        ...Object.fromEntries(SERVERS.map((name) => [`src/${name}.ts`, quickstartSnippet(name)])),
      },
    })
    mkdirSync(join(app.dir, 'data'), { recursive: true })
  }, 400_000)

  afterAll(async () => {
    app?.remove()
    if (REDIS_URL !== undefined) await dropRedisPrefix(REDIS_URL, redisPrefix)
  })

  it('typechecks every quick start with strict, skipLibCheck: false and module nodenext', async () => {
    expect(STRICT_TSCONFIG).toContain('"ES2023"')
    await app?.exec('tsc', ['-p', 'tsconfig.json'])
  }, 180_000)

  const secret = randomBytes(32).toString('base64url')
  const cases: Array<[string, Paths, Record<string, string>]> = [
    // Sessions in Redis for one of them (the install lines name redis; REDIS_URL picks it).
    [
      'express-mounted',
      MOUNTED,
      REDIS_URL === undefined ? {} : { REDIS_URL, TESSERA_REDIS_PREFIX: redisPrefix },
    ],
    ['fastify-mounted', MOUNTED, {}],
    ['hono-mounted', MOUNTED, {}],
    ['express-by-hand', BY_HAND, {}],
    ['fastify-by-hand', BY_HAND, {}],
    ['hono-by-hand', BY_HAND, {}],
  ]
  it.each(cases)(
    'runs %s: signup, login, /me, CSRF token, logout',
    async (name, paths, env) => {
      if (app === undefined) throw new Error('no app')
      const server = await startSnippet(app, `src/${name}.ts`, {
        TESSERA_SECRET: secret,
        NODE_ENV: 'production',
        TESSERA_MAILER: 'console',
        LOG_LEVEL: 'warn',
        ...env,
      })
      try {
        expect(await walk(server.base, paths), server.output()).toEqual(EXPECTED)
      } finally {
        await stop(server.child)
      }
    },
    120_000,
  )
})

// The Next.js quick start in a new Next.js app on the packed package, as the page says: the
// three files, `serverExternalPackages: ['tessera-auth']`, `next build` without the secret
// (as a CI or image build runs), then `next start` with it, walked over HTTP.
const NEXT_LAYOUT = `export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  )
}
`

describe('the Next.js quick start in a new Next.js app on the packed package', () => {
  let app: ConsumerApp | undefined
  let server: ChildProcess | undefined
  let base = ''

  beforeAll(async () => {
    const packages = [
      ...new Set([
        ...installed('next-mounted'),
        'next',
        'react',
        'react-dom',
        'typescript',
        '@types/react',
        '@types/node',
      ]),
    ].filter((name) => name !== 'tessera-auth')
    app = await createConsumerApp({
      tarball,
      packages,
      nativeBuilds: ['better-sqlite3'],
      files: {
        'next.config.mjs': "export default { serverExternalPackages: ['tessera-auth'] }\n",
        'app/layout.jsx': NEXT_LAYOUT,
        'lib/tessera.ts': quickstartSnippet('next-mounted-lib'),
        'app/api/[...tessera]/route.ts': quickstartSnippet('next-mounted-route'),
        'app/me/route.ts': quickstartSnippet('next-mounted-me'),
      },
    })
    const next = join(app.dir, 'node_modules/next/dist/bin/next')
    const { TESSERA_SECRET: _unset, ...withoutSecret } = process.env
    const env = { ...withoutSecret, NEXT_TELEMETRY_DISABLED: '1', NODE_ENV: 'production' }
    await run(process.execPath, [next, 'build'], { cwd: app.dir, env, timeout: 400_000 })
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    server = spawn(process.execPath, [next, 'start', '-p', String(port), '-H', '127.0.0.1'], {
      cwd: app.dir,
      env: {
        ...env,
        TESSERA_SECRET: randomBytes(32).toString('base64url'),
        TESSERA_PUBLIC_URL: base,
        LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    })
    // Polling next start's socket until it answers; bounded at 60 s.
    for (let attempt = 0; attempt < 300; attempt++) {
      try {
        await fetch(`${base}/me`)
        return
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
    throw new Error('next start did not answer')
  }, 600_000)

  afterAll(async () => {
    if (server !== undefined) await stop(server)
    app?.remove()
  })

  it('signs up, signs in, serves /me, and logs out with the CSRF token', async () => {
    expect(await walk(base, MOUNTED)).toEqual(EXPECTED)
  })
})
