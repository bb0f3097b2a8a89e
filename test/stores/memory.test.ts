import { describe, expect, it } from 'vitest'
import type { SessionRecord } from '../../src/core/session-store.js'
import { createMemoryStore } from '../../src/stores/memory.js'
import { describeStoreConformance } from '../../src/testing/store-conformance.js'

function record(id: string, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id,
    userId: 'u1',
    version: 1,
    createdAt: 0,
    lastSeenAt: 0,
    expiresAt: 1_000,
    absoluteExpiresAt: 5_000,
    data: { nested: { list: [1, 2] } },
    meta: { ip: '127.0.0.1' },
    ...overrides,
  }
}

function clock(start = 0): { now: () => number; set: (t: number) => void } {
  let t = start
  return { now: () => t, set: (value) => (t = value) }
}

describe('createMemoryStore', () => {
  it('round-trips records and returns copies the caller cannot use to change the store', async () => {
    const store = createMemoryStore({ now: clock().now, sweepInterval: 0 })
    const input = record('a')
    await store.create(input)
    ;(input.data.nested as { list: number[] }).list.push(3)
    const got = await store.get('a')
    expect(got).toEqual(record('a'))
    ;(got!.data.nested as { list: number[] }).list.push(4)
    got!.meta.ip = 'changed'
    got!.version = 99
    expect(await store.get('a')).toEqual(record('a'))
    const [listed] = await store.listByUser('u1')
    listed!.data.x = 1
    expect(await store.get('a')).toEqual(record('a'))
    expect(await store.get('missing')).toBeNull()
  })

  it('keeps an own __proto__ key as data', async () => {
    const store = createMemoryStore({ sweepInterval: 0, now: clock().now })
    const data = JSON.parse('{"__proto__": {"admin": true}}') as SessionRecord['data']
    await store.create(record('p', { data }))
    const got = await store.get('p')
    expect(Object.getPrototypeOf(got!.data)).toBe(Object.prototype)
    expect(Object.keys(got!.data)).toEqual(['__proto__'])
  })

  it('compare-and-sets on version and never recreates a deleted record', async () => {
    const store = createMemoryStore({ now: clock().now, sweepInterval: 0 })
    await store.create(record('a'))
    expect(await store.update(record('a', { version: 2, data: { v: 2 } }), 1)).toBe(true)
    expect(await store.update(record('a', { version: 3, data: { v: 3 } }), 1)).toBe(false)
    expect((await store.get('a'))?.data).toEqual({ v: 2 })
    await store.delete('a')
    expect(await store.update(record('a', { version: 3 }), 2)).toBe(false)
    expect(await store.get('a')).toBeNull()
    expect(await store.listByUser('u1')).toEqual([])
  })

  it('hides and sweeps expired records (idle and absolute) by the injected clock', async () => {
    const time = clock()
    const store = createMemoryStore({ now: time.now, sweepInterval: 0 })
    await store.create(record('idle', { expiresAt: 100 }))
    await store.create(record('abs', { expiresAt: 10_000, absoluteExpiresAt: 200 }))
    await store.create(record('live', { expiresAt: 10_000, absoluteExpiresAt: 10_000 }))
    time.set(150)
    expect(await store.get('idle')).toBeNull()
    expect(await store.get('abs')).not.toBeNull()
    expect(await store.update(record('idle', { version: 2 }), 1)).toBe(false)
    time.set(200)
    expect((await store.listByUser('u1')).map((r) => r.id)).toEqual(['live'])
    await store.create(record('later', { expiresAt: 300 }))
    time.set(400)
    expect(store.sweep()).toBe(1)
    expect(store.size).toBe(1)
  })

  it('sweeps on its timer and close() stops the timer', async () => {
    const time = clock()
    const store = createMemoryStore({ now: time.now, sweepInterval: 0.01 })
    await store.create(record('a', { expiresAt: 10 }))
    time.set(20)
    await new Promise((resolve) => setTimeout(resolve, 40))
    expect(store.size).toBe(0)
    await store.close()
    await store.create(record('b', { expiresAt: 30 }))
    time.set(40)
    await new Promise((resolve) => setTimeout(resolve, 40))
    expect(store.size).toBe(1)
  })

  it('evicts expired records first, then the least recently written, when full', async () => {
    const time = clock()
    const store = createMemoryStore({ maxSessions: 3, now: time.now, sweepInterval: 0 })
    await store.create(record('old', { expiresAt: 10_000 }))
    await store.create(record('dead', { expiresAt: 50 }))
    await store.create(record('mid', { expiresAt: 10_000 }))
    time.set(100)
    await store.create(record('new1', { expiresAt: 10_000 }))
    expect(await store.get('dead')).toBeNull()
    expect(await store.get('old')).not.toBeNull()
    // Writing "old" makes it the most recently written; "mid" is now the oldest idle one.
    expect(
      await store.update(record('old', { version: 2, lastSeenAt: 100, expiresAt: 10_000 }), 1),
    ).toBe(true)
    await store.create(record('new2', { expiresAt: 10_000 }))
    expect(store.size).toBe(3)
    expect(await store.get('mid')).toBeNull()
    expect((await store.listByUser('u1')).map((r) => r.id).sort()).toEqual(['new1', 'new2', 'old'])
  })

  it('indexes by user: list and delete with except', async () => {
    const store = createMemoryStore({ now: clock().now, sweepInterval: 0 })
    await store.create(record('a'))
    await store.create(record('b'))
    await store.create(record('c', { userId: 'u2' }))
    await store.create(record('anon', { userId: null }))
    expect((await store.listByUser('u1')).map((r) => r.id).sort()).toEqual(['a', 'b'])
    expect(await store.deleteByUser('u1', { except: 'b' })).toBe(1)
    expect((await store.listByUser('u1')).map((r) => r.id)).toEqual(['b'])
    expect(await store.deleteByUser('u1')).toBe(1)
    expect(await store.deleteByUser('nobody')).toBe(0)
    expect(await store.get('c')).not.toBeNull()
    expect(await store.get('anon')).not.toBeNull()
  })

  it('refuses bad options at construction', () => {
    expect(() => createMemoryStore({ maxSessions: 0 })).toThrow(/maxSessions/)
    expect(() => createMemoryStore({ sweepInterval: -1 })).toThrow(/sweepInterval/)
  })
})

describeStoreConformance('memory store', ({ now }) => {
  const store = createMemoryStore({ now, sweepInterval: 0 })
  return {
    store,
    purgeExpired: () => Promise.resolve(store.sweep()),
    cleanup: () => store.close(),
  }
})
