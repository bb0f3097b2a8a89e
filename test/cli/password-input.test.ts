// Password input of `user create` / `user passwd`: a fake terminal (a stream with isTTY and
// setRawMode) typed into after each prompt, and plain stdin.
import { PassThrough, Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { readNewPassword } from '../../src/cli/password-input.js'

const POLICY = { minLength: 12, maxLength: 128 }

function terminal(answers: string[]): {
  io: Parameters<typeof readNewPassword>[0]
  prompts: string[]
  rawModes: boolean[]
} {
  const stdin = Object.assign(new PassThrough(), {
    isTTY: true,
    setRawMode: (mode: boolean) => {
      rawModes.push(mode)
    },
  })
  const prompts: string[] = []
  const rawModes: boolean[] = []
  let next = 0
  const io = {
    stdin,
    prompt: (text: string) => {
      prompts.push(text)
      if (!text.endsWith(': ')) return
      const answer = answers[next++]
      // Typed one character at a time, as a terminal in raw mode delivers them.
      if (answer !== undefined) {
        setImmediate(() => {
          for (const char of answer) stdin.write(char)
        })
      }
    },
  }
  return { io, prompts, rawModes }
}

describe('readNewPassword', () => {
  it('asks twice on a terminal with echo off and returns the password', async () => {
    const { io, prompts, rawModes } = terminal([
      'correct horse battery stapleX\u007f\r',
      'correct horse battery staple\r',
    ])
    const password = await readNewPassword(io, { fromStdin: false, policy: POLICY })
    expect(password).toBe('correct horse battery staple')
    // Only the prompts and their line ends were written: nothing typed is echoed.
    expect(prompts).toEqual(['New password: ', '\n', 'Repeat it: ', '\n'])
    expect(rawModes).toEqual([true, false, true, false])
  })

  it('refuses two different entries three times in a row', async () => {
    const { io } = terminal(
      Array.from({ length: 3 }, () => [
        'correct horse battery staple\r',
        'correct horse battery stapel\r',
      ]).flat(),
    )
    await expect(readNewPassword(io, { fromStdin: false, policy: POLICY })).rejects.toThrow(
      /passwords differ/,
    )
  })

  it('stops on Ctrl-C', async () => {
    const { io, rawModes } = terminal(['abc\u0003'])
    await expect(readNewPassword(io, { fromStdin: false, policy: POLICY })).rejects.toThrow(
      /interrupted/,
    )
    expect(rawModes.at(-1)).toBe(false)
  })

  it('reads one line from a terminal too with fromStdin, and checks the policy', async () => {
    const stdin = Object.assign(Readable.from([Buffer.from('short\n')]), { isTTY: true })
    await expect(
      readNewPassword({ stdin, prompt: () => {} }, { fromStdin: true, policy: POLICY }),
    ).rejects.toThrow(/at least 12 characters/)
  })

  it('reads the first line of piped stdin, split across chunks', async () => {
    const stdin = Readable.from([
      Buffer.from('correct horse '),
      Buffer.from('battery staple\nrest'),
    ])
    const prompts: string[] = []
    const password = await readNewPassword(
      { stdin, prompt: (text) => prompts.push(text) },
      { fromStdin: false, policy: POLICY },
    )
    expect(password).toBe('correct horse battery staple')
    expect(prompts).toEqual([])
  })
})
