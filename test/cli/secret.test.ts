// The real command: build once, then run `node bin/tessera.js secret` as a user would.
import { execFileSync, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))

function tessera(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['bin/tessera.js', ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 20_000,
  })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

describe('tessera secret', () => {
  beforeAll(() => {
    execFileSync(
      process.execPath,
      ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'],
      {
        cwd: root,
        stdio: 'pipe',
      },
    )
  }, 120_000)

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
