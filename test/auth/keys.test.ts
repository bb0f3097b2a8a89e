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
import { createKyselyKeyStorage } from '../../src/auth/kysely-key-storage.js'
import { isTesseraError } from '../../src/core/errors.js'
import { createKeyring } from '../../src/core/keyring.js'
import { importPublicJWK } from '../../src/jwt/jwk.js'
import { migrateToLatest } from '../../src/auth/db/database.js'
import { describeEachDatabase } from '../helpers/databases.js'
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
