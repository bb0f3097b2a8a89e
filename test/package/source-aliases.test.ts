import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

// The examples and the Next.js fixture import `tessera-auth/...` by name, as a user's app does.
// In this repository the names resolve to src/ through tsconfig "paths" (tsc, ESLint, tsx with
// TSX_TSCONFIG_PATH; next.config.ts derives webpack aliases from package.json itself). Each
// map must be exactly package.json "exports" with dist/X.js read as src/X.ts, or an example
// could import a name users cannot, or miss one they can.

const ROOT = join(import.meta.dirname, '../..')
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  exports: Record<string, string | { default: string }>
}

function expected(prefix: string): Record<string, string[]> {
  const paths: Record<string, string[]> = {}
  for (const [name, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') continue
    const source = target.default.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts')
    paths[`tessera-auth${name.slice(1)}`] = [`${prefix}src/${source}`]
  }
  return paths
}

describe('tsconfig paths for tessera-auth/... mirror package.json exports', () => {
  it.each([
    ['examples/tsconfig.json', '../'],
    ['examples/next/tsconfig.json', '../../'],
    ['test/fixtures/next-app/tsconfig.json', '../../../'],
  ])('%s', (file, prefix) => {
    const config = JSON.parse(readFileSync(join(ROOT, file), 'utf8')) as {
      compilerOptions: { paths?: Record<string, string[]> }
    }
    expect(config.compilerOptions.paths).toEqual(expected(prefix))
  })

  it('leaves src/ and the build without them: the library never imports itself by name', () => {
    const root = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as {
      compilerOptions: { paths?: unknown }
      exclude: string[]
    }
    expect(root.compilerOptions.paths).toBeUndefined()
    expect(root.exclude).toContain('examples')
  })
})
