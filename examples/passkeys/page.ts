// The passkey page of examples/passkeys: its files and the route that serves them.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Env, Hono } from 'hono'

const here = dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)

/** The files of the page, with their types: read once, served as they are. */
export function passkeyPageFiles(): Map<string, { type: string; body: string }> {
  // The package exports only its modules; its UMD bundle (the `unpkg` file) sits beside them.
  const browserBundle = join(
    dirname(dirname(require.resolve('@simplewebauthn/browser'))),
    'dist/bundle/index.umd.min.js',
  )
  const read = (file: string): string => readFileSync(file, 'utf8')
  return new Map([
    [
      '/passkeys',
      { type: 'text/html; charset=utf-8', body: read(join(here, 'public/index.html')) },
    ],
    ['/passkeys/app.js', { type: 'text/javascript', body: read(join(here, 'public/app.js')) }],
    ['/passkeys/style.css', { type: 'text/css', body: read(join(here, 'public/style.css')) }],
    ['/passkeys/simplewebauthn-browser.js', { type: 'text/javascript', body: read(browserBundle) }],
  ])
}

// Scripts and styles from this origin only: no inline script, as on every tessera page.
const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

/** Registers GET /passkeys and its files on the server's app (`startServer`'s `routes`). */
export function passkeyPage<E extends Env>(app: Hono<E>): void {
  const files = passkeyPageFiles()
  for (const [path, file] of files) {
    app.get(path, (c) =>
      c.body(file.body, 200, { 'Content-Type': file.type, 'Content-Security-Policy': PAGE_CSP }),
    )
  }
}
