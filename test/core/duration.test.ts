import { describe, expect, it } from 'vitest'
import { parseDuration } from '../../src/core/duration.js'
import { TesseraError } from '../../src/core/errors.js'

describe('parseDuration', () => {
  it.each([
    ['90s', 90],
    ['15m', 900],
    ['12h', 43_200],
    ['7d', 604_800],
    ['2w', 1_209_600],
    ['3600', 3600],
    [' 5M ', 300],
    [60, 60],
  ])('parses %j as %i seconds', (input, seconds) => {
    expect(parseDuration(input, 'X')).toBe(seconds)
  })

  it.each(['', '0', '0s', '-5m', '1.5h', '15 minutes', 'abc', '7y', 'm', '1e3'])(
    'refuses %j naming the key, not the value',
    (input) => {
      const call = (): number => parseDuration(input, 'TESSERA_SESSION_IDLE')
      expect(call).toThrow(TesseraError)
      expect(call).toThrow(/TESSERA_SESSION_IDLE/)
      try {
        call()
      } catch (error) {
        expect((error as TesseraError).code).toBe('config_invalid')
        if (input.trim().length > 0) expect((error as Error).message).not.toContain(`"${input}"`)
      }
    },
  )

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('refuses the number %d', (input) => {
    expect(() => parseDuration(input, 'K')).toThrow(/K must be/)
  })
})
