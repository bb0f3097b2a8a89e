import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

// The Next.js `lib/session.ts` a reader copies from README.md or docs/adapters-next.md is the
// file that examples/next uses and that test/adapters/next.test.ts builds (without
// TESSERA_SECRET) and runs as test/fixtures/next-app/lib/documented-session.ts: one text, four
// places, kept equal here.

const ROOT = join(import.meta.dirname, '../..')
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8')

/** The ```ts block of a markdown file that starts with `// lib/session.ts`. */
function snippet(markdown: string): string | undefined {
  for (const match of markdown.matchAll(/```ts\n([\s\S]*?)```/g)) {
    if (match[1]?.startsWith('// lib/session.ts\n') === true) return match[1]
  }
  return undefined
}

describe('the Next.js lib/session.ts snippet', () => {
  const file = read('examples/next/lib/session.ts')

  it.each(['README.md', 'docs/adapters-next.md'])(
    '%s shows examples/next/lib/session.ts whole',
    (doc) => {
      expect(snippet(read(doc))).toBe(file)
    },
  )

  it('is the file the Next.js test builds and runs', () => {
    expect(read('test/fixtures/next-app/lib/documented-session.ts')).toBe(file)
  })

  it('builds nothing at import time and uses no undefined store', () => {
    // Every tessera object is made inside a function; the store is constructed in the file.
    expect(file).toMatch(/lazy\(\(\) =>/)
    expect(file).not.toMatch(/^export const \w+ = create/m)
    expect(file).toContain('createSQLiteStore(new Database(')
  })
})
