import { describe, expect, it } from 'vitest'
import { cacheFor, loadDriver } from '../../src/server/backends.js'

/** A read whose calls are counted and settled by the test. */
function controlledRead() {
  const calls: Array<{ resolve(value: number): void; reject(error: Error): void }> = []
  const read = (): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      calls.push({ resolve, reject })
    })
  return { read, calls }
}

describe('cacheFor (the Redis session count kept between scrapes)', () => {
  it('reads once per period: later callers get the kept value until it is older than ms', async () => {
    let t = 1_000
    const { read, calls } = controlledRead()
    const count = cacheFor(read, 30_000, () => t)
    const first = count()
    calls[0]?.resolve(7)
    expect(await first).toBe(7)
    t += 29_999
    expect(await count()).toBe(7)
    expect(calls).toHaveLength(1)
    t += 1
    const second = count()
    expect(calls).toHaveLength(2)
    calls[1]?.resolve(9)
    expect(await second).toBe(9)
  })

  it('callers during a read share it instead of starting another', async () => {
    const { read, calls } = controlledRead()
    const count = cacheFor(read, 30_000, () => 0)
    const a = count()
    const b = count()
    expect(calls).toHaveLength(1)
    calls[0]?.resolve(3)
    expect(await Promise.all([a, b])).toEqual([3, 3])
  })

  it('does not keep a failure: the next caller reads again', async () => {
    const { read, calls } = controlledRead()
    const count = cacheFor(read, 30_000, () => 0)
    const failed = count()
    calls[0]?.reject(new Error('redis away'))
    await expect(failed).rejects.toThrow('redis away')
    const again = count()
    expect(calls).toHaveLength(2)
    calls[1]?.resolve(4)
    expect(await again).toBe(4)
  })
})

describe('loadDriver', () => {
  it('names the package to install when an optional driver is missing', async () => {
    const missing = loadDriver(
      // A specifier held in a variable, so no bundler or type checker resolves it.
      () => import(String('tessera-no-such-driver')),
      'tessera-no-such-driver',
      'DATABASE_URL names PostgreSQL',
    )
    await expect(missing).rejects.toMatchObject({
      code: 'config_invalid',
      message:
        'DATABASE_URL names PostgreSQL: install the tessera-no-such-driver package (npm install tessera-no-such-driver)',
    })
  })

  it('passes other import errors through and returns the module when present', async () => {
    const broken = new Error('syntax error in the driver')
    await expect(loadDriver(() => Promise.reject(broken), 'x', 'why')).rejects.toBe(broken)
    const redis = await loadDriver(() => import('redis'), 'redis', 'REDIS_URL is set')
    expect(typeof redis.createClient).toBe('function')
  })
})
