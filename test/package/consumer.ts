import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { promisify } from 'node:util'

// A consumer of the package as a user has it: `npm pack`, a new app in a temp dir, the tarball
// and only the packages that app names installed with `npm ci`, then its own commands (tsc,
// node). Offline: the app's lockfile is cut from this repository's, so every package comes from
// npm's cache, which the repository's own `npm ci` filled (same versions, same integrity).

const execFileAsync = promisify(execFile)

/** The repository root. */
export const ROOT = resolve(import.meta.dirname, '../..')

interface LockEntry {
  version?: string
  resolved?: string
  integrity?: string
  license?: string
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  peerDependenciesMeta?: Record<string, { optional?: boolean }>
  optional?: boolean
  [key: string]: unknown
}

interface Lockfile {
  name: string
  version: string
  lockfileVersion: number
  packages: Record<string, LockEntry>
}

/** Runs a command; rejects with its output when it fails. */
export async function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string | undefined>; timeout?: number },
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await execFileAsync(command, [...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      timeout: options.timeout ?? 240_000,
      maxBuffer: 32 * 1024 * 1024,
    })
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; message: string }
    throw new Error(
      `${command} ${args.join(' ')} failed: ${failed.message}\n${failed.stdout ?? ''}\n${failed.stderr ?? ''}`,
    )
  }
}

/** What `npm pack` needs from the repository: the package's files and the build's inputs. */
const PACK_INPUTS = [
  'package.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'README.md',
  'CHANGELOG.md',
  'LICENSE',
  'bin',
  'docs',
  'src',
]

/**
 * `npm pack` as a publish would run it (the `prepack` clean and build included), in a copy of
 * the repository's package files with its node_modules linked, so the working tree's `dist/`,
 * which other test files run, is never cleaned under them. Returns the tarball's path.
 */
export async function packTarball(directory: string): Promise<string> {
  const copy = join(directory, 'source')
  mkdirSync(copy)
  for (const name of PACK_INPUTS) cpSync(join(ROOT, name), join(copy, name), { recursive: true })
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir')
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', directory], {
    cwd: copy,
    env: { npm_config_loglevel: 'error' },
  })
  // npm prints the build's output before the JSON report.
  const json = stdout.slice(stdout.indexOf('\n[') + 1)
  const [report] = JSON.parse(json.startsWith('[') ? json : stdout) as Array<{ filename: string }>
  if (report === undefined) throw new Error(`npm pack reported nothing:\n${stdout}`)
  return join(directory, report.filename)
}

/**
 * The part of this repository's lockfile that `names` (and `tessera-auth`'s own dependencies)
 * need: every package reachable through dependencies, optional dependencies and required peer
 * dependencies, at the same paths, so Node's resolution inside the cut tree is the same.
 */
function cutLockfile(
  lock: Lockfile,
  rootDeps: Record<string, string>,
  tessera: { version: string; integrity: string; filename: string; manifest: LockEntry },
): Lockfile['packages'] {
  const all = lock.packages
  const picked: Lockfile['packages'] = {}
  const queue: Array<{ from: string; name: string }> = []
  const enqueue = (from: string, entry: LockEntry): void => {
    const optionalPeers = entry.peerDependenciesMeta ?? {}
    const names = [
      ...Object.keys(entry.dependencies ?? {}),
      ...Object.keys(entry.optionalDependencies ?? {}),
      ...Object.keys(entry.peerDependencies ?? {}).filter(
        (name) => optionalPeers[name]?.optional !== true,
      ),
    ]
    for (const name of names) queue.push({ from, name })
  }
  for (const name of Object.keys(rootDeps)) {
    if (name !== 'tessera-auth') queue.push({ from: '', name })
  }
  enqueue('node_modules/tessera-auth', tessera.manifest)
  while (queue.length > 0) {
    const { from, name } = queue.shift() as { from: string; name: string }
    // Node's lookup: from/node_modules/name, then each parent's node_modules, then the top.
    let found: string | undefined
    for (let base = from; ;) {
      const candidate = base === '' ? `node_modules/${name}` : `${base}/node_modules/${name}`
      if (all[candidate] !== undefined && candidate !== 'node_modules/tessera-auth') {
        found = candidate
        break
      }
      if (base === '') break
      const cut = base.lastIndexOf('/node_modules/')
      base = cut === -1 ? '' : base.slice(0, cut)
    }
    if (found === undefined) {
      // An optional dependency for another platform is not in the lock; nothing to install.
      continue
    }
    if (picked[found] !== undefined) continue
    const entry = all[found] as LockEntry
    const clean: LockEntry = {}
    for (const [key, value] of Object.entries(entry)) {
      if (key !== 'dev' && key !== 'devOptional' && key !== 'peer') clean[key] = value
    }
    picked[found] = clean
    enqueue(found, entry)
  }
  picked['node_modules/tessera-auth'] = {
    ...tessera.manifest,
    version: tessera.version,
    resolved: `file:${tessera.filename}`,
    integrity: tessera.integrity,
  }
  return picked
}

/** What {@link createConsumerApp} builds. */
export interface ConsumerAppOptions {
  /** The `npm pack` tarball of tessera-auth. */
  tarball: string
  /**
   * Packages the app installs besides tessera-auth, at the versions this repository locks (so
   * they come from npm's cache): e.g. `['express', '@types/express', '@types/node']`.
   */
  packages: readonly string[]
  /** The app's files, path → text (`tsconfig.json`, `src/app.ts`, ...). */
  files: Record<string, string>
  /**
   * Packages with a native addon whose compiled `build/` is copied from this repository's
   * install (same Node, same platform): the offline install skips install scripts, so it
   * builds none itself. @default []
   */
  nativeBuilds?: readonly string[]
}

/** A new app in a temp dir with the tarball and its packages installed. */
export interface ConsumerApp {
  dir: string
  /** Runs `node`, a binary of the app's `node_modules/.bin`, or else the repository's (tsc). */
  exec(command: string, args: readonly string[], env?: Record<string, string>): Promise<string>
  remove(): void
}

/**
 * Makes a new app in a temp dir that depends on the tarball and `packages`, and installs them
 * with `npm ci --offline --ignore-scripts` from a lockfile cut from this repository's.
 * Install scripts are skipped (no native build); pure-JS and prebuilt packages run as usual.
 */
export async function createConsumerApp(options: ConsumerAppOptions): Promise<ConsumerApp> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-consumer-'))
  try {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as Lockfile
    const filename = 'tessera-auth.tgz'
    const tarball = readFileSync(options.tarball)
    writeFileSync(join(dir, filename), tarball)
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as LockEntry & {
      version: string
    }
    const rootDeps: Record<string, string> = { 'tessera-auth': `file:${filename}` }
    for (const name of options.packages) {
      const entry = lock.packages[`node_modules/${name}`]
      if (entry?.version === undefined) throw new Error(`${name} is not in package-lock.json`)
      rootDeps[name] = entry.version
    }
    const tesseraEntry: LockEntry = {
      license: manifest.license as string,
      ...(manifest.dependencies === undefined ? {} : { dependencies: manifest.dependencies }),
      ...(manifest.peerDependencies === undefined
        ? {}
        : { peerDependencies: manifest.peerDependencies }),
      ...(manifest.peerDependenciesMeta === undefined
        ? {}
        : { peerDependenciesMeta: manifest.peerDependenciesMeta }),
      ...(manifest.engines === undefined ? {} : { engines: manifest.engines }),
      ...(manifest.bin === undefined ? {} : { bin: manifest.bin }),
    }
    const packages = cutLockfile(lock, rootDeps, {
      version: manifest.version,
      integrity: `sha512-${createHash('sha512').update(tarball).digest('base64')}`,
      filename,
      manifest: tesseraEntry,
    })
    const pkg = {
      name: 'tessera-consumer',
      version: '1.0.0',
      private: true,
      type: 'module',
      dependencies: rootDeps,
    }
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`)
    writeFileSync(
      join(dir, 'package-lock.json'),
      `${JSON.stringify(
        {
          name: pkg.name,
          version: pkg.version,
          lockfileVersion: 3,
          requires: true,
          packages: {
            '': { name: pkg.name, version: pkg.version, dependencies: rootDeps },
            ...packages,
          },
        },
        null,
        2,
      )}\n`,
    )
    for (const [path, text] of Object.entries(options.files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true })
      writeFileSync(join(dir, path), text)
    }
    await run('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], {
      cwd: dir,
      env: { npm_config_loglevel: 'error', npm_config_update_notifier: 'false' },
    })
    for (const name of options.nativeBuilds ?? []) {
      cpSync(join(ROOT, 'node_modules', name, 'build'), join(dir, 'node_modules', name, 'build'), {
        recursive: true,
      })
    }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  return {
    dir,
    async exec(command, args, env = {}) {
      const local = join(dir, 'node_modules', '.bin', command)
      const own = join(ROOT, 'node_modules', '.bin', command)
      const bin =
        command === 'node'
          ? process.execPath
          : existsSync(local)
            ? local
            : existsSync(own)
              ? own
              : command
      const { stdout, stderr } = await run(bin, args, { cwd: dir, env })
      return stdout + stderr
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** The strictest settings a consumer may use: strict, no skipLibCheck, NodeNext modules. */
export const STRICT_TSCONFIG = `${JSON.stringify(
  {
    compilerOptions: {
      target: 'ES2022',
      lib: ['ES2023'],
      module: 'nodenext',
      moduleResolution: 'nodenext',
      strict: true,
      skipLibCheck: false,
      noEmit: true,
      types: ['node'],
    },
    include: ['src'],
  },
  null,
  2,
)}\n`
