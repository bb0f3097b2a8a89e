import { readFileSync } from 'node:fs'
import path from 'node:path'
import { ESLint, type Linter } from 'eslint'
import ts from 'typescript'
import tseslint from 'typescript-eslint'
import { describe, expect, it } from 'vitest'

// The layer fences of DESIGN.md, checked mechanically:
// - src/core imports only src/core, node:crypto and web globals (an ESLint rule; this file checks
//   the rule is configured and bites);
// - src/server and src/cli use only what package.json "exports" expose: every name they import
//   from outside their own folder must be exported by a public entry point, so the server is one
//   client of the library like any user's app.

const root = process.cwd()

describe('the core fence (eslint.config.js)', () => {
  async function lintCore(text: string): Promise<string[]> {
    // The rules as the repository's config gives them for a file in src/core, run without type
    // information on a probe text (the probe is no file of the project).
    const config = (await new ESLint({ cwd: root }).calculateConfigForFile(
      'src/core/errors.ts',
    )) as Linter.Config
    const rules: Linter.RulesRecord = {}
    for (const name of ['no-restricted-imports', 'no-restricted-globals', 'no-restricted-syntax']) {
      const rule = config.rules?.[name]
      expect(rule, `${name} is configured for src/core`).toBeDefined()
      if (rule !== undefined) rules[name] = rule
    }
    const eslint = new ESLint({
      cwd: root,
      overrideConfigFile: true,
      overrideConfig: [
        {
          files: ['**/*.ts'],
          languageOptions: { parser: tseslint.parser },
          rules,
        },
      ],
    })
    const [result] = await eslint.lintText(text, { filePath: 'src/core/fence-probe.ts' })
    return (result?.messages ?? []).map((message) => `${message.ruleId}: ${message.message}`)
  }

  it('refuses imports from outside core, Node modules other than node:crypto, frameworks and process', async () => {
    const refused = [
      "import { readFileSync } from 'node:fs'",
      "import { readFileSync } from 'fs'",
      "import type { Context } from 'hono'",
      "import { createApp } from '../server/app.js'",
      "import { createAccounts } from '../auth/accounts.js'",
      "export { createMemoryStore } from '../stores/memory.js'",
      "import { x } from './nested/x.js'",
      'const env = process.env.TESSERA_SECRET',
      "const fs = await import('node:fs')",
      "const fs = require('node:fs')",
    ]
    for (const text of refused) {
      expect((await lintCore(text)).length, text).toBeGreaterThan(0)
    }
  })

  it('allows core modules, node:crypto and web globals', async () => {
    const allowed = [
      "import { TesseraError } from './errors.js'",
      "import type { Keyring } from './keyring.js'",
      "import { createHmac } from 'node:crypto'",
      "export { readCookie } from './cookie.js'",
      'const url = new URL("https://a.example"); setTimeout(() => undefined, 1); new TextEncoder()',
    ]
    for (const text of allowed) expect(await lintCore(text), text).toEqual([])
  })
})

/** The source file of each package.json export (`./dist/a/b.js` → `src/a/b.ts`). */
function entryFiles(): string[] {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    exports: Record<string, string | { default: string }>
  }
  return Object.values(pkg.exports)
    .filter((target): target is { default: string } => typeof target !== 'string')
    .map((target) =>
      path.join(root, target.default.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts')),
    )
}

function program(): ts.Program {
  const configPath = path.join(root, 'tsconfig.json')
  const { config } = ts.readConfigFile(configPath, (file) => ts.sys.readFile(file)) as {
    config: unknown
  }
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, root)
  const files = parsed.fileNames.filter((file) =>
    file.startsWith(path.join(root, 'src') + path.sep),
  )
  return ts.createProgram(files, { ...parsed.options, noEmit: true })
}

/** Where a file's own layer is: src/server or src/cli. */
function layerOf(file: string): string {
  const relative = path.relative(path.join(root, 'src'), file)
  return path.join(root, 'src', relative.split(path.sep)[0] ?? '')
}

describe('the server and the CLI use only the public entry points', () => {
  it('imports nothing from outside their folder that no package.json export exposes', () => {
    const prog = program()
    const checker = prog.getTypeChecker()
    const entries = new Set(entryFiles())
    const resolve = (symbol: ts.Symbol): ts.Symbol =>
      symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol

    // Every declaration a public entry point exports, aliases followed to the original.
    const exposed = new Set<ts.Symbol>()
    for (const file of entries) {
      const source = prog.getSourceFile(file)
      expect(source, file).toBeDefined()
      const moduleSymbol = source === undefined ? undefined : checker.getSymbolAtLocation(source)
      if (moduleSymbol === undefined) continue
      for (const symbol of checker.getExportsOfModule(moduleSymbol)) exposed.add(resolve(symbol))
    }

    const violations: string[] = []
    for (const source of prog.getSourceFiles()) {
      const file = source.fileName
      const isServer = file.startsWith(path.join(root, 'src/server') + path.sep)
      const isCli = file.startsWith(path.join(root, 'src/cli') + path.sep)
      if (!isServer && !isCli) continue
      const own = layerOf(file)
      const where = (node: ts.Node): string =>
        `${path.relative(root, file)}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`

      const target = (specifier: ts.Expression): string | null => {
        if (!ts.isStringLiteral(specifier) || !specifier.text.startsWith('.')) return null
        const resolved = ts.resolveModuleName(
          specifier.text,
          file,
          prog.getCompilerOptions(),
          ts.sys,
        ).resolvedModule?.resolvedFileName
        if (resolved === undefined) return null
        return resolved.startsWith(own + path.sep) ? null : resolved
      }

      const visit = (node: ts.Node): void => {
        // import(...) of another layer: only an entry point (what it hands out is not tracked).
        if (
          ts.isCallExpression(node) &&
          node.expression.kind === ts.SyntaxKind.ImportKeyword &&
          node.arguments[0] !== undefined
        ) {
          const resolved = target(node.arguments[0])
          if (resolved !== null && !entries.has(resolved)) {
            violations.push(`${where(node)} import() of ${path.relative(root, resolved)}`)
          }
        }
        ts.forEachChild(node, visit)
      }
      visit(source)

      for (const statement of source.statements) {
        const specifier =
          ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)
            ? statement.moduleSpecifier
            : undefined
        if (specifier === undefined) continue
        const resolved = target(specifier)
        if (resolved === null) continue
        const names: ts.Identifier[] = []
        let whole = false
        if (ts.isImportDeclaration(statement)) {
          const clause = statement.importClause
          if (clause === undefined) whole = true
          else {
            if (clause.name !== undefined) names.push(clause.name)
            const bindings = clause.namedBindings
            if (bindings !== undefined && ts.isNamespaceImport(bindings)) whole = true
            if (bindings !== undefined && ts.isNamedImports(bindings)) {
              for (const element of bindings.elements) names.push(element.name)
            }
          }
        } else if (ts.isExportDeclaration(statement)) {
          const clause = statement.exportClause
          if (clause !== undefined && ts.isNamedExports(clause)) {
            for (const element of clause.elements) {
              if (ts.isIdentifier(element.name)) names.push(element.name)
            }
          } else whole = true
        }
        if (whole && !entries.has(resolved)) {
          violations.push(`${where(statement)} takes all of ${path.relative(root, resolved)}`)
        }
        for (const name of names) {
          const symbol = checker.getSymbolAtLocation(name)
          if (symbol === undefined) continue
          if (!exposed.has(resolve(symbol))) {
            violations.push(
              `${where(name)} ${name.text} from ${path.relative(root, resolved)} is in no package.json export`,
            )
          }
        }
      }
    }
    expect(violations).toEqual([])
  }, 60_000)
})
