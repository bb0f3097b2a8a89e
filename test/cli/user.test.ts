import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { Client, startTestServer } from '../server/api-harness.js'

const ROOT = resolve(import.meta.dirname, '../..')
const TSX = pathToFileURL(join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href
const CLI = join(ROOT, 'test', 'server', 'fixtures', 'cli.ts')
const PASSWORD = 'correct horse battery staple'
const dirs: string[] = []

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function run(
  cwd: string,
  args: string[],
  stdin = '',
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test' },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.stdin.end(stdin)
    child.once('exit', (code) => done({ code, stdout, stderr }))
  })
}

// Each case spawns the CLI several times (tsx compiles it each time): slow on a loaded box.
describe('tessera user', { timeout: 120_000 }, () => {
  it('create --admin makes an admin the server accepts, and no setup link is printed', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'tessera-cli-'))
    dirs.push(cwd)
    const created = await run(
      cwd,
      ['user', 'create', 'Root@Example.com', '--admin', '--json'],
      `${PASSWORD}\n`,
    )
    // The only thing on stderr is the notice that a development secret was generated.
    expect(created.stderr).not.toMatch(/error|failed/i)
    expect(created.code).toBe(0)
    const { user } = JSON.parse(created.stdout) as {
      user: { email: string; isAdmin: boolean; password?: string; passwordHash?: string }
    }
    expect(user).toMatchObject({ email: 'root@example.com', isAdmin: true })
    expect(user.password).toBeUndefined()
    expect(user.passwordHash).toBeUndefined()

    const again = await run(cwd, ['user', 'create', 'root@example.com'], `${PASSWORD}\n`)
    expect(again.code).toBe(1)
    expect(again.stderr.trim().split('\n')).toHaveLength(1)
    expect(again.stderr).toContain('already exists')

    const weak = await run(cwd, ['user', 'create', 'weak@example.com'], 'short\n')
    expect(weak.code).toBe(1)
    expect(weak.stderr).toContain('at least 12 characters')

    const listed = await run(cwd, ['user', 'list', '--json'])
    expect(listed.code).toBe(0)
    expect(JSON.parse(listed.stdout)).toMatchObject({
      total: 1,
      users: [{ email: 'root@example.com', isAdmin: true }],
    })

    const server = await startTestServer({ kind: 'sqlite' }, {}, { cwd })
    try {
      expect(server.log.lines().some((line) => 'setupUrl' in line)).toBe(false)
      const login = await new Client(server).request('POST', '/auth/login', {
        json: { email: 'root@example.com', password: PASSWORD },
      })
      expect(login.status).toBe(200)
      expect(((await login.json()) as { user: { isAdmin: boolean } }).user.isAdmin).toBe(true)
    } finally {
      await server.stop()
    }

    const disabled = await run(cwd, ['user', 'disable', 'root@example.com'])
    expect(disabled.code).toBe(0)
    const unknown = await run(cwd, ['user', 'disable', 'nobody@example.com'])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('no user')
  })

  it('--help exits 0 and an unknown subcommand exits 2 with one line', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'tessera-cli-'))
    dirs.push(cwd)
    const help = await run(cwd, ['user', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('tessera user')
    const bad = await run(cwd, ['user', 'explode'])
    expect(bad.code).toBe(2)
    expect(bad.stderr.trim().split('\n')).toHaveLength(1)
  })
})
