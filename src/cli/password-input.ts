import { checkPasswordPolicy, type PasswordPolicyOptions } from '../auth/password-policy.js'
import { TesseraError } from '../core/errors.js'
import type { CliIO } from './context.js'

/** Longest line read from stdin: longer input is refused, never cut. */
const MAX_LINE = 4096

/** How many times a terminal is asked for the two entries before giving up. */
const MAX_ROUNDS = 3

/**
 * Reads a new password: with `fromStdin`, or when stdin is not a terminal, one line of stdin
 * (the trailing newline removed); otherwise a prompt on stderr, twice, with echo off, asked
 * again (up to three times) when the two entries differ or the policy refuses the password.
 * The password policy of the server (`TESSERA_PASSWORD_MIN_LENGTH`/`MAX_LENGTH`, common list)
 * is checked before anything is hashed.
 *
 * @throws TesseraError `invalid_argument` for no input, a policy failure on stdin, or three
 * rounds at the terminal without two equal, acceptable entries
 */
export async function readNewPassword(
  io: Pick<CliIO, 'stdin' | 'prompt'>,
  options: { fromStdin: boolean; policy: PasswordPolicyOptions },
): Promise<string> {
  if (options.fromStdin || io.stdin.isTTY !== true) {
    const line = await readLine(io.stdin)
    if (line === null || line === '') {
      throw new TesseraError('invalid_argument', 'no password on stdin (one line expected)')
    }
    const verdict = checkPasswordPolicy(line, options.policy)
    if (!verdict.ok) throw new TesseraError('invalid_argument', verdict.message)
    return line
  }
  // A person typing blind makes mistakes: say what was wrong and ask again, a few times.
  let problem = ''
  for (let round = 1; round <= MAX_ROUNDS; round++) {
    const password = await promptHidden(io, 'New password: ')
    const again = await promptHidden(io, 'Repeat it: ')
    if (password !== again) {
      problem = 'the passwords differ'
    } else {
      const verdict = checkPasswordPolicy(password, options.policy)
      if (verdict.ok) return password
      problem = verdict.message
    }
    if (round < MAX_ROUNDS) io.prompt(`${capitalize(problem.replace(/\.$/, ''))}; try again.\n`)
  }
  throw new TesseraError(
    'invalid_argument',
    `${problem.replace(/\.$/, '')} (asked ${MAX_ROUNDS} times)`,
  )
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1)
}

/** The first line of a stream, without its line ending; `null` for an empty stream. */
async function readLine(stream: NodeJS.ReadableStream): Promise<string | null> {
  let text = ''
  for await (const chunk of stream) {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8')
    const end = text.indexOf('\n')
    if (end >= 0) {
      text = text.slice(0, end)
      break
    }
    if (text.length > MAX_LINE) break
  }
  if (text.length > MAX_LINE) {
    throw new TesseraError('invalid_argument', `the password line is longer than ${MAX_LINE}`)
  }
  if (text === '') return null
  return text.endsWith('\r') ? text.slice(0, -1) : text
}

/** Prompts on stderr and reads a line from a terminal in raw mode, echoing nothing. */
function promptHidden(io: Pick<CliIO, 'stdin' | 'prompt'>, prompt: string): Promise<string> {
  const stdin = io.stdin
  io.prompt(prompt)
  return new Promise((resolve, reject) => {
    let value = ''
    const done = (error: Error | null): void => {
      stdin.removeListener('data', onData)
      stdin.setRawMode?.(false)
      stdin.pause()
      io.prompt('\n')
      if (error === null) resolve(value)
      else reject(error)
    }
    const onData = (chunk: Buffer | string): void => {
      for (const char of chunk.toString()) {
        if (char === '\r' || char === '\n' || char === '\u0004') return done(null)
        if (char === '\u0003') {
          return done(new TesseraError('invalid_argument', 'interrupted'))
        }
        if (char === '\u007f' || char === '\b') value = [...value].slice(0, -1).join('')
        else if (char >= ' ') value += char
        if (value.length > MAX_LINE) {
          return done(new TesseraError('invalid_argument', 'the password is too long'))
        }
      }
    }
    stdin.setRawMode?.(true)
    stdin.on('data', onData)
    stdin.resume()
  })
}
