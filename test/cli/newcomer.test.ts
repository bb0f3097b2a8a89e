// The CLI items of issue 19: --version, enable / delete / promote / demote (the admin panel's
// actions, with the same audit events), re-asking for a password on a terminal, and `serve`
// naming the flag or the port that is the problem in one line.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { pathToFileURL } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openCliContext, type CliContext } from '../../src/cli/context.js'
import { main } from '../../src/cli/main.js'
import { readNewPassword } from '../../src/cli/password-input.js'
import { sqliteFixture, type CliFixture } from './cli-harness.js'

const ROOT = join(import.meta.dirname, '../..')
const PASSWORD = 'correct horse battery staple'

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
  expect(result.code, result.stderr).toBe(0)
  return (JSON.parse(result.stdout) as { user: { id: string } }).user.id
}

describe('tessera --version', () => {
  it("prints the package's name and version", async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      name: string
      version: string
    }
    for (const flag of ['--version', '-v']) {
      const result = await fx.run([flag])
      expect(result).toEqual({ code: 0, stdout: `${pkg.name} ${pkg.version}\n`, stderr: '' })
    }
    expect((await fx.run(['--help'])).stdout).toContain('tessera --version')
  })
})

describe('tessera user enable | delete | promote | demote', () => {
  it('enable lets a disabled account sign in again, recorded as user_enabled', async () => {
    const id = await createUser('ada@example.com')
    expect((await fx.run(['user', 'disable', 'ada@example.com'])).code).toBe(0)
    const enabled = await fx.run(['user', 'enable', 'ada@example.com'])
    expect(enabled).toMatchObject({ code: 0, stdout: 'enabled ada@example.com; it can sign in\n' })
    expect((await fx.run(['user', 'enable', id])).stdout).toBe(
      'ada@example.com was already enabled\n',
    )
    await withContext(async (context) => {
      expect((await context.accounts.findUserById(id))?.isActive).toBe(true)
      const types = (await context.audit.list({ userId: id })).map((event) => event.type)
      expect(types).toContain('user_disabled')
      expect(types).toContain('user_enabled')
    })
  })

  it('delete needs --yes, then removes the account and ends its sessions and refresh tokens', async () => {
    const id = await createUser('bob@example.com')
    const token = await withContext(async (context) => {
      await context.backends.refreshStore.create({
        id: 'family-of-bob',
        userId: id,
        version: 1,
        createdAt: Date.now(),
        lastSeenAt: Date.now(),
        expiresAt: Date.now() + 60_000,
        absoluteExpiresAt: Date.now() + 60_000,
        data: {},
        meta: {},
      })
      return (await context.sessions.create(id)).token
    })
    const refused = await fx.run(['user', 'delete', 'bob@example.com'])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/^tessera user delete: .*add --yes to confirm.*\n$/)
    await withContext(async (context) => {
      expect(await context.accounts.findUserById(id)).not.toBeNull()
    })

    const deleted = await fx.run(['user', 'delete', 'bob@example.com', '--yes'])
    expect(deleted).toMatchObject({
      code: 0,
      stdout: 'deleted bob@example.com; ended 1 session(s) and 1 refresh token family(ies)\n',
    })
    await withContext(async (context) => {
      expect(await context.accounts.findUserById(id)).toBeNull()
      expect(await context.sessions.validateToken(token)).toBeNull()
      expect(await context.backends.refreshStore.listByUser(id)).toEqual([])
      const types = (await context.audit.list({ userId: id })).map((event) => event.type)
      expect(types).toContain('user_deleted')
    })
    const again = await fx.run(['user', 'delete', 'bob@example.com', '--yes'])
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/no user .*\(not_found\)\n$/)
  })

  it('promote and demote set the administrator flag, recorded as permission_changed', async () => {
    const id = await createUser('cy@example.com')
    expect((await fx.run(['user', 'promote', 'cy@example.com'])).stdout).toBe(
      'cy@example.com is now an administrator\n',
    )
    expect((await fx.run(['user', 'promote', id])).stdout).toBe(
      'cy@example.com is already an administrator\n',
    )
    await withContext(async (context) => {
      expect((await context.accounts.findUserById(id))?.isAdmin).toBe(true)
    })
    const demoted = await fx.run(['user', 'demote', 'cy@example.com'])
    expect(demoted.code).toBe(0)
    expect(demoted.stdout).toBe('cy@example.com is no longer an administrator\n')
    // the last administrator is gone: said, not refused (the CLI is how one gets one back)
    expect(demoted.stderr).toMatch(/no active administrator is left/)
    await withContext(async (context) => {
      expect((await context.accounts.findUserById(id))?.isAdmin).toBe(false)
      const changes = (await context.audit.list({ userId: id })).filter(
        (event) => event.type === 'permission_changed',
      )
      expect(changes).toHaveLength(2)
    })
  })

  it('exits 2 with one line without a user, and 1 for an unknown one', async () => {
    for (const sub of ['enable', 'delete', 'promote', 'demote']) {
      const missing = await fx.run(['user', sub])
      expect(missing.code, sub).toBe(2)
      expect(missing.stderr.trim().split('\n')).toHaveLength(1)
      const unknown = await fx.run([
        'user',
        sub,
        'nobody@example.com',
        ...(sub === 'delete' ? ['--yes'] : []),
      ])
      expect(unknown.code, sub).toBe(1)
      expect(unknown.stderr).toMatch(/no user "nobody@example\.com" \(not_found\)\n$/)
    }
  })
})

/** A fake terminal typed into after each prompt (raw mode, one character at a time). */
function terminal(answers: string[]): {
  io: Parameters<typeof readNewPassword>[0]
  prompts: string[]
} {
  const stdin = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => undefined })
  const prompts: string[] = []
  let next = 0
  return {
    prompts,
    io: {
      stdin,
      prompt: (text: string) => {
        prompts.push(text)
        if (!text.endsWith(': ')) return
        const answer = answers[next++]
        if (answer !== undefined) setImmediate(() => stdin.write(answer))
      },
    },
  }
}

describe('the password prompt', () => {
  const policy = { minLength: 12, maxLength: 128 }

  it('asks again when the two entries differ or the policy refuses the password', async () => {
    const { io, prompts } = terminal([
      `${PASSWORD}\r`,
      'correct horse battery stapel\r',
      'short\r',
      'short\r',
      `${PASSWORD}\r`,
      `${PASSWORD}\r`,
    ])
    expect(await readNewPassword(io, { fromStdin: false, policy })).toBe(PASSWORD)
    expect(prompts.filter((text) => text.endsWith('try again.\n'))).toEqual([
      'The passwords differ; try again.\n',
      'The password must have at least 12 characters; try again.\n',
    ])
  })

  it('gives up after three rounds, saying why', async () => {
    const rounds = ['one', 'two', 'three'].flatMap((word) => [
      `${word} long enough A\r`,
      `${word} long enough B\r`,
    ])
    const { io, prompts } = terminal(rounds)
    await expect(readNewPassword(io, { fromStdin: false, policy })).rejects.toThrow(
      'the passwords differ (asked 3 times)',
    )
    expect(prompts.filter((text) => text === 'New password: ')).toHaveLength(3)
  })
})

/** Runs the CLI as a process (tsx on the sources), with its own environment. */
function runProcess(
  args: string[],
  env: Record<string, string>,
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const tsx = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href
  const child = spawn(
    process.execPath,
    ['--import', tsx, join(ROOT, 'test/server/fixtures/cli.ts'), ...args],
    { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })))
}

describe('tessera serve', () => {
  it('names the flag when --port is not a port', async () => {
    for (const args of [['--port', 'abc'], ['--port=70000'], ['--port']]) {
      const result = await main(['serve', ...args], {
        env: fx.env,
        cwd: fx.dir,
        out: () => {},
        err: (line) => {
          expect(line).toMatch(/^tessera serve: --port (must be a port number|needs a value)/)
        },
      })
      expect(result, args.join(' ')).toBe(2)
    }
  })

  it('says in one line that the port is in use, and exits 1', async () => {
    const busy: Server = createServer()
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
    const port = (busy.address() as AddressInfo).port
    try {
      const result = await runProcess(
        ['serve', '--port', String(port)],
        { ...fx.env, HOST: '127.0.0.1', LOG_FORMAT: 'json', LOG_LEVEL: 'error' },
        fx.dir,
      )
      expect(result.code).toBe(1)
      expect(result.stderr).toBe(
        `tessera serve: port ${port} is already in use (127.0.0.1 port ${port}); stop the other server or pick another port with --port or PORT\n`,
      )
    } finally {
      await new Promise((resolve) => busy.close(resolve))
    }
  }, 60_000)
})
