import { createHash, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createKeyring } from '../core/keyring.js'
import { createSessionManager } from '../core/session-manager.js'
import type { JSONValue, SessionRecord, SessionStore } from '../core/session-store.js'

/** What the conformance suite gives a store factory for one test case. */
export interface StoreConformanceContext {
  /**
   * The suite's clock (epoch milliseconds). It starts at the real time and only the suite moves
   * it forward, so pass it to the store's `now` option when the store has one: expiry cases then
   * run in milliseconds instead of sleeping.
   */
  now: () => number
}

/** One fresh store for one test case, as a factory of {@link describeStoreConformance} builds it. */
export interface StoreConformanceHarness {
  store: SessionStore
  /**
   * Deletes records past their expiry at the store's clock (the suite's `now`), when the store
   * has such a purge (`purgeExpired()` of the SQL stores). When given, the suite requires that
   * expired records are gone afterwards and live ones are not.
   */
  purgeExpired?: () => Promise<unknown>
  /** Releases what the factory made for this case (a table, a key prefix, a file). */
  cleanup(): Promise<void> | void
}

/** Options of {@link describeStoreConformance}. */
export interface StoreConformanceOptions {
  /** Timeout of each case in milliseconds. @default 20000 */
  timeout?: number
  /** Number of concurrent compare-and-set writers in the concurrency case. @default 20 */
  writers?: number
}

/**
 * Registers (with vitest's `describe`/`it`) every case a {@link SessionStore} must pass. Each
 * case asks `factory` for a fresh, empty store and calls `cleanup()` when done, pass or fail.
 *
 * What the suite requires of a store:
 * - `get` returns exactly what was stored (every field, large and unicode `data`), `null` for a
 *   missing id, and never throws for an id that is not a valid hash (empty, very long, odd
 *   characters): `get` gives `null`, `update` gives `false`, `delete` resolves.
 * - `update(record, expectedVersion)` is a compare-and-set: `false` and no change for a stale
 *   or future version, `false` and no resurrection for a deleted record. The caller passes
 *   `record.version === expectedVersion + 1`. Twenty writers that each retry on `false` all keep
 *   their key.
 * - `listByUser` returns every live record of that user and nothing of another user or of an
 *   anonymous session (`userId: null`); `deleteByUser` removes them (except `options.except`)
 *   and returns how many it removed, leaving other users alone.
 * - `getByPublicId` (optional): the live record of that user whose id starts with the 22
 *   characters given, `null` for another user's, an anonymous or a deleted record.
 * - Expiry: a store never drops a record before `min(expiresAt, absoluteExpiresAt)` at its
 *   clock, and keeps an updated record alive until its new expiry. Past that time a store MAY
 *   drop the record (TTL, purge) or keep returning it unchanged: expiry is decided by the
 *   session manager from the record, store TTLs only clean up. When the harness has
 *   `purgeExpired`, expired records must be gone after it runs.
 *
 * @example
 * ```ts
 * // test/stores/my-store.test.ts
 * import { describeStoreConformance } from 'tessera-auth/testing'
 * import { createMyStore } from '../src/my-store.js'
 *
 * describeStoreConformance('my store', async ({ now }) => {
 *   const store = createMyStore({ now })
 *   return { store, cleanup: async () => store.close?.() }
 * })
 * ```
 */
export function describeStoreConformance(
  name: string,
  factory: (
    context: StoreConformanceContext,
  ) => Promise<StoreConformanceHarness> | StoreConformanceHarness,
  options: StoreConformanceOptions = {},
): void {
  const timeout = options.timeout ?? 20_000
  const writers = options.writers ?? 20

  /** Runs `body` on a fresh store with its own clock, always cleaning up. */
  function withStore(
    body: (store: SessionStore, clock: Clock, harness: StoreConformanceHarness) => Promise<void>,
  ): () => Promise<void> {
    return async () => {
      const clock = createClock()
      const harness = await factory({ now: clock.now })
      try {
        await body(harness.store, clock, harness)
      } finally {
        await harness.cleanup()
      }
    }
  }

  describe(`${name}: SessionStore conformance`, () => {
    it(
      'round-trips every field of a record',
      withStore(async (store, clock) => {
        const record = makeRecord(clock.now(), {
          userId: 'user-1',
          data: {
            cart: [1, 2, { sku: 'a-1', qty: 3 }],
            flags: { admin: false, beta: true },
            note: null,
            ratio: 0.25,
            negative: -17,
          },
          meta: { ip: '203.0.113.7', userAgent: 'Mozilla/5.0 (X11; Linux x86_64)' },
        })
        await store.create(record)
        expect(await store.get(record.id)).toEqual(record)

        const bare = makeRecord(clock.now(), { userId: 'user-1', data: {}, meta: {} })
        await store.create(bare)
        const got = await store.get(bare.id)
        expect(got).toEqual(bare)
        expect(got?.meta).toEqual({})
      }),
      timeout,
    )

    it(
      'keeps exact epoch-millisecond times and versions',
      withStore(async (store, clock) => {
        const t = clock.now()
        const record = makeRecord(t, {
          version: 2 ** 31 + 5,
          createdAt: t - 123,
          lastSeenAt: t - 1,
          expiresAt: t + 7 * DAY + 1,
          absoluteExpiresAt: t + 30 * DAY + 999,
        })
        await store.create(record)
        const got = await store.get(record.id)
        expect(got).toEqual(record)
        for (const field of [
          'version',
          'createdAt',
          'lastSeenAt',
          'expiresAt',
          'absoluteExpiresAt',
        ] as const) {
          expect(typeof got?.[field]).toBe('number')
        }
      }),
      timeout,
    )

    it(
      'returns null for missing ids and does nothing for missing records',
      withStore(async (store, clock) => {
        const missing = makeRecord(clock.now(), { userId: 'user-missing' })
        expect(await store.get(missing.id)).toBeNull()
        await expect(store.delete(missing.id)).resolves.toBeUndefined()
        expect(await store.update({ ...missing, version: 2 }, 1)).toBe(false)
        expect(await store.get(missing.id)).toBeNull()
        expect(await store.listByUser('user-missing')).toEqual([])
        expect(await store.deleteByUser('user-missing')).toBe(0)
      }),
      timeout,
    )

    it(
      'compare-and-set: a stale or future expectedVersion loses and changes nothing',
      withStore(async (store, clock) => {
        const original = makeRecord(clock.now(), { userId: 'user-cas', data: { step: 1 } })
        await store.create(original)

        const second = {
          ...original,
          version: 2,
          data: { step: 2 },
          lastSeenAt: original.lastSeenAt + 5,
        }
        expect(await store.update(second, 1)).toBe(true)
        expect(await store.get(original.id)).toEqual(second)

        // A writer that read version 1 before `second` landed.
        const stale = { ...original, version: 2, data: { step: 'stale' } }
        expect(await store.update(stale, 1)).toBe(false)
        expect(await store.get(original.id)).toEqual(second)

        const future = { ...original, version: 10, data: { step: 'future' } }
        expect(await store.update(future, 9)).toBe(false)
        expect(await store.get(original.id)).toEqual(second)

        const third = { ...second, version: 3, data: { step: 3 } }
        expect(await store.update(third, 2)).toBe(true)
        expect(await store.get(original.id)).toEqual(third)
        expect(await store.listByUser('user-cas')).toEqual([third])
      }),
      timeout,
    )

    it(
      'update after delete returns false and never recreates the record',
      withStore(async (store, clock) => {
        const record = makeRecord(clock.now(), { userId: 'user-logout' })
        await store.create(record)
        await store.delete(record.id)
        expect(await store.get(record.id)).toBeNull()

        expect(await store.update({ ...record, version: 2, data: { late: true } }, 1)).toBe(false)
        expect(await store.get(record.id)).toBeNull()
        expect(await store.listByUser('user-logout')).toEqual([])

        // Deleting twice is fine.
        await expect(store.delete(record.id)).resolves.toBeUndefined()
      }),
      timeout,
    )

    it(
      `${writers} concurrent compare-and-set writers that retry each keep their key`,
      withStore(async (store, clock) => {
        const record = makeRecord(clock.now(), { userId: 'user-race', data: { base: true } })
        await store.create(record)

        let conflicts = 0
        const writer = async (index: number): Promise<void> => {
          for (let attempt = 0; attempt < 1000; attempt++) {
            const current = await store.get(record.id)
            if (current === null) throw new Error('record vanished during the race')
            const next: SessionRecord = {
              ...current,
              version: current.version + 1,
              data: { ...current.data, [`key${index}`]: index },
            }
            if (await store.update(next, current.version)) return
            conflicts++
          }
          throw new Error(`writer ${index} never won a compare-and-set`)
        }
        await Promise.all(Array.from({ length: writers }, (_, index) => writer(index)))

        const final = await store.get(record.id)
        expect(final?.version).toBe(1 + writers)
        const expected: Record<string, JSONValue> = { base: true }
        for (let index = 0; index < writers; index++) expected[`key${index}`] = index
        expect(final?.data).toEqual(expected)
        expect(conflicts).toBeGreaterThanOrEqual(0)
      }),
      timeout,
    )

    it(
      `through the session manager: ${writers} concurrent updates of different keys all survive`,
      withStore(async (store, clock) => {
        const manager = createSessionManager(
          store,
          createKeyring(randomBytes(32).toString('base64url')),
          {
            now: clock.now,
          },
        )
        const { session, token } = await manager.create('user-manager', { data: { base: true } })
        const results = await Promise.all(
          Array.from({ length: writers }, (_, index) =>
            manager.update(session, { [`key${index}`]: index }),
          ),
        )
        for (const result of results) expect(result).not.toBeNull()

        const expected: Record<string, JSONValue> = { base: true }
        for (let index = 0; index < writers; index++) expected[`key${index}`] = index
        const validated = await manager.validateToken(token)
        expect(validated?.session.data).toEqual(expected)
        const [listed] = await manager.list('user-manager')
        expect(listed?.data).toEqual(expected)
      }),
      timeout,
    )

    it(
      'through the session manager: logout wins over a late update, and expiry is enforced',
      withStore(async (store, clock) => {
        const manager = createSessionManager(
          store,
          createKeyring(randomBytes(32).toString('base64url')),
          {
            now: clock.now,
            idleTimeout: 3600,
            absoluteTimeout: 7200,
          },
        )
        const first = await manager.create('user-logout', { data: { n: 1 } })
        await manager.revoke(first.session)
        expect(await manager.update(first.session, { late: true })).toBeNull()
        expect(await manager.validateToken(first.token)).toBeNull()
        expect(await manager.list('user-logout')).toEqual([])

        const second = await manager.create('user-logout')
        expect(await manager.validateToken(second.token)).not.toBeNull()
        clock.advance(3600 * 1000)
        expect(await manager.validateToken(second.token)).toBeNull()
      }),
      timeout,
    )

    it(
      'listByUser returns exactly the live records of that user',
      withStore(async (store, clock) => {
        const t = clock.now()
        const alice = [1, 2, 3].map((n) => makeRecord(t, { userId: 'alice', data: { n } }))
        const bob = makeRecord(t, { userId: 'bob' })
        const anonymous = makeRecord(t, { userId: null })
        for (const record of [...alice, bob, anonymous]) await store.create(record)

        expect(sortById(await store.listByUser('alice'))).toEqual(sortById(alice))
        expect(await store.listByUser('bob')).toEqual([bob])
        expect(await store.listByUser('carol')).toEqual([])
        // Anonymous sessions belong to nobody, whatever the spelling.
        expect(await store.listByUser('')).toEqual([])
        expect(await store.listByUser('null')).toEqual([])

        // Updates and deletes show in the list.
        const [a1, a2, a3] = alice as [SessionRecord, SessionRecord, SessionRecord]
        const a1b = { ...a1, version: 2, data: { n: 10 } }
        expect(await store.update(a1b, 1)).toBe(true)
        await store.delete(a3.id)
        expect(sortById(await store.listByUser('alice'))).toEqual(sortById([a1b, a2]))
      }),
      timeout,
    )

    it(
      'deleteByUser with except keeps that one session and leaves other users alone',
      withStore(async (store, clock) => {
        const t = clock.now()
        const alice = [1, 2, 3].map((n) => makeRecord(t, { userId: 'alice', data: { n } }))
        const [a1, a2, a3] = alice as [SessionRecord, SessionRecord, SessionRecord]
        const bob = makeRecord(t, { userId: 'bob' })
        const anonymous = makeRecord(t, { userId: null })
        for (const record of [...alice, bob, anonymous]) await store.create(record)

        expect(await store.deleteByUser('alice', { except: a2.id })).toBe(2)
        expect(await store.get(a1.id)).toBeNull()
        expect(await store.get(a3.id)).toBeNull()
        expect(await store.get(a2.id)).toEqual(a2)
        expect(await store.listByUser('alice')).toEqual([a2])
        expect(await store.get(bob.id)).toEqual(bob)
        expect(await store.get(anonymous.id)).toEqual(anonymous)

        // `except` naming a session of another user protects nothing of this one.
        expect(await store.deleteByUser('alice', { except: bob.id })).toBe(1)
        expect(await store.get(a2.id)).toBeNull()
        expect(await store.get(bob.id)).toEqual(bob)

        // A deleted session cannot be brought back by a late update.
        expect(await store.update({ ...a1, version: 2 }, 1)).toBe(false)
        expect(await store.get(a1.id)).toBeNull()
      }),
      timeout,
    )

    it(
      'deleteByUser without except removes every session of the user',
      withStore(async (store, clock) => {
        const t = clock.now()
        const alice = [1, 2, 3, 4].map((n) => makeRecord(t, { userId: 'alice', data: { n } }))
        const bob = [1, 2].map((n) => makeRecord(t, { userId: 'bob', data: { n } }))
        const anonymous = makeRecord(t, { userId: null })
        for (const record of [...alice, ...bob, anonymous]) await store.create(record)

        expect(await store.deleteByUser('alice')).toBe(4)
        for (const record of alice) expect(await store.get(record.id)).toBeNull()
        expect(await store.listByUser('alice')).toEqual([])
        expect(sortById(await store.listByUser('bob'))).toEqual(sortById(bob))
        expect(await store.get(anonymous.id)).toEqual(anonymous)
        expect(await store.deleteByUser('alice')).toBe(0)
        // An empty user id and an unknown user delete nothing, anonymous sessions included.
        expect(await store.deleteByUser('')).toBe(0)
        expect(await store.deleteByUser('nobody')).toBe(0)
        expect(await store.get(anonymous.id)).toEqual(anonymous)

        // The user can sign in again afterwards.
        const again = makeRecord(clock.now(), { userId: 'alice' })
        await store.create(again)
        expect(await store.listByUser('alice')).toEqual([again])
      }),
      timeout,
    )

    it(
      'user ids with key-like characters stay apart',
      withStore(async (store, clock) => {
        const t = clock.now()
        const users = ['u', 'u}', '{u}', 'u:1', 'u*', "u'; --", 'Ünïcødé 用户 🙂', 'U', ' u']
        const records = users.map((userId) => makeRecord(t, { userId }))
        for (const record of records) await store.create(record)
        for (const record of records) {
          expect(await store.listByUser(record.userId as string)).toEqual([record])
        }
        expect(await store.deleteByUser('u')).toBe(1)
        for (const record of records.slice(1)) expect(await store.get(record.id)).toEqual(record)
      }),
      timeout,
    )

    it(
      'anonymous sessions (userId null) work like any other',
      withStore(async (store, clock) => {
        const record = makeRecord(clock.now(), { userId: null, data: { csrf: 'x' } })
        await store.create(record)
        expect(await store.get(record.id)).toEqual(record)
        const next = { ...record, version: 2, data: { csrf: 'y' } }
        expect(await store.update(next, 1)).toBe(true)
        expect(await store.get(record.id)).toEqual(next)
        expect(await store.update({ ...record, version: 2 }, 1)).toBe(false)
        await store.delete(record.id)
        expect(await store.get(record.id)).toBeNull()
      }),
      timeout,
    )

    it(
      'an update may sign an anonymous session in (userId changes)',
      withStore(async (store, clock) => {
        const record = makeRecord(clock.now(), { userId: null })
        await store.create(record)
        const signedIn = { ...record, version: 2, userId: 'dora' }
        expect(await store.update(signedIn, 1)).toBe(true)
        expect(await store.get(record.id)).toEqual(signedIn)
        expect(await store.listByUser('dora')).toEqual([signedIn])
        expect(await store.deleteByUser('dora')).toBe(1)
        expect(await store.get(record.id)).toBeNull()
      }),
      timeout,
    )

    it(
      'keeps records until their expiry; past it they are dropped or returned unchanged',
      withStore(async (store, clock, harness) => {
        const t = clock.now()
        const shortLived = makeRecord(t, {
          userId: 'erin',
          expiresAt: t + HOUR,
          absoluteExpiresAt: t + DAY,
        })
        const absoluteBound = makeRecord(t, {
          userId: 'erin',
          expiresAt: t + 7 * DAY,
          absoluteExpiresAt: t + 2 * HOUR,
        })
        const longLived = makeRecord(t, {
          userId: 'erin',
          expiresAt: t + 7 * DAY,
          absoluteExpiresAt: t + 30 * DAY,
        })
        const extended = makeRecord(t, {
          userId: 'erin',
          expiresAt: t + HOUR,
          absoluteExpiresAt: t + 30 * DAY,
        })
        for (const record of [shortLived, absoluteBound, longLived, extended]) {
          await store.create(record)
        }
        const extendedNext = { ...extended, version: 2, lastSeenAt: t, expiresAt: t + 5 * HOUR }
        expect(await store.update(extendedNext, 1)).toBe(true)

        clock.advance(HOUR - 1)
        await harness.purgeExpired?.()
        expect(await store.get(shortLived.id)).toEqual(shortLived)
        expect(sortById(await store.listByUser('erin'))).toEqual(
          sortById([shortLived, absoluteBound, longLived, extendedNext]),
        )

        clock.advance(2 * HOUR) // now t + 3h - 1ms: two records are past their expiry
        await harness.purgeExpired?.()
        for (const dead of [shortLived, absoluteBound]) {
          const got = await store.get(dead.id)
          if (harness.purgeExpired) expect(got).toBeNull()
          else if (got !== null) expect(got).toEqual(dead)
        }
        expect(await store.get(longLived.id)).toEqual(longLived)
        expect(await store.get(extended.id)).toEqual(extendedNext)
        const listed = await store.listByUser('erin')
        expect(
          sortById(listed.filter((r) => r.id === longLived.id || r.id === extended.id)),
        ).toEqual(sortById([longLived, extendedNext]))
        for (const record of listed) {
          if (record.id === shortLived.id) expect(record).toEqual(shortLived)
          if (record.id === absoluteBound.id) expect(record).toEqual(absoluteBound)
        }
        if (harness.purgeExpired) expect(listed).toHaveLength(2)
      }),
      timeout,
    )

    it(
      'getByPublicId (when the store has it) finds only the live record of that user',
      withStore(async (store, clock) => {
        const getByPublicId = store.getByPublicId?.bind(store)
        if (getByPublicId === undefined) return
        const publicIdOf = (record: SessionRecord): string => record.id.slice(0, 22)
        const mine = Array.from({ length: 5 }, () => makeRecord(clock.now(), { userId: 'pia' }))
        const theirs = makeRecord(clock.now(), { userId: 'quinn' })
        const anonymous = makeRecord(clock.now(), { userId: null })
        for (const record of [...mine, theirs, anonymous]) await store.create(record)
        for (const record of mine) {
          expect(await getByPublicId('pia', publicIdOf(record))).toEqual(record)
        }
        // Another user's public id, an anonymous one, a whole id, a near miss: nothing.
        expect(await getByPublicId('pia', publicIdOf(theirs))).toBeNull()
        expect(await getByPublicId('quinn', publicIdOf(mine[0] as SessionRecord))).toBeNull()
        expect(await getByPublicId('pia', publicIdOf(anonymous))).toBeNull()
        const first = mine[0] as SessionRecord
        expect(await getByPublicId('pia', first.id)).toBeNull()
        expect(await getByPublicId('pia', publicIdOf(first).slice(0, 21))).toBeNull()
        for (const junk of ['', '*', '%_', '\u0000'.repeat(22), 'ü'.repeat(22)]) {
          expect(await getByPublicId('pia', junk)).toBeNull()
          expect(await getByPublicId(junk, publicIdOf(first))).toBeNull()
        }
        // It follows updates, deletes and "log out everywhere".
        const next = { ...first, version: 2, data: { moved: true } }
        expect(await store.update(next, 1)).toBe(true)
        expect(await getByPublicId('pia', publicIdOf(first))).toEqual(next)
        await store.delete(first.id)
        expect(await getByPublicId('pia', publicIdOf(first))).toBeNull()
        const second = mine[1] as SessionRecord
        expect(await store.update({ ...second, version: 2, userId: 'quinn' }, 1)).toBe(true)
        expect(await getByPublicId('pia', publicIdOf(second))).toBeNull()
        expect(await getByPublicId('quinn', publicIdOf(second))).toEqual({
          ...second,
          version: 2,
          userId: 'quinn',
        })
        await store.deleteByUser('pia')
        for (const record of mine.slice(2)) {
          expect(await getByPublicId('pia', publicIdOf(record))).toBeNull()
        }
        // Past its expiry a record is never returned.
        const short = makeRecord(clock.now(), { userId: 'pia', expiresAt: clock.now() + 1000 })
        await store.create(short)
        expect(await getByPublicId('pia', publicIdOf(short))).toEqual(short)
        clock.advance(1001)
        expect(await getByPublicId('pia', publicIdOf(short))).toBeNull()
      }),
      timeout,
    )

    it(
      'stores large data (~100 KB) intact',
      withStore(async (store, clock) => {
        const big: Record<string, JSONValue> = {}
        for (let index = 0; index < 100; index++) {
          big[`field${index}`] = randomBytes(768).toString('base64') // 1024 characters each
        }
        big.nested = { list: Array.from({ length: 500 }, (_, n) => ({ n, s: `item-${n}` })) }
        const record = makeRecord(clock.now(), { userId: 'big', data: big })
        expect(JSON.stringify(record.data).length).toBeGreaterThan(100_000)
        await store.create(record)
        expect(await store.get(record.id)).toEqual(record)
        const next = { ...record, version: 2, data: { ...big, field0: 'changed' } }
        expect(await store.update(next, 1)).toBe(true)
        expect(await store.get(record.id)).toEqual(next)
      }),
      timeout,
    )

    it(
      'stores unicode, control characters and JSON-special text intact',
      withStore(async (store, clock) => {
        const record = makeRecord(clock.now(), {
          userId: 'ünïcødé-用户-🙂',
          data: {
            'ключ 🔑': 'значение',
            emoji: '👩‍👩‍👧‍👦🏳️‍🌈',
            rtl: 'مرحبا بالعالم',
            combining: 'e\u0301 a\u0308',
            controls: 'nul\u0000 tab\t newline\n cr\r bell\u0007 del\u007f',
            lone: 'high \ud800 low \udc00',
            json: '{"a":[1,2]}\\"\'',
            lineSeparators: '\u2028\u2029',
            bom: '\ufeffstart',
          },
          meta: { ip: '2001:db8::1', userAgent: 'Agent/1.0 (日本語; 한국어) \u0000' },
        })
        await store.create(record)
        expect(await store.get(record.id)).toEqual(record)
        expect(await store.listByUser('ünïcødé-用户-🙂')).toEqual([record])
      }),
      timeout,
    )

    it(
      'ids that are not valid hashes give null or false, never an error',
      withStore(async (store, clock) => {
        const live = makeRecord(clock.now(), { userId: 'frank' })
        await store.create(live)
        const weirdIds = [
          '',
          ' ',
          'a'.repeat(10_000),
          "x'; DROP TABLE sessions; --",
          '"quoted"',
          '{frank}',
          '}{',
          '*',
          '?',
          '[a-z]',
          '%_',
          '\\',
          '\u0000',
          'line\nbreak',
          '../../etc/passwd',
          'üñí©ødé🙂',
          '\ud800',
          live.id.slice(0, -1),
          `${live.id} `,
          live.id.toUpperCase() === live.id ? `${live.id}x` : live.id.toUpperCase(),
        ]
        for (const id of weirdIds) {
          expect(await store.get(id)).toBeNull()
          expect(await store.update({ ...live, id, version: 2 }, 1)).toBe(false)
          await expect(store.delete(id)).resolves.toBeUndefined()
          expect(await store.get(id)).toBeNull()
          expect(await store.deleteByUser('frank', { except: id })).toBe(1)
          await store.create(live)
        }
        for (const userId of ['', ' ', '*', '%', 'a'.repeat(10_000), '\u0000']) {
          expect(await store.listByUser(userId)).toEqual([])
          expect(await store.deleteByUser(userId)).toBe(0)
        }
        expect(await store.get(live.id)).toEqual(live)
      }),
      timeout,
    )
  })
}

const HOUR = 3_600_000
const DAY = 24 * HOUR

interface Clock {
  now: () => number
  advance(ms: number): void
}

function createClock(): Clock {
  let current = Date.now()
  return {
    now: () => current,
    advance(ms: number): void {
      current += ms
    },
  }
}

/** A record with a fresh random id (base64url SHA-256, like the session manager's). */
function makeRecord(now: number, overrides: Partial<SessionRecord> = {}): SessionRecord {
  const id = createHash('sha256').update(randomBytes(32)).digest('base64url')
  return {
    id,
    userId: 'user',
    version: 1,
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + 7 * DAY,
    absoluteExpiresAt: now + 30 * DAY,
    data: { hello: 'world' },
    meta: { ip: '127.0.0.1', userAgent: 'vitest' },
    ...overrides,
  }
}

function sortById(records: SessionRecord[]): SessionRecord[] {
  return [...records].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}
