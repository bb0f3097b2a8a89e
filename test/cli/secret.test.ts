// The real command: build once, then run `node bin/tessera.js secret` as a user would.
import { execFileSync, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))

function tessera(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return tesseraWith({}, ...args)
}

function tesseraWith(
  options: { env?: Record<string, string>; input?: string; cwd?: string },
  ...args: string[]
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [join(root, 'bin/tessera.js'), ...args], {
    cwd: options.cwd ?? root,
    encoding: 'utf8',
    timeout: 20_000,
    ...(options.env === undefined ? {} : { env: { PATH: process.env.PATH ?? '', ...options.env } }),
    ...(options.input === undefined ? {} : { input: options.input }),
  })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

// One build for every subprocess test in this file.
beforeAll(() => {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'pipe',
  })
}, 120_000)

describe('tessera secret', () => {
  it('prints 32 random bytes as 43 base64url characters, and says where to put them', () => {
    const first = tessera('secret')
    const second = tessera('secret')
    expect(first.status).toBe(0)
    expect(first.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/)
    expect(Buffer.from(first.stdout.trim(), 'base64url')).toHaveLength(32)
    expect(first.stdout).not.toBe(second.stdout)
    expect(first.stderr).toMatch(/TESSERA_SECRET/)
  })

  it('prints 64 hex characters with --hex', () => {
    const result = tessera('secret', '--hex')
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/^[0-9a-f]{64}\n$/)
  })

  it('exits 2 on an unknown option, with one line on stderr and nothing on stdout', () => {
    const result = tessera('secret', '--base32')
    expect(result.status).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
    expect(result.stderr).toMatch(/unknown option --base32/)
  })

  it('exits 2 on an unknown command', () => {
    expect(tessera('nope').status).toBe(2)
  })
})

describe('tessera user, as a subprocess on a SQLite file', () => {
  it('creates a user from piped stdin, lists it as JSON, and exits 1 on an unknown user', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-bin-'))
    try {
      const env = {
        NODE_ENV: 'test',
        DATABASE_URL: `sqlite:${join(dir, 't.db')}`,
        TESSERA_SECRET: randomBytes(32).toString('base64url'),
      }
      const created = tesseraWith(
        { env, cwd: dir, input: 'correct horse battery staple\n' },
        'user',
        'create',
        'bin@example.com',
      )
      expect(created.stderr).toBe('')
      expect(created.status).toBe(0)
      const listed = tesseraWith({ env, cwd: dir }, 'user', 'list', '--json')
      expect(listed.status).toBe(0)
      const body = JSON.parse(listed.stdout) as { users: Array<{ email: string }>; total: number }
      expect(body.total).toBe(1)
      expect(body.users[0]?.email).toBe('bin@example.com')
      const unknown = tesseraWith({ env, cwd: dir }, 'user', 'disable', 'nobody@example.com')
      expect(unknown.status).toBe(1)
      expect(unknown.stdout).toBe('')
      expect(unknown.stderr.trim().split('\n')).toHaveLength(1)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
