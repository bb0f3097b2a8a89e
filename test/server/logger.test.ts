import { Writable } from 'node:stream'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { loadConfig } from '../../src/server/config.js'
import { createLogger, logMail, logSetupLink } from '../../src/server/logger.js'

/** A destination that keeps what is written; `isTTY` as a terminal would have it. */
function destination(isTTY: boolean): { stream: Writable & { isTTY?: boolean }; text(): string } {
  const chunks: string[] = []
  const stream: Writable & { isTTY?: boolean } = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'))
      callback()
    },
  })
  if (isTTY) stream.isTTY = true
  return { stream, text: () => chunks.join('') }
}

const SETUP = 'http://localhost:3000/admin/setup?token=abc_DEF-123'
const MAIL = {
  from: 'tessera <no-reply@localhost>',
  to: 'ada@example.com',
  subject: 'Reset your password',
  text: 'Open this link:\n\nhttp://localhost:3000/reset?token=x=y\n',
  links: ['http://localhost:3000/reset?token=x=y'],
}

describe('createLogger', () => {
  // Colours would wrap the link in escape codes; terminals that copy text drop them anyway.
  beforeEach(() => {
    vi.stubEnv('NO_COLOR', '1')
    vi.stubEnv('FORCE_COLOR', undefined)
    return () => vi.unstubAllEnvs()
  })

  it('writes JSON lines when the destination is not a terminal', () => {
    const out = destination(false)
    const logger = createLogger('info', out.stream)
    logSetupLink(logger, SETUP)
    logMail(logger, MAIL)
    const [setup, mail] = out
      .text()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(setup).toMatchObject({
      level: 40,
      setupUrl: SETUP,
      hint: 'npx tessera-auth user create --admin',
    })
    expect(mail).toMatchObject({ mail: { to: MAIL.to, links: MAIL.links, text: MAIL.text } })
  })

  it('writes readable lines on a terminal: the setup link and the hint on lines of their own', () => {
    const out = destination(true)
    const logger = createLogger('info', out.stream)
    logger.info({ port: 3000, host: null }, 'listening')
    logSetupLink(logger, SETUP)
    const lines = out.text().split('\n')
    // No JSON, no numeric level
    expect(out.text()).not.toContain('{"level"')
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d .*INFO.* listening .*port=.*3000/)
    expect(lines.some((line) => line.includes('WARN') && line.includes('no admin account'))).toBe(
      true,
    )
    // the link and the command alone on their lines (after the bar and a label), copyable whole
    expect(lines.some((line) => line.trimEnd().endsWith(SETUP))).toBe(true)
    expect(
      lines.some((line) => line.trimEnd().endsWith('npx tessera-auth user create --admin')),
    ).toBe(true)
  })

  it('prints a console mail as text on a terminal, each link on a line of its own', () => {
    const out = destination(true)
    logMail(createLogger('info', out.stream, { format: 'pretty' }), MAIL)
    const lines = out.text().split('\n')
    expect(lines).toContain('Subject: Reset your password')
    expect(lines).toContain('link: http://localhost:3000/reset?token=x=y')
    expect(out.text()).not.toContain('\\n')
  })

  it('follows LOG_FORMAT over the terminal check', () => {
    const pretty = destination(false)
    createLogger('info', pretty.stream, { format: 'pretty' }).info('hello')
    expect(pretty.text()).toMatch(/^\d\d:\d\d:\d\d .*INFO.* hello\n$/)
    const json = destination(true)
    createLogger('info', json.stream, { format: 'json' }).info('hello')
    expect(JSON.parse(json.text())).toMatchObject({ msg: 'hello', level: 30 })
    const cwd = process.cwd()
    const base = { NODE_ENV: 'test' }
    expect(loadConfig(base, { cwd, envFiles: false }).logFormat).toBe('auto')
    expect(loadConfig({ ...base, LOG_FORMAT: 'JSON' }, { cwd, envFiles: false }).logFormat).toBe(
      'json',
    )
    expect(() => loadConfig({ ...base, LOG_FORMAT: 'xml' }, { cwd, envFiles: false })).toThrow(
      'LOG_FORMAT must be one of auto, json, pretty',
    )
  })
})
