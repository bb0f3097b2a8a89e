import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

// Each entry of package.json "exports" must name files the build makes: tsc compiles src/X.ts to
// dist/X.js and dist/X.d.ts (tsconfig.build.json: rootDir src, outDir dist), so the source must
// exist and load. A wrong path here is a broken `import 'tessera/...'` for every user.

const root = process.cwd()
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, string | { types: string; default: string }>
}
const entries = Object.entries(pkg.exports).filter(([name]) => name !== './package.json')

/** `./dist/a/b.js` → `src/a/b.ts`. */
function sourceOf(target: string): string {
  const match = /^\.\/dist\/(.+)\.js$/.exec(target)
  if (match?.[1] === undefined) throw new Error(`${target} is not ./dist/<path>.js`)
  return join('src', `${match[1]}.ts`)
}

describe('package.json exports', () => {
  it('has the entry points of DESIGN.md, tessera-auth/server included', () => {
    expect(entries.map(([name]) => name).sort()).toEqual(
      [
        '.',
        './auth',
        './express',
        './express-session',
        './fastify',
        './hono',
        './jwt',
        './next',
        './password',
        './server',
        './stores/memory',
        './stores/postgres',
        './stores/redis',
        './stores/sqlite',
        './testing',
      ].sort(),
    )
  })

  it.each(entries)('%s: types and code come from one source file that loads', async (_, target) => {
    if (typeof target === 'string') throw new Error('an entry needs "types" and "default"')
    const source = sourceOf(target.default)
    expect(target.types).toBe(target.default.replace(/\.js$/, '.d.ts'))
    expect(existsSync(join(root, source)), source).toBe(true)
    const loaded = (await import(join(root, source))) as Record<string, unknown>
    expect(Object.keys(loaded).length, source).toBeGreaterThan(0)
  })
})
