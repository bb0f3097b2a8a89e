import { TesseraError } from '../../core/errors.js'

/**
 * Imports an optional peer dependency (`better-sqlite3`, `pg`, `redis`) only when it is needed,
 * so an application on SQLite needs neither `pg` nor `redis` installed, and one on PostgreSQL no
 * `better-sqlite3`. When the package itself is missing, the error says which one to install and
 * why; any other failure (a broken install, a missing dependency of the driver) passes through
 * unchanged, so it is not misreported as "not installed".
 *
 * @param load the `import()` of the package, written at the call site so bundlers see it
 * @param name the package name, as `npm install` takes it
 * @param why what needed it, e.g. `DATABASE_URL names SQLite` or `createDatabase('sqlite:…')`
 * @throws TesseraError `config_invalid` "<why>: install the <name> package (npm install <name>)"
 * @example
 * ```ts
 * const { default: pg } = await loadOptionalPeer(() => import('pg'), 'pg', 'a postgres:// URL')
 * ```
 */
export async function loadOptionalPeer<T>(
  load: () => Promise<T>,
  name: string,
  why: string,
): Promise<T> {
  try {
    return await load()
  } catch (error) {
    if (!isMissingPackage(error, name)) throw error
    throw new TesseraError(
      'config_invalid',
      `${why}: install the ${name} package (npm install ${name})`,
      { cause: error },
    )
  }
}

/** True when `error` says that package `name` itself cannot be found (ESM or CommonJS). */
function isMissingPackage(error: unknown, name: string): boolean {
  if (typeof error !== 'object' || error === null) return false
  const { code, message } = error as { code?: unknown; message?: unknown }
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return false
  // "Cannot find package 'pg' imported from …" (ESM), "Cannot find module 'pg'" (CommonJS).
  // A driver that is there but misses one of its own dependencies names that one instead.
  return typeof message !== 'string' || message.includes(`'${name}'`)
}
