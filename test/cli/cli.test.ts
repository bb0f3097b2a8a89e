// `tessera migrate | user | sessions | keys` run in-process through `main`, on a real SQLite file
// in a temp directory, with the environment the server would read.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createCredentials } from '../../src/auth/credentials.js'
import type { KeySet } from '../../src/auth/keys.js'
import { openCliContext, type CliContext } from '../../src/cli/context.js'
import { loadKeys } from '../../src/server/services.js'
import { sqliteFixture, type CliFixture } from './cli-harness.js'

const PASSWORD = 'correct horse battery staple'
const OTHER_PASSWORD = 'tr0ub4dor & three more words'

let fx: CliFixture

beforeEach(() => {
  fx = sqliteFixture()
})
afterEach(() => {
  fx.cleanup()
})

async function withContext<T>(body: (context: CliContext) => Promise<T>): Promise<T> {
  const context = await openCliContext({ env: fx.env, cwd: fx.dir, err: () => {} })
  try {
    return await body(context)
  } finally {
    await context.close()
  }
}

async function createUser(email: string, ...flags: string[]): Promise<string> {
  const result = await fx.run(['user', 'create', email, ...flags, '--json'], {
    stdin: `${PASSWORD}\n`,
  })
  expect(result.stderr).toBe('')
  expect(result.code).toBe(0)
  return (JSON.parse(result.stdout) as { user: { id: string } }).user.id
}

function expectOneLineError(result: { code: number; stdout: string; stderr: string }): void {
  expect(result.stdout).toBe('')
  expect(result.stderr.trim().split('\n')).toHaveLength(1)
}

describe('tessera --help and usage errors', () => {
  it('prints help for every command with exit 0', async () => {
    for (const argv of [
      ['--help'],
      ['migrate', '--help'],
      ['user', '--help'],
      ['user', 'create', '--help'],
      ['sessions', '--help'],
      ['sessions', 'revoke', '--help'],
      ['keys', '--help'],
      ['keys', 'rotate', '-h'],
    ]) {
      const result = await fx.run(argv)
      expect(result.code, argv.join(' ')).toBe(0)
      expect(result.stdout).toMatch(/^Usage: tessera/)
    }
  })

  it('exits 2 with one line for unknown commands, subcommands, options and missing arguments', async () => {
    for (const argv of [
      ['frobnicate'],
      ['user', 'frobnicate'],
      ['user', 'create'],
      ['user', 'create', 'a@example.com', 'b@example.com'],
      ['user', 'list', '--color'],
      ['user', 'list', '--search'],
      ['user', 'disable'],
      ['sessions', 'list'],
      ['sessions', 'revoke'],
      ['sessions', 'revoke', 'a@example.com', 'not-a-session-id'],
      ['keys', 'spin'],
      ['keys', 'list', 'extra'],
      ['migrate', '--force'],
    ]) {
      const result = await fx.run(argv)
      expect(result.code, argv.join(' ')).toBe(2)
      expectOneLineError(result)
    }
  })

  it('exits 2 and prints the overview when a command group is given no subcommand', async () => {
    const result = await fx.run(['user'])
    expect(result.code).toBe(2)
    expect(result.stdout).toMatch(/Subcommands:/)
  })

  it('exits 1 with one line when the configuration is invalid', async () => {
    fx.env.DATABASE_URL = 'mysql://nope'
    const result = await fx.run(['user', 'list'])
    expect(result.code).toBe(1)
    expectOneLineError(result)
    expect(result.stderr).toMatch(/DATABASE_URL.*config_invalid/)
  })
})

describe('tessera with a backend down', () => {
  it('exits 1 with one store_unavailable line when Redis or PostgreSQL cannot be reached', async () => {
    await createUser('down@example.com')
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    fx.env.REDIS_URL = 'redis://127.0.0.1:1'
    const redis = await fx.run(['sessions', 'list', 'down@example.com'])
    expect(redis.code).toBe(1)
    expectOneLineError(redis)
    expect(redis.stderr).toMatch(/^tessera sessions list: .*\(store_unavailable\)$/m)
    delete fx.env.REDIS_URL
    fx.env.DATABASE_URL = 'postgres://postgres@127.0.0.1:1/none'
    const postgres = await fx.run(['user', 'list'])
    expect(postgres.code).toBe(1)
    expectOneLineError(postgres)
    expect(postgres.stderr).toMatch(/PostgreSQL cannot be reached \(store_unavailable\)/)
  }, 20_000)
})

describe('tessera migrate', () => {
  it('prints the migrations it applied, then that nothing is pending', async () => {
    const first = await fx.run(['migrate'])
    expect(first.code).toBe(0)
    expect(first.stdout).toMatch(/^applied \S+/m)
    const second = await fx.run(['migrate', '--json'])
    expect(second.code).toBe(0)
    expect(JSON.parse(second.stdout)).toEqual({ applied: [] })
    expect((await fx.run(['migrate'])).stdout).toMatch(/nothing applied/)
  })

  it('--json lists the applied names on a fresh database', async () => {
    const result = await fx.run(['migrate', '--json'])
    const body = JSON.parse(result.stdout) as { applied: string[] }
    expect(body.applied.length).toBeGreaterThan(0)
    expect(body.applied.every((name) => typeof name === 'string')).toBe(true)
  })
})

describe('tessera user', () => {
  it('creates a user with the password from stdin; the hash verifies and nothing secret is printed', async () => {
    const result = await fx.run(['user', 'create', 'Ada@Example.com'], { stdin: `${PASSWORD}\n` })
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^created user ada@example\.com \(id [0-9a-f-]{36}\)\n$/)
    expect(result.stdout + result.stderr).not.toContain(PASSWORD)
    expect(result.stdout + result.stderr).not.toContain(fx.env.TESSERA_SECRET)
    await withContext(async (context) => {
      const user = await context.accounts.findUserByEmail('ada@example.com')
      expect(user?.isAdmin).toBe(false)
      const hash = await createCredentials(context.backends.db).getPasswordHash(user?.id ?? '')
      expect(await context.passwords.verify(PASSWORD, hash ?? '')).toBe(true)
    })
  })

  it('--admin makes an admin; --password-stdin reads stdin; CRLF is stripped', async () => {
    const result = await fx.run(
      ['user', 'create', 'root@example.com', '--admin', '--password-stdin', '--json'],
      { stdin: `${PASSWORD}\r\nignored second line\n` },
    )
    expect(result.code).toBe(0)
    const body = JSON.parse(result.stdout) as { user: Record<string, unknown> }
    expect(body.user).toMatchObject({ email: 'root@example.com', isAdmin: true, isActive: true })
    expect(Object.keys(body.user).sort()).toEqual(
      [
        'createdAt',
        'email',
        'id',
        'isActive',
        'isAdmin',
        'lastLoginAt',
        'passwordChangedAt',
      ].sort(),
    )
    await withContext(async (context) => {
      const hash = await createCredentials(context.backends.db).getPasswordHash(
        String(body.user.id),
      )
      expect(await context.passwords.verify(PASSWORD, hash ?? '')).toBe(true)
    })
  })

  it('refuses a weak password, an empty stdin, a bad e-mail and a taken e-mail (exit 1, one line)', async () => {
    // The server's rule (issue 12, item 7): a breached password or one made of the e-mail.
    for (const [address, password] of [
      ['a@example.com', 'password1234'],
      ['margaret.hamilton@example.com', 'margaret.hamilton2024'],
    ]) {
      const refused = await fx.run(['user', 'create', address!], { stdin: `${password}\n` })
      expect(refused.code, password).toBe(1)
      expect(refused.stderr).toContain('unrelated words')
    }
    const weak = await fx.run(['user', 'create', 'a@example.com'], { stdin: 'password\n' })
    expect(weak.code).toBe(1)
    expectOneLineError(weak)
    expect(weak.stderr).toMatch(/at least 12 characters/)
    const empty = await fx.run(['user', 'create', 'a@example.com'])
    expect(empty.code).toBe(1)
    expect(empty.stderr).toMatch(/no password on stdin/)
    const bad = await fx.run(['user', 'create', 'not-an-email'], { stdin: `${PASSWORD}\n` })
    expect(bad.code).toBe(1)
    expectOneLineError(bad)
    await createUser('a@example.com')
    const taken = await fx.run(['user', 'create', 'A@example.com'], { stdin: `${PASSWORD}\n` })
    expect(taken.code).toBe(1)
    expectOneLineError(taken)
    expect(taken.stderr).toMatch(/already exists \(conflict\)/)
    // None of the refused attempts left an account behind.
    const list = await fx.run(['user', 'list', '--json'])
    expect((JSON.parse(list.stdout) as { total: number }).total).toBe(1)
  })

  it('applies TESSERA_PASSWORD_MIN_LENGTH like the server', async () => {
    fx.env.TESSERA_PASSWORD_MIN_LENGTH = '40'
    const result = await fx.run(['user', 'create', 'a@example.com'], { stdin: `${PASSWORD}\n` })
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/at least 40 characters/)
  })

  it('lists users as a table and as JSON, with --search, never with a hash', async () => {
    await createUser('bob@example.com')
    await createUser('alice@example.com', '--admin')
    await createUser('carol@other.org')
    const text = await fx.run(['user', 'list'])
    expect(text.code).toBe(0)
    const lines = text.stdout.trim().split('\n')
    expect(lines[0]).toMatch(/^ID\s+EMAIL\s+ADMIN\s+ACTIVE\s+CREATED\s+LAST LOGIN$/)
    expect(lines.slice(1).map((line) => line.split(/\s+/)[1])).toEqual([
      'alice@example.com',
      'bob@example.com',
      'carol@other.org',
    ])
    const json = await fx.run(['user', 'list', '--json', '--search', 'EXAMPLE.com'])
    const body = JSON.parse(json.stdout) as { users: Array<Record<string, unknown>>; total: number }
    expect(body.total).toBe(2)
    expect(body.users.map((user) => user.email)).toEqual(['alice@example.com', 'bob@example.com'])
    expect(body.users[0]).toMatchObject({ isAdmin: true, isActive: true, lastLoginAt: null })
    expect(String(body.users[0]?.createdAt)).toMatch(/^\d{4}-\d\d-\d\dT/)
    expect(json.stdout).not.toMatch(/argon2|hash/i)
    const none = await fx.run(['user', 'list', '--search', 'nobody'])
    expect(none.stdout).toBe('no matching users\n')
  })

  it('disable ends the sessions the session manager created on the same store', async () => {
    const id = await createUser('eve@example.com')
    const tokens = await withContext(async (context) => {
      const first = await context.sessions.create(id)
      const second = await context.sessions.create(id, { meta: { ip: '203.0.113.9' } })
      return [first.token, second.token]
    })
    const result = await fx.run(['user', 'disable', 'eve@example.com'])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^disabled eve@example\.com; ended 2 session\(s\)/)
    for (const token of tokens) expect(result.stdout).not.toContain(token)
    await withContext(async (context) => {
      for (const token of tokens) expect(await context.sessions.validateToken(token)).toBeNull()
      expect((await context.accounts.findUserById(id))?.isActive).toBe(false)
    })
    const listed = await fx.run(['user', 'list', '--json'])
    expect(
      (JSON.parse(listed.stdout) as { users: Array<{ isActive: boolean }> }).users[0],
    ).toMatchObject({
      isActive: false,
    })
  })

  it('disable and passwd accept a user id; an unknown user is exit 1 with one line', async () => {
    const id = await createUser('dan@example.com')
    expect((await fx.run(['user', 'disable', id])).code).toBe(0)
    for (const argv of [
      ['user', 'disable', 'nobody@example.com'],
      ['user', 'disable', '0190b2a4-0000-7000-8000-000000000000'],
      ['user', 'disable', 'not-an-id'],
      ['user', 'passwd', 'nobody@example.com'],
      ['sessions', 'list', 'nobody@example.com'],
      ['sessions', 'revoke', 'nobody@example.com'],
    ]) {
      const result = await fx.run(argv, { stdin: `${PASSWORD}\n` })
      expect(result.code, argv.join(' ')).toBe(1)
      expectOneLineError(result)
      expect(result.stderr).toMatch(/no user .*\(not_found\)/)
    }
  })

  it('passwd sets the new password (stdin), revokes every session, and refuses a weak one', async () => {
    const id = await createUser('fay@example.com')
    const token = await withContext(async (context) => (await context.sessions.create(id)).token)
    const weak = await fx.run(['user', 'passwd', 'fay@example.com'], { stdin: 'short\n' })
    expect(weak.code).toBe(1)
    const result = await fx.run(['user', 'passwd', 'fay@example.com', '--password-stdin'], {
      stdin: `${OTHER_PASSWORD}\n`,
    })
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^password of fay@example\.com changed; ended 1 session\(s\)/)
    expect(result.stdout + result.stderr).not.toContain(OTHER_PASSWORD)
    await withContext(async (context) => {
      const hash = (await createCredentials(context.backends.db).getPasswordHash(id)) ?? ''
      expect(await context.passwords.verify(OTHER_PASSWORD, hash)).toBe(true)
      expect(await context.passwords.verify(PASSWORD, hash)).toBe(false)
      expect(await context.sessions.validateToken(token)).toBeNull()
      const events = await context.audit.list({ userId: id })
      expect(events.some((event) => event.type === 'password_changed')).toBe(true)
    })
  })
})

describe('tessera sessions', () => {
  it("lists a user's sessions (table and JSON) without tokens", async () => {
    const id = await createUser('gil@example.com')
    const issued = await withContext(async (context) => [
      await context.sessions.create(id, { meta: { ip: '198.51.100.7', userAgent: 'curl/8' } }),
      await context.sessions.create(id),
    ])
    const json = await fx.run(['sessions', 'list', 'gil@example.com', '--json'])
    expect(json.code).toBe(0)
    const body = JSON.parse(json.stdout) as {
      user: { id: string; email: string }
      sessions: Array<Record<string, unknown>>
    }
    expect(body.user).toEqual({ id, email: 'gil@example.com' })
    expect(body.sessions.map((session) => session.id).sort()).toEqual(
      issued.map((entry) => entry.session.id).sort(),
    )
    expect(Object.keys(body.sessions[0] ?? {}).sort()).toEqual(
      ['absoluteExpiresAt', 'createdAt', 'expiresAt', 'id', 'ip', 'lastSeenAt', 'userAgent'].sort(),
    )
    expect(body.sessions).toContainEqual(
      expect.objectContaining({ ip: '198.51.100.7', userAgent: 'curl/8' }),
    )
    const text = await fx.run(['sessions', 'list', id])
    expect(text.stdout).toMatch(/^ID\s+CREATED\s+LAST SEEN\s+EXPIRES\s+IP\s+USER AGENT\n/)
    for (const entry of issued) {
      expect(json.stdout + text.stdout).not.toContain(entry.token)
      expect(text.stdout).toContain(entry.session.id)
    }
    await fx.run(['sessions', 'revoke', 'gil@example.com'])
    expect((await fx.run(['sessions', 'list', 'gil@example.com'])).stdout).toBe(
      'gil@example.com has no live sessions\n',
    )
  })

  it('takes a session id that starts with "-" as an id, not an option', async () => {
    const id = await createUser('dash@example.com')
    let sessionId = ''
    await withContext(async (context) => {
      // About one id in 64 starts with "-"; make sessions until one does.
      for (let attempt = 0; attempt < 2000 && sessionId === ''; attempt++) {
        const candidate = await context.sessions.create(id)
        if (candidate.session.id.startsWith('-')) sessionId = candidate.session.id
      }
    })
    expect(sessionId).toMatch(/^-/)
    const result = await fx.run(['sessions', 'revoke', sessionId])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const paired = await fx.run(['sessions', 'revoke', 'dash@example.com', sessionId])
    expect(paired.code).toBe(1)
    expect(paired.stderr).toMatch(/has no session/)
    const option = await fx.run(['sessions', 'revoke', '--all'])
    expect(option.code).toBe(2)
  })

  it('revokes one session by public id, one by user + id, and all of a user', async () => {
    const id = await createUser('hal@example.com')
    const other = await createUser('ivy@example.com')
    const [a, b, c, d] = await withContext(async (context) => [
      await context.sessions.create(id),
      await context.sessions.create(id),
      await context.sessions.create(id),
      await context.sessions.create(other),
    ])
    const one = await fx.run(['sessions', 'revoke', a?.session.id ?? ''])
    expect(one.code).toBe(0)
    expect(one.stdout).toBe(`revoked session ${a?.session.id} of hal@example.com\n`)
    // A session id given with the wrong user is not found and not revoked.
    const wrong = await fx.run(['sessions', 'revoke', 'ivy@example.com', b?.session.id ?? ''])
    expect(wrong.code).toBe(1)
    expectOneLineError(wrong)
    const paired = await fx.run(['sessions', 'revoke', 'hal@example.com', b?.session.id ?? ''])
    expect(paired.code).toBe(0)
    await withContext(async (context) => {
      expect(await context.sessions.validateToken(a?.token)).toBeNull()
      expect(await context.sessions.validateToken(b?.token)).toBeNull()
      expect(await context.sessions.validateToken(c?.token)).not.toBeNull()
    })
    const gone = await fx.run(['sessions', 'revoke', a?.session.id ?? ''])
    expect(gone.code).toBe(1)
    expect(gone.stderr).toMatch(/no live session .*\(not_found\)/)
    const all = await fx.run(['sessions', 'revoke', id])
    expect(all.stdout).toBe('revoked 1 session(s) of hal@example.com\n')
    await withContext(async (context) => {
      expect(await context.sessions.validateToken(c?.token)).toBeNull()
      expect(await context.sessions.validateToken(d?.token)).not.toBeNull()
    })
  })
})

describe('tessera keys', () => {
  interface KeysJson {
    algorithm: string
    current: string
    previous?: string
    keys: Array<Record<string, unknown>>
  }

  it('lists the signing keys without material, and rotate changes the current kid', async () => {
    const listed = await fx.run(['keys', 'list', '--json'])
    expect(listed.code).toBe(0)
    const before = JSON.parse(listed.stdout) as KeysJson
    expect(before.algorithm).toBe('EdDSA')
    expect(before.keys.map((key) => key.status).sort()).toEqual(['current', 'next'])
    for (const key of before.keys) {
      expect(Object.keys(key).sort()).toEqual(
        ['activatedAt', 'ageSeconds', 'alg', 'createdAt', 'kid', 'retiredAt', 'status'].sort(),
      )
    }
    const next = String(before.keys.find((key) => key.status === 'next')?.kid)
    const rotated = await fx.run(['keys', 'rotate', '--json'])
    expect(rotated.code).toBe(0)
    const rotation = JSON.parse(rotated.stdout) as KeysJson
    expect(rotation.previous).toBe(before.current)
    expect(rotation.current).toBe(next)
    // A fresh open (as the server would) reads the rotated keys back: same sealing.
    const after = JSON.parse((await fx.run(['keys', 'list', '--json'])).stdout) as KeysJson
    expect(after.current).toBe(next)
    expect(after.current).not.toBe(before.current)
    expect(after.keys.find((key) => key.kid === before.current)?.status).toBe('previous')
    for (const text of [listed.stdout, rotated.stdout]) {
      expect(text).not.toMatch(/"d"|"x"|sealed|private/i)
    }
    const table = await fx.run(['keys', 'list'])
    expect(table.stdout).toMatch(/^KID\s+ALG\s+STATUS\s+CREATED\s+ACTIVATED\s+RETIRED\n/)
    expect(table.stdout).toContain(next)
    const text = await fx.run(['keys', 'rotate'])
    expect(text.stdout).toMatch(new RegExp(`^rotated: current key is now \\S+ \\(was ${next}\\)`))
  })

  it("opens keys with the server's own loadKeys, so each opens the other's keys", async () => {
    const serverKeys = (context: CliContext): Promise<KeySet> =>
      loadKeys(context.config, context.keyring, context.backends)
    const first = await withContext(async (context) => (await serverKeys(context)).signingKey().kid)
    const rotated = JSON.parse((await fx.run(['keys', 'rotate', '--json'])).stdout) as KeysJson
    expect(rotated.previous).toBe(first)
    const after = await withContext(async (context) => (await serverKeys(context)).signingKey().kid)
    expect(after).toBe(rotated.current)
  })

  it('with HS256 lists the secret-derived key and refuses to rotate (exit 1, one line)', async () => {
    fx.env.TESSERA_JWT_ALG = 'HS256'
    const listed = JSON.parse((await fx.run(['keys', 'list', '--json'])).stdout) as KeysJson
    expect(listed.keys).toHaveLength(1)
    expect(listed.keys[0]).toMatchObject({ alg: 'HS256', status: 'current', createdAt: null })
    const rotate = await fx.run(['keys', 'rotate'])
    expect(rotate.code).toBe(1)
    expectOneLineError(rotate)
    expect(rotate.stderr).toMatch(/TESSERA_SECRET/)
    expect(rotate.stderr).not.toContain(fx.env.TESSERA_SECRET)
  })
})
