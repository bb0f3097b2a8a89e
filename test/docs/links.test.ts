import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative, sep } from 'node:path'
import { describe, expect, it } from 'vitest'

// The README and docs are read in the repository and, for README.md and docs/, inside the
// installed package (npm "files"). A relative link must lead to a file that exists; from docs/
// it must also stay inside the package, and nothing may point at the specification texts the
// project was written from (shared/API.md, DESIGN.md, STYLE.md), which ship with neither.

const ROOT = join(import.meta.dirname, '../..')
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] }

function markdownFiles(): string[] {
  const docs = readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => join('docs', name))
  const examples = readdirSync(join(ROOT, 'examples'))
    .map((name) => join('examples', name, 'README.md'))
    .filter((path) => existsSync(join(ROOT, path)))
  return ['README.md', 'CHANGELOG.md', ...docs, ...examples]
}

/** Relative link targets of a markdown text, without `#fragment`. */
function relativeLinks(text: string): string[] {
  const withoutCode = text.replace(/```[\s\S]*?```/g, '')
  return [...withoutCode.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((match) => match[1] ?? '')
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target) && !target.startsWith('#'))
    .map((target) => target.split('#')[0] ?? '')
    .filter((target) => target !== '')
}

function shipped(path: string): boolean {
  return pkg.files.some((entry) => path === entry || path.startsWith(`${entry}${sep}`))
}

describe('links in README.md, CHANGELOG.md, docs/ and examples/', () => {
  it.each(markdownFiles())('%s: every relative link leads to a file of the repository', (file) => {
    const text = readFileSync(join(ROOT, file), 'utf8')
    for (const target of relativeLinks(text)) {
      const resolved = normalize(join(dirname(file), target))
      expect(resolved.startsWith('..'), `${file} links outside the repository: ${target}`).toBe(
        false,
      )
      expect(existsSync(join(ROOT, resolved)), `${file}: ${target} does not exist`).toBe(true)
      if (file.startsWith(`docs${sep}`)) {
        expect(shipped(resolved), `${file}: ${target} is not in the package ("files")`).toBe(true)
      }
    }
  })

  it.each(markdownFiles().filter((file) => file !== join('docs', 'decisions.md')))(
    '%s: names no specification file outside the repository',
    (file) => {
      const text = readFileSync(join(ROOT, file), 'utf8')
      expect(text).not.toMatch(/shared\/(API|DESIGN|STYLE)\.md/)
      expect(text).not.toMatch(/\b(DESIGN|STYLE)\.md\b/)
      expect(text, `${file}: say docs/api.md for the HTTP API`).not.toMatch(/(?<![\w/])API\.md/)
    },
  )

  it('is checked on real files', () => {
    expect(relative(ROOT, join(ROOT, 'docs', 'api.md'))).toBe(join('docs', 'api.md'))
    expect(markdownFiles().length).toBeGreaterThan(15)
  })
})
