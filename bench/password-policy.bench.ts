/**
 * What the password policy costs on the event loop (it runs synchronously before the hash):
 * the first check (the zxcvbn dictionaries are built then), a typical passphrase, and the
 * slowest inputs we know of for the estimator (long repeated l33t patterns), each with the
 * policy's caps (48 characters, 4 l33t substitutions). Side by side: the same inputs through
 * @zxcvbn-ts/core with the library's defaults (256 characters, 100 substitutions), which the
 * policy does not use.
 *
 * Run alone: `npx tsx bench/password-policy.bench.ts`. Prints the load average: numbers on a
 * shared, loaded machine are noisy; compare only within one run.
 */
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { ZxcvbnFactory } from '@zxcvbn-ts/core'
import * as zxcvbnCommon from '@zxcvbn-ts/language-common'
import * as zxcvbnEnglish from '@zxcvbn-ts/language-en'
import { checkPasswordPolicy } from '../src/auth/password-policy.js'

const EMAIL = 'margaret.hamilton@example.com'
const TYPICAL = ['correct horse battery staple', 'k7#Vq2!mZp9x', 'password1234', 'Summer2024!!']
const HOSTILE = [32, 64, 128].flatMap((length) =>
  ['aB3$', 'passw0rd', '4@$3!1|0', 'p@ssw0rd1'].map((unit) =>
    unit.repeat(Math.ceil(length / unit.length)).slice(0, length),
  ),
)

function time(run: () => unknown): number {
  const started = performance.now()
  run()
  return performance.now() - started
}

function report(name: string, samples: number[]): void {
  const sorted = [...samples].sort((a, b) => a - b)
  const mean = samples.reduce((sum, value) => sum + value, 0) / samples.length
  const max = sorted[sorted.length - 1] ?? 0
  console.log(
    `${name.padEnd(44)} mean ${mean.toFixed(1).padStart(7)} ms   max ${max.toFixed(1).padStart(7)} ms`,
  )
}

/** Prints the timings (`bench/run.ts` calls it). */
export function run(): Promise<void> {
  console.log(
    `load average ${loadavg()
      .map((value) => value.toFixed(2))
      .join(' ')}`,
  )
  report('first check (builds the dictionaries)', [
    time(() => checkPasswordPolicy('correct horse battery staple', { userInputs: [EMAIL] })),
  ])
  const typical: number[] = []
  for (let round = 0; round < 10; round++) {
    for (const password of TYPICAL) {
      typical.push(time(() => checkPasswordPolicy(`${password} ${round}`, { userInputs: [EMAIL] })))
    }
  }
  report('policy, typical passwords (40 checks)', typical)
  report(
    'policy, hostile repeated patterns',
    HOSTILE.map((password) => time(() => checkPasswordPolicy(password, { userInputs: [EMAIL] }))),
  )
  const defaults = new ZxcvbnFactory({
    translations: zxcvbnEnglish.translations,
    graphs: zxcvbnCommon.adjacencyGraphs,
    dictionary: { ...zxcvbnCommon.dictionary, ...zxcvbnEnglish.dictionary },
  })
  defaults.check('warm up')
  report(
    'zxcvbn defaults, hostile repeated patterns',
    HOSTILE.map((password) => time(() => defaults.check(password, [EMAIL]))),
  )
  return Promise.resolve()
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await run()
}
