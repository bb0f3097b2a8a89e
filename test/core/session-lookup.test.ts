import { describe, expect, it } from 'vitest'
import { createKeyring } from '../../src/core/keyring.js'
import { createRequestAuth, type BearerVerifier } from '../../src/core/request-auth.js'
import { createSessionManager } from '../../src/core/session-manager.js'
import type { SessionRecord, SessionStore } from '../../src/core/session-store.js'
import { createMemoryStore } from '../../src/stores/memory.js'

const SITE = 'https://app.example.test'
const keyring = createKeyring(Buffer.alloc(32, 5).toString('base64url') + 'Zq9!')

/** The store with a count of calls per method: the real memory store underneath. */
function counted(store: SessionStore): { store: SessionStore; calls: Map<string, number> } {
  const calls = new Map<string, number>()
  const wrapped = new Proxy(store, {
    get(target, name, receiver): unknown {
      const value: unknown = Reflect.get(target, name, receiver)
      if (typeof value !== 'function' || typeof name !== 'string') return value
      return (...args: unknown[]): unknown => {
        calls.set(name, (calls.get(name) ?? 0) + 1)
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
  return { store: wrapped, calls }
}

describe('the live-session check of a bearer token', () => {
  it('is one keyed store read, however many sessions the user holds', async () => {
    const { store, calls } = counted(createMemoryStore())
    const sessions = createSessionManager(store, keyring)
    let last = await sessions.create('many')
    for (let index = 0; index < 1000; index++) last = await sessions.create('many')
    const claims = { sub: 'many', sid: last.session.id }
    const verifier: BearerVerifier = { verify: () => Promise.resolve({ ok: true, claims }) }
    const auth = createRequestAuth({
      sessions,
      trustedOrigins: [SITE],
      bearer: { verifier, requireSession: true },
    })
    calls.clear()
    const result = await auth.authenticate(
      { method: 'GET', authorization: 'Bearer a.b.c' },
      () => undefined,
    )
    expect(result.ok && result.state.session?.id).toBe(last.session.id)
    expect(Object.fromEntries(calls)).toEqual({ getByPublicId: 1 })
    // revokeById is keyed too: one read and one delete.
    calls.clear()
    expect(await sessions.revokeById('many', last.session.id)).toBe(true)
    expect(Object.fromEntries(calls)).toEqual({ getByPublicId: 1, delete: 1 })
    const gone = await auth.authenticate(
      { method: 'GET', authorization: 'Bearer a.b.c' },
      () => undefined,
    )
    expect(gone.ok).toBe(false)
  })

  it('works on a store without getByPublicId (through listByUser)', async () => {
    const memory = createMemoryStore()
    const plain: SessionStore = {
      get: (id) => memory.get(id),
      create: (record) => memory.create(record),
      update: (record, version) => memory.update(record, version),
      delete: (id) => memory.delete(id),
      listByUser: (userId) => memory.listByUser(userId),
      deleteByUser: (userId, options) => memory.deleteByUser(userId, options),
    }
    const sessions = createSessionManager(plain, keyring)
    const mine = await sessions.create('ann')
    const theirs = await sessions.create('bob')
    expect((await sessions.getById('ann', mine.session.id))?.id).toBe(mine.session.id)
    expect(await sessions.getById('ann', theirs.session.id)).toBeNull()
    expect(await sessions.getById('ann', 'short')).toBeNull()
  })

  it('never hands out a record of another user, whatever a store returns', async () => {
    const memory = createMemoryStore()
    const sessions0 = createSessionManager(memory, keyring)
    const theirs = await sessions0.create('mallory')
    const stored = (await memory.listByUser('mallory'))[0] as SessionRecord
    // SECURITY: a custom store that ignores the user id must not cross users (the manager
    // checks the owner and the public id itself).
    const careless: SessionStore = {
      ...memory,
      get: (id) => memory.get(id),
      create: (record) => memory.create(record),
      update: (record, version) => memory.update(record, version),
      delete: (id) => memory.delete(id),
      listByUser: (userId) => memory.listByUser(userId),
      deleteByUser: (userId, options) => memory.deleteByUser(userId, options),
      getByPublicId: () => Promise.resolve(stored),
    }
    const sessions = createSessionManager(careless, keyring)
    expect(await sessions.getById('alice', theirs.session.id)).toBeNull()
    expect(await sessions.revokeById('alice', theirs.session.id)).toBe(false)
    expect(await memory.get(stored.id)).not.toBeNull()
    expect((await sessions.getById('mallory', theirs.session.id))?.id).toBe(theirs.session.id)
  })

  it('does not return an expired session', async () => {
    let now = Date.now()
    const sessions = createSessionManager(createMemoryStore({ now: () => now }), keyring, {
      now: () => now,
      idleTimeout: 60,
    })
    const issued = await sessions.create('cy')
    expect(await sessions.getById('cy', issued.session.id)).not.toBeNull()
    now += 61_000
    expect(await sessions.getById('cy', issued.session.id)).toBeNull()
  })
})
