import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createHMACKeySet,
  createKeySet,
  createMemoryKeyStorage,
  type KeyStorage,
  createKeyringSealer,
} from '../../src/auth/keys.js'
import { createKyselyKeyStorage, createSigningKeyTable } from '../../src/auth/kysely-key-storage.js'
import { isTesseraError } from '../../src/core/errors.js'
import { createKeyring } from '../../src/core/keyring.js'
import { importPublicJWK } from '../../src/jwt/jwk.js'
import { createDatabase, migrateToLatest, type TesseraDB } from '../../src/auth/db/database.js'
import { describeEachDatabase, openPostgres } from '../helpers/databases.js'
import { describeWithService, uniqueName } from '../helpers/services.js'
import { testKeyring } from '../helpers/tokens.js'

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']

describe('createKeySet', () => {
  it('creates a current and a next key on first load, both published, public only', async () => {
    const keyring = testKeyring()
    const keys = createKeySet({
      storage: createMemoryKeyStorage(),
      sealer: createKeyringSealer(keyring),
    })
    await keys.load()
    const list = keys.list()
    expect(list.map((key) => key.status).sort()).toEqual(['current', 'next'])
    const jwks = keys.jwks()
    expect(jwks.keys).toHaveLength(2)
    for (const jwk of jwks.keys) {
      expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' })
      for (const name of PRIVATE_MEMBERS) expect(jwk).not.toHaveProperty(name)
      expect(importPublicJWK(jwk)?.kid).toBe(jwk.kid)
    }
    expect(keys.signingKey().kid).toBe(list.find((key) => key.status === 'current')?.kid)
  })

  it('never hands storage a private key in plain text', async () => {
    const keyring = testKeyring()
    const records: string[] = []
    const inner = createMemoryKeyStorage()
    const storage: KeyStorage = {
      ...inner,
      put: (key) => {
        records.push(JSON.stringify(key))
        return inner.put(key)
      },
      commit: (change) => {
        for (const key of change.write) records.push(JSON.stringify(key))
        return inner.commit(change)
      },
    }
    const keys = createKeySet({ storage, sealer: createKeyringSealer(keyring) })
    await keys.load()
    await keys.rotate()
    const d = keys.signingKey().privateKey.export({ format: 'jwk' }).d as string
    expect(d.length).toBeGreaterThan(20)
    expect(records.length).toBeGreaterThan(2)
    for (const record of records) {
      expect(record).not.toContain(d)
      expect(record).not.toContain('"d"')
    }
  })

  it('rotate promotes next to current, makes a new next, keeps the old current as previous', async () => {
    let now = 1_000_000
    const keys = createKeySet({
      storage: createMemoryKeyStorage(),
      sealer: createKeyringSealer(testKeyring()),
      retainFor: 960,
      now: () => now,
    })
    await keys.load()
    const first = keys.list()
    const current = first.find((key) => key.status === 'current')?.kid
    const next = first.find((key) => key.status === 'next')?.kid
    now += 1000
    const after = await keys.rotate()
    expect(keys.signingKey().kid).toBe(next)
    expect(after.find((key) => key.kid === current)?.status).toBe('previous')
    expect(after.find((key) => key.kid === current)?.retiredAt).toBe(now)
    expect(after.filter((key) => key.status === 'next')).toHaveLength(1)
    expect(keys.verificationKey(current)).toBeDefined()
    expect(keys.jwks().keys.map((key) => key.kid)).toContain(current)

    // Retired once every token it signed has expired (retiredAt + retainFor).
    now += 960_000 - 1
    await keys.rotate()
    expect(keys.verificationKey(current)).toBeDefined()
    now += 1
    await keys.load()
    expect(keys.verificationKey(current)).toBeUndefined()
    expect(keys.jwks().keys.map((key) => key.kid)).not.toContain(current)
  })

  it('a second process over the same storage loads the same keys', async () => {
    const keyring = testKeyring()
    const storage = createMemoryKeyStorage()
    const a = createKeySet({ storage, sealer: createKeyringSealer(keyring) })
    const b = createKeySet({ storage, sealer: createKeyringSealer(keyring) })
    await a.load()
    await b.load()
    expect(b.signingKey().kid).toBe(a.signingKey().kid)
    expect(
      b
        .jwks()
        .keys.map((k) => k.kid)
        .sort(),
    ).toEqual(
      a
        .jwks()
        .keys.map((k) => k.kid)
        .sort(),
    )
  })

  it('refuses to load keys sealed under another secret, naming the fallback setting', async () => {
    const storage = createMemoryKeyStorage()
    await createKeySet({ storage, sealer: createKeyringSealer(testKeyring()) }).load()
    const other = createKeySet({ storage, sealer: createKeyringSealer(testKeyring()) })
    await expect(other.load()).rejects.toThrow(/TESSERA_SECRET_FALLBACKS/)
  })

  it('ES256 and RS256 key sets make keys of the right type', async () => {
    for (const [algorithm, kty] of [
      ['ES256', 'EC'],
      ['RS256', 'RSA'],
    ] as const) {
      const keys = createKeySet({
        storage: createMemoryKeyStorage(),
        sealer: createKeyringSealer(testKeyring()),
        algorithm,
      })
      await keys.load()
      expect(keys.jwks().keys.every((key) => key.kty === kty && key.alg === algorithm)).toBe(true)
    }
  })

  it('fails fast on an RSA modulus under 2048 bits or an unknown algorithm', () => {
    const sealer = createKeyringSealer(testKeyring())
    const storage = createMemoryKeyStorage()
    expect(() =>
      createKeySet({ storage, sealer, algorithm: 'RS256', rsaModulusLength: 1024 }),
    ).toThrow(/2048/)
    expect(() =>
      createKeySet({ storage, sealer, algorithm: 'HS256' as unknown as 'EdDSA' }),
    ).toThrow(/algorithm/)
  })

  it('signingKey before load is a configuration error', () => {
    const keys = createKeySet({
      storage: createMemoryKeyStorage(),
      sealer: createKeyringSealer(testKeyring()),
    })
    expect(() => keys.signingKey()).toThrow(/load/)
  })
})

describe('createHMACKeySet', () => {
  it('signs with the jwt-hs256 key of the current secret and publishes nothing', async () => {
    const secret = 'x'.repeat(8) + 'ab3f9c2e1d7a5b8f6c4e2a0d9b7f5e3c'
    const old = 'y'.repeat(8) + '1f2e3d4c5b6a79880f1e2d3c4b5a6978'
    const keyring = createKeyring(secret, { fallbacks: [old] })
    const keys = createHMACKeySet(keyring)
    expect(keys.jwks()).toEqual({ keys: [] })
    expect(keys.signingKey().kid).toBe(keyring.key('jwt-hs256').kid)
    expect(keys.verificationKey(keyring.keys('jwt-hs256')[1]?.kid)?.alg).toBe('HS256')
    // The HMAC key is the jwt-hs256 purpose key, not the session key.
    expect(keys.signingKey().privateKey.export()).toEqual(
      Buffer.from(keyring.key('jwt-hs256').bytes),
    )
    await expect(keys.rotate()).rejects.toSatisfy((error) =>
      isTesseraError(error, 'config_invalid'),
    )
  })
})

function storageSuite(
  name: string,
  open: () => Promise<{ db: Kysely<unknown>; close: () => Promise<void> }>,
): void {
  describe(name, () => {
    let db: Kysely<unknown>
    let close: () => Promise<void>
    beforeAll(async () => {
      ;({ db, close } = await open())
    })
    afterAll(async () => {
      await close()
    })

    it('migrates idempotently and round-trips keys through a key set', async () => {
      const table = uniqueName('keys')
      const storage = createKyselyKeyStorage(db, { table })
      await storage.migrate()
      await storage.migrate()
      const keyring = testKeyring()
      const keys = createKeySet({ storage, sealer: createKeyringSealer(keyring) })
      await keys.load()
      await keys.rotate()
      const reloaded = createKeySet({ storage, sealer: createKeyringSealer(keyring) })
      await reloaded.load()
      expect(reloaded.signingKey().kid).toBe(keys.signingKey().kid)
      expect(
        reloaded
          .list()
          .map((k) => [k.kid, k.status, k.retiredAt])
          .sort(),
      ).toEqual(
        keys
          .list()
          .map((k) => [k.kid, k.status, k.retiredAt])
          .sort(),
      )
      const rows = await storage.list()
      const d = keys.signingKey().privateKey.export({ format: 'jwk' }).d as string
      expect(JSON.stringify(rows)).not.toContain(d)
      await storage.delete(rows[0]?.kid as string)
      expect(await storage.list()).toHaveLength(rows.length - 1)
    })

    it('rejects a table name that is not an identifier', () => {
      expect(() => createKyselyKeyStorage(db, { table: 'keys; drop table x' })).toThrow(/table/)
    })
  })
}

storageSuite('createKyselyKeyStorage (SQLite)', () => {
  const db = new Kysely<unknown>({
    dialect: new SqliteDialect({ database: new Database(':memory:') }),
  })
  return Promise.resolve({ db, close: () => db.destroy() })
})

describeWithService('postgres', 'createKyselyKeyStorage (PostgreSQL)', (url) => {
  const schema = uniqueName('tokens')
  let admin: pg.Client
  storageSuite('in a private schema', async () => {
    admin = new pg.Client({ connectionString: url })
    await admin.connect()
    await admin.query(`CREATE SCHEMA ${schema}`)
    const db = new Kysely<unknown>({
      dialect: new PostgresDialect({
        pool: new pg.Pool({ connectionString: url, max: 2, options: `-c search_path=${schema}` }),
      }),
    })
    return {
      db,
      close: async () => {
        await db.destroy()
        await admin.query(`DROP SCHEMA ${schema} CASCADE`)
        await admin.end()
      },
    }
  })
})

describeEachDatabase('accounts migration 0002_signing_keys', (open) => {
  it('creates the signing-key table the default storage uses; storage migrate() is then a no-op', async () => {
    const db = await open()
    const storage = createKyselyKeyStorage(db)
    // The table is there from migrateToLatest alone.
    expect(await storage.list()).toEqual([])
    await storage.migrate()
    const keyring = testKeyring()
    const keys = createKeySet({ storage, sealer: createKeyringSealer(keyring) })
    await keys.load()
    expect(await storage.list()).toHaveLength(2)
    expect(await migrateToLatest(db)).toEqual({ applied: [] })
  })
})

const statuses = async (db: TesseraDB): Promise<string[]> =>
  (await createKyselyKeyStorage(db).list()).map((key) => key.status).sort()

// better-sqlite3 is synchronous: a second connection in the same process waiting on the file
// lock blocks the event loop the first one needs to finish, so SQLite races across real
// processes (the cold-start test below) rather than handles.
describeWithService('postgres', 'signing keys: one current key across pools (item 13)', (url) => {
  it('four independent pools loading at once on an empty database sign with one key', async () => {
    const dbs = await openPostgres(url).many(4)
    const keyring = testKeyring()
    const sets = dbs.map((db) =>
      createKeySet({ storage: createKyselyKeyStorage(db), sealer: createKeyringSealer(keyring) }),
    )
    await Promise.all(sets.map((keys) => keys.load()))
    expect(await statuses(dbs[0] as TesseraDB)).toEqual(['current', 'next'])
    expect(new Set(sets.map((keys) => keys.signingKey().kid)).size).toBe(1)

    // Four rotations at once: the keys move once or more, never to two current keys.
    await Promise.all(sets.map((keys) => keys.rotate()))
    const after = await statuses(dbs[0] as TesseraDB)
    expect(after.filter((status) => status === 'current')).toHaveLength(1)
    expect(after.filter((status) => status === 'next')).toHaveLength(1)
    await Promise.all(sets.map((keys) => keys.load()))
    expect(new Set(sets.map((keys) => keys.signingKey().kid)).size).toBe(1)
  })
})

describeEachDatabase('signing keys: the storage enforces one current key (item 13)', (open) => {
  it('the database itself refuses a second current key (migration 0003)', async () => {
    const db = await open()
    const storage = createKyselyKeyStorage(db)
    const keys = createKeySet({ storage, sealer: createKeyringSealer(testKeyring()) })
    await keys.load()
    const [current] = (await storage.list()).filter((key) => key.status === 'current')
    if (current === undefined) throw new Error('no current key')
    const other = { ...current, kid: `${current.kid}-2` }
    expect(await storage.commit({ expect: [], write: [other] })).toBe(false)
    await expect(storage.put(other)).rejects.toBeDefined()
    expect(await statuses(db)).toEqual(['current', 'next'])
  })

  it('migration 0003 settles keys doubled before it: the newest current signs, the other retires', async () => {
    const db = await open()
    const table = uniqueName('doubled')
    const storage = createKyselyKeyStorage(db, { table })
    await createSigningKeyTable(db, table)
    const base = { alg: 'EdDSA' as const, publicJwk: '{}', sealedPrivateKey: 'x', retiredAt: null }
    await storage.put({ ...base, kid: 'old', status: 'current', createdAt: 1, activatedAt: 1 })
    await storage.put({ ...base, kid: 'new', status: 'current', createdAt: 2, activatedAt: 2 })
    await storage.put({ ...base, kid: 'n1', status: 'next', createdAt: 1, activatedAt: null })
    await storage.put({ ...base, kid: 'n2', status: 'next', createdAt: 2, activatedAt: null })
    await storage.migrate()
    const rows = await storage.list()
    expect(rows.map((key) => [key.kid, key.status]).sort()).toEqual([
      ['n2', 'next'],
      ['new', 'current'],
      ['old', 'previous'],
    ])
    expect(rows.find((key) => key.kid === 'old')?.retiredAt).not.toBeNull()
  })
})

describe('signing keys: a real multi-process cold start (issue 12 item 13)', () => {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'key-cold-start.ts')

  async function coldStart(args: string[], count: number): Promise<string[]> {
    const children = Array.from({ length: count }, () =>
      spawn(process.execPath, ['--import', 'tsx', script, ...args], {
        stdio: ['pipe', 'pipe', 'inherit'],
      }),
    )
    const outputs = children.map((child) => {
      const lines: string[] = []
      const waiters: Array<() => void> = []
      let buffer = ''
      child.stdout.on('data', (chunk: Buffer) => {
        buffer += chunk.toString()
        let index
        while ((index = buffer.indexOf('\n')) !== -1) {
          lines.push(buffer.slice(0, index))
          buffer = buffer.slice(index + 1)
          for (const wake of waiters.splice(0)) wake()
        }
      })
      return async (n: number): Promise<string> => {
        while (lines.length < n) await new Promise<void>((resolve) => waiters.push(resolve))
        return lines[n - 1] as string
      }
    })
    try {
      expect(await Promise.all(outputs.map((line) => line(1)))).toEqual(children.map(() => 'ready'))
      for (const child of children) child.stdin.write('go\n')
      const results = await Promise.all(outputs.map((line) => line(2)))
      return results.map((text) => {
        const parsed = JSON.parse(text) as { kid?: string; error?: string }
        if (parsed.kid === undefined) throw new Error(parsed.error ?? text)
        return parsed.kid
      })
    } finally {
      for (const child of children) child.kill()
    }
  }

  it('four processes starting at once on an empty SQLite file sign with one key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-keys-'))
    try {
      const file = join(dir, 'accounts.db')
      // The schema first: Kysely takes no migration lock on SQLite (its lock is a no-op there),
      // so this test races what item 13 is about, the keys, on a migrated, key-less file.
      const setup = await createDatabase(`sqlite:${file}`)
      await migrateToLatest(setup)
      await setup.destroy()
      const kids = await coldStart([randomBytes(32).toString('base64url'), `sqlite:${file}`], 4)
      expect(new Set(kids).size).toBe(1)
      const db = await createDatabase(`sqlite:${file}`)
      try {
        const rows = await createKyselyKeyStorage(db).list()
        expect(rows.map((key) => key.status).sort()).toEqual(['current', 'next'])
      } finally {
        await db.destroy()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)

  describeWithService('postgres', 'on PostgreSQL', (url) => {
    it('four processes starting at once on an empty schema sign with one key', async () => {
      const schema = uniqueName('coldkeys')
      const admin = new pg.Client({ connectionString: url })
      await admin.connect()
      await admin.query(`CREATE SCHEMA ${schema}`)
      try {
        const kids = await coldStart([randomBytes(32).toString('base64url'), url, schema], 4)
        expect(new Set(kids).size).toBe(1)
        const { rows } = await admin.query<{ status: string }>(
          `SELECT status FROM ${schema}.tessera_signing_keys ORDER BY status`,
        )
        expect(rows.map((row) => row.status)).toEqual(['current', 'next'])
      } finally {
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
        await admin.end()
      }
    }, 60_000)
  })
})
