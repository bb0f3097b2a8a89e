import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto'
import { TesseraError } from '../core/errors.js'
import type { Keyring } from '../core/keyring.js'
import { sealValue, unsealValue } from '../core/sealing.js'
import { exportPublicJWK, thumbprint, type JWKS, type PublicJWK } from '../jwt/jwk.js'
import { pinKey, type JWSAlgorithm, type PinnedKey } from '../jwt/jws.js'

/** Asymmetric algorithms a {@link KeySet} can generate keys for. */
export type AsymmetricAlgorithm = 'EdDSA' | 'ES256' | 'RS256'

/**
 * Where a key is in its life: `next` is published but does not sign yet, `current` signs,
 * `previous` no longer signs and is kept until every token it signed has expired.
 */
export type KeyStatus = 'next' | 'current' | 'previous'

/** One signing key as a {@link KeyStorage} holds it. The private key is always sealed. */
export interface StoredSigningKey {
  kid: string
  alg: AsymmetricAlgorithm
  status: KeyStatus
  /** The public key as a JWK (JSON text). */
  publicJwk: string
  /** The private key, sealed with the keyring's `seal` purpose. Never plain text. */
  sealedPrivateKey: string
  /** Epoch milliseconds. */
  createdAt: number
  /** When it started to sign (epoch ms), or `null` while `next`. */
  activatedAt: number | null
  /** When it stopped signing (epoch ms), or `null` while `next` or `current`. */
  retiredAt: number | null
}

/**
 * A change of the stored key set computed from what was read: applied by
 * {@link KeyStorage.commit} only if that is still what the storage holds.
 */
export interface KeyChange {
  /** Keys that must still have these statuses; if one does not, nothing is written. */
  readonly expect: ReadonlyArray<{ readonly kid: string; readonly status: KeyStatus }>
  /**
   * Keys to write, in order: a kid named in `expect` is updated (status and times), any other
   * is inserted (and must not exist yet).
   */
  readonly write: readonly StoredSigningKey[]
}

/**
 * Persistence of signing keys. Implementations store records as given; they never see a
 * private key in plain text.
 */
export interface KeyStorage {
  /** Every stored key. */
  list(): Promise<StoredSigningKey[]>
  /** Inserts or replaces the key with `key.kid`. */
  put(key: StoredSigningKey): Promise<void>
  /** Removes a key; removing a missing key is not an error. */
  delete(kid: string): Promise<void>
  /**
   * Applies `change` atomically, across every process sharing the storage: all of it when each
   * `expect` still holds, no kid to insert exists, and the result has at most one `current` and
   * at most one `next` key; else nothing, resolving `false` (another process changed the keys
   * first: read them again). Key creation and rotation go through it, so several processes
   * starting at once on an empty storage end with one current key.
   */
  commit(change: KeyChange): Promise<boolean>
}

/** Encrypts private keys at rest; `unseal` returns `null` for anything it cannot open. */
export interface KeySealer {
  seal(plaintext: string): string
  unseal(sealed: string): string | null
}

/** Purpose label bound into each sealed private key (AES-256-GCM associated data). */
const SEAL_LABEL = 'jwt-signing-key'

/**
 * The {@link KeySealer} over the keyring's `seal` key (`sealValue`/`unsealValue`): private keys
 * sealed by the current secret, opened by it or by a fallback.
 */
export function createKeyringSealer(keyring: Keyring): KeySealer {
  return {
    seal: (plaintext) => sealValue(keyring, SEAL_LABEL, plaintext),
    unseal: (sealed) => unsealValue(keyring, SEAL_LABEL, sealed)?.value ?? null,
  }
}

/** The key a token is signed with. */
export interface SigningKey {
  readonly kid: string
  readonly alg: JWSAlgorithm
  /** Private key (asymmetric) or secret key (HS256). Never log or serialize it. */
  readonly privateKey: KeyObject
}

/** What `keys list` shows about a key: no key material. */
export interface KeyInfo {
  kid: string
  alg: JWSAlgorithm
  status: KeyStatus
  createdAt: number | null
  activatedAt: number | null
  retiredAt: number | null
}

/** A set of signing keys: one signs, the others verify. */
export interface KeySet {
  /** The algorithm new tokens are signed with. */
  readonly algorithm: JWSAlgorithm
  /** Loads the keys, creating the first current and next keys when storage is empty. */
  load(): Promise<void>
  /** Reloads from storage when the last load is older than the reload interval. */
  refreshIfStale(): Promise<void>
  /** The key that signs now. @throws TesseraError `config_invalid` before {@link KeySet.load} */
  signingKey(): SigningKey
  /** The verification key named `kid`, or `undefined`. Synchronous: the hot path. */
  verificationKey(kid: string | undefined): PinnedKey | undefined
  /** The public keys (next, current, previous) as a JWKS. Empty for HS256. */
  jwks(): JWKS
  /** The keys without their material, newest first. */
  list(): KeyInfo[]
  /**
   * Promotes next to current, makes a new next, and deletes previous keys whose tokens have all
   * expired.
   */
  rotate(): Promise<KeyInfo[]>
}

/** Options of {@link createKeySet}. */
export interface KeySetOptions {
  /** Where keys are kept. */
  storage: KeyStorage
  /** Seals private keys before they reach storage (the keyring's `seal` purpose). */
  sealer: KeySealer
  /** Algorithm of new keys. @default 'EdDSA' */
  algorithm?: AsymmetricAlgorithm
  /** RSA modulus length in bits, 2048 or more. @default 2048 */
  rsaModulusLength?: number
  /**
   * How long a retired key keeps verifying, in seconds: the longest access-token lifetime plus
   * the leeway. @default 960 (15 minutes + 60 s)
   */
  retainFor?: number
  /** How often other processes' rotations are picked up, in seconds. @default 60 */
  reloadInterval?: number
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number
}

/** Compare-and-set rounds of one load before giving up (each lost round means another won). */
const MAX_KEY_ATTEMPTS = 8

interface LoadedKey {
  info: KeyInfo
  pinned: PinnedKey
  publicJwk: PublicJWK
  privateKey: KeyObject
}

/**
 * Creates an asymmetric key set over a {@link KeyStorage}. Call `load()` once before use.
 *
 * @throws TesseraError `config_invalid` for an unknown algorithm or a short RSA modulus
 * @example
 * ```ts
 * const keys = createKeySet({ storage: createMemoryKeyStorage(), sealer })
 * await keys.load()
 * app.get('/.well-known/jwks.json', (c) => c.json(keys.jwks()))
 * ```
 */
export function createKeySet(options: KeySetOptions): KeySet {
  const algorithm = options.algorithm ?? 'EdDSA'
  if (algorithm !== 'EdDSA' && algorithm !== 'ES256' && algorithm !== 'RS256') {
    throw new TesseraError('config_invalid', 'algorithm must be "EdDSA", "ES256" or "RS256"')
  }
  const modulusLength = options.rsaModulusLength ?? 2048
  if (!Number.isInteger(modulusLength) || modulusLength < 2048) {
    throw new TesseraError('config_invalid', 'rsaModulusLength must be an integer of 2048 or more')
  }
  const retainFor = options.retainFor ?? 960
  if (!(retainFor > 0)) throw new TesseraError('config_invalid', 'retainFor must be positive')
  const reloadInterval = options.reloadInterval ?? 60
  const { storage, sealer } = options
  const now = options.now ?? Date.now

  let loaded: LoadedKey[] = []
  let byKid = new Map<string, LoadedKey>()
  let signer: LoadedKey | undefined
  let loadedAt = -Infinity
  let loading: Promise<void> | undefined

  function generate(status: KeyStatus, at: number): StoredSigningKey {
    const { privateKey } =
      algorithm === 'EdDSA'
        ? generateKeyPairSync('ed25519')
        : algorithm === 'ES256'
          ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
          : generateKeyPairSync('rsa', { modulusLength })
    const kid = thumbprint(privateKey)
    return {
      kid,
      alg: algorithm,
      status,
      publicJwk: JSON.stringify(exportPublicJWK(kid, algorithm, privateKey)),
      // SECURITY: the private key leaves this function only sealed (ASVS 6.4.1).
      sealedPrivateKey: sealer.seal(JSON.stringify(privateKey.export({ format: 'jwk' }))),
      createdAt: at,
      activatedAt: status === 'current' ? at : null,
      retiredAt: null,
    }
  }

  function open(stored: StoredSigningKey): LoadedKey {
    const plaintext = sealer.unseal(stored.sealedPrivateKey)
    if (plaintext === null) {
      throw new TesseraError(
        'config_invalid',
        `signing key "${stored.kid}" cannot be unsealed: was the secret changed without keeping the old one in TESSERA_SECRET_FALLBACKS?`,
      )
    }
    let privateKey: KeyObject
    try {
      privateKey = createPrivateKey({ key: JSON.parse(plaintext) as JsonWebKey, format: 'jwk' })
    } catch (cause) {
      throw new TesseraError('config_invalid', `signing key "${stored.kid}" is corrupt`, { cause })
    }
    const pinned = pinKey(stored.kid, stored.alg, createPublicKey(privateKey))
    return {
      info: {
        kid: stored.kid,
        alg: stored.alg,
        status: stored.status,
        createdAt: stored.createdAt,
        activatedAt: stored.activatedAt,
        retiredAt: stored.retiredAt,
      },
      pinned,
      publicJwk: JSON.parse(stored.publicJwk) as PublicJWK,
      privateKey,
    }
  }

  function install(records: StoredSigningKey[]): void {
    const next = records.map(open)
    next.sort((a, b) => (b.info.activatedAt ?? Infinity) - (a.info.activatedAt ?? Infinity))
    loaded = next
    byKid = new Map(next.map((key) => [key.info.kid, key]))
    // Two processes starting at once may each create a current key: the newest signs, the
    // other still verifies.
    signer = next
      .filter((key) => key.info.status === 'current')
      .sort((a, b) => (b.info.activatedAt ?? 0) - (a.info.activatedAt ?? 0))[0]
    loadedAt = now()
  }

  async function expire(records: StoredSigningKey[], at: number): Promise<StoredSigningKey[]> {
    const kept: StoredSigningKey[] = []
    for (const record of records) {
      if (
        record.status === 'previous' &&
        record.retiredAt !== null &&
        at >= record.retiredAt + retainFor * 1000
      ) {
        await storage.delete(record.kid)
      } else {
        kept.push(record)
      }
    }
    return kept
  }

  async function doLoad(): Promise<void> {
    for (let attempt = 0; attempt < MAX_KEY_ATTEMPTS; attempt += 1) {
      const at = now()
      const records = await expire(await storage.list(), at)
      // SECURITY: one current key across processes: each missing key is created by a
      // compare-and-set on the storage; a process that loses reads the winner's key instead of
      // signing with its own (tokens it signed would fail elsewhere until the next reload).
      if (!records.some((record) => record.status === 'current')) {
        const promoted = records.find((record) => record.status === 'next')
        await storage.commit(
          promoted
            ? {
                expect: [{ kid: promoted.kid, status: 'next' }],
                write: [{ ...promoted, status: 'current', activatedAt: at }],
              }
            : { expect: [], write: [generate('current', at)] },
        )
        continue // won or lost, read what the storage now holds
      }
      if (!records.some((record) => record.status === 'next')) {
        await storage.commit({ expect: [], write: [generate('next', at)] })
        continue
      }
      install(records)
      return
    }
    throw new TesseraError('store_conflict', 'signing keys kept changing while they were loaded')
  }

  function load(): Promise<void> {
    loading ??= doLoad().finally(() => {
      loading = undefined
    })
    return loading
  }

  return {
    algorithm,
    load,
    async refreshIfStale(): Promise<void> {
      if (now() - loadedAt >= reloadInterval * 1000) await load()
    },
    signingKey(): SigningKey {
      if (signer === undefined) {
        throw new TesseraError('config_invalid', 'the key set is not loaded: call load() first')
      }
      return { kid: signer.info.kid, alg: signer.info.alg, privateKey: signer.privateKey }
    },
    verificationKey(kid: string | undefined): PinnedKey | undefined {
      return kid === undefined ? undefined : byKid.get(kid)?.pinned
    },
    jwks(): JWKS {
      return { keys: loaded.map((key) => ({ ...key.publicJwk })) }
    },
    list(): KeyInfo[] {
      return loaded.map((key) => ({ ...key.info }))
    },
    async rotate(): Promise<KeyInfo[]> {
      await load()
      const at = now()
      const records = await storage.list()
      const currents = records.filter((record) => record.status === 'current')
      const next = records.find((record) => record.status === 'next')
      if (next !== undefined) {
        // SECURITY: one compare-and-set: of two rotations at once, one applies and the other
        // finds the keys moved (false) and keeps that rotation; never two current keys.
        await storage.commit({
          expect: [
            ...currents.map((record) => ({ kid: record.kid, status: 'current' as const })),
            { kid: next.kid, status: 'next' },
          ],
          write: [
            ...currents.map((record) => ({
              ...record,
              status: 'previous' as const,
              retiredAt: at,
            })),
            { ...next, status: 'current', activatedAt: at },
            generate('next', at),
          ],
        })
      }
      await doLoad()
      return loaded.map((key) => ({ ...key.info }))
    },
  }
}

/**
 * A key set for HS256 from the keyring's `jwt-hs256` purpose: for a single service that both
 * issues and verifies, with no JWKS. The current secret signs; fallback secrets verify. Rotate
 * by rotating the secret.
 */
export function createHMACKeySet(keyring: Keyring): KeySet {
  const keys = keyring.keys('jwt-hs256')
  const pinned = new Map(keys.map((key) => [key.kid, pinKey(key.kid, 'HS256', key.keyObject)]))
  const current = keyring.key('jwt-hs256')
  return {
    algorithm: 'HS256',
    load: () => Promise.resolve(),
    refreshIfStale: () => Promise.resolve(),
    signingKey: () => ({ kid: current.kid, alg: 'HS256', privateKey: current.keyObject }),
    verificationKey: (kid) => (kid === undefined ? undefined : pinned.get(kid)),
    // SECURITY: an HMAC secret is never published.
    jwks: () => ({ keys: [] }),
    list: () =>
      keys.map((key) => ({
        kid: key.kid,
        alg: 'HS256' as const,
        status: key.current ? ('current' as const) : ('previous' as const),
        createdAt: null,
        activatedAt: null,
        retiredAt: null,
      })),
    rotate: () =>
      Promise.reject(
        new TesseraError(
          'config_invalid',
          'HS256 keys come from the secret: rotate TESSERA_SECRET (keep the old one in TESSERA_SECRET_FALLBACKS)',
        ),
      ),
  }
}

/** @deprecated renamed {@link createHMACKeySet} (STYLE.md: acronyms upper case). */
export const createHmacKeySet = createHMACKeySet

/** Key storage in process memory, for tests and single-process development. */
export function createMemoryKeyStorage(): KeyStorage {
  const keys = new Map<string, StoredSigningKey>()
  return {
    commit: (change) => {
      const kept = new Map(change.expect.map((entry) => [entry.kid, entry.status]))
      for (const [kid, status] of kept) {
        if (keys.get(kid)?.status !== status) return Promise.resolve(false)
      }
      const after = new Map(keys)
      for (const key of change.write) {
        if (!kept.has(key.kid) && after.has(key.kid)) return Promise.resolve(false)
        after.set(key.kid, { ...key })
      }
      for (const status of ['current', 'next'] as const) {
        if ([...after.values()].filter((key) => key.status === status).length > 1) {
          return Promise.resolve(false)
        }
      }
      keys.clear()
      for (const [kid, key] of after) keys.set(kid, key)
      return Promise.resolve(true)
    },
    list: () => Promise.resolve([...keys.values()].map((key) => ({ ...key }))),
    put: (key) => {
      keys.set(key.kid, { ...key })
      return Promise.resolve()
    },
    delete: (kid) => {
      keys.delete(kid)
      return Promise.resolve()
    },
  }
}
