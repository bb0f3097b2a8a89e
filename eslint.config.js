import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'test-results/', 'data/', '**/.next/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: {
          allowDefaultProject: ['*.js', 'bin/*.js', 'examples/passkeys/public/*.js'],
        },
      },
    },
    rules: {
      // SECURITY: an un-awaited check is a bypass.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    // The core fence (STYLE.md, DESIGN.md "Layers"): src/core imports only src/core, node:crypto
    // and web globals, so it stays pure: no I/O, no framework, no process.env. Buffer is allowed:
    // it is what node:crypto takes and returns. test/fences.test.ts checks these rules bite.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!\\./[a-z0-9-]+\\.js$|node:crypto$)',
              message:
                'src/core imports only src/core (./name.js), node:crypto and web globals: configuration comes in as arguments',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        ...['process', 'require', 'module', '__dirname', '__filename', 'global'].map((name) => ({
          name,
          message: 'src/core takes configuration as arguments; the server and CLI read the process',
        })),
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: 'ImportExpression',
          message: 'src/core loads no module at run time (the core fence)',
        },
      ],
    },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
)
