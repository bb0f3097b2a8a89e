import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import type { KeySealer } from '../../src/auth/keys.js'
import { createKeyring, type Keyring } from '../../src/core/keyring.js'
import type { SessionRecord, SessionStore } from '../../src/core/session-store.js'

/** A keyring for tests (strict policy: the secret is random). */
export function testKeyring(): Keyring {
  return createKeyring(randomBytes(32).toString('base64url'))
}

/**
 * AES-256-GCM with the keyring's `seal` key: stands in for `sealValue`/`unsealValue` from
 * src/core/sealing.ts until the core branch is merged.
 */
export function testSealer(keyring: Keyring): KeySealer {
  const key = keyring.key('seal').keyObject
  return {
    seal(plaintext) {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
      return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')
    },
    unseal(sealed) {
      try {
        const bytes = Buffer.from(sealed, 'base64url')
        const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12))
        decipher.setAuthTag(bytes.subarray(12, 28))
        return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString()
      } catch {
        return null
      }
    },
  }
}

/**
 * The smallest SessionStore with a real compare-and-set, each call crossing an await like a real
 * store does. Stands in for the memory store until the sessions branch is merged.
 */
export function interimMemoryStore(): SessionStore & { size(): number } {
  const records = new Map<string, SessionRecord>()
  const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
  const copy = (record: SessionRecord): SessionRecord => structuredClone(record)
  return {
    size: () => records.size,
    async get(id) {
      await tick()
      const record = records.get(id)
      return record === undefined ? null : copy(record)
    },
    async create(record) {
      await tick()
      records.set(record.id, copy(record))
    },
    async update(record, expectedVersion) {
      await tick()
      const stored = records.get(record.id)
      if (stored === undefined || stored.version !== expectedVersion) return false
      records.set(record.id, copy(record))
      return true
    },
    async delete(id) {
      await tick()
      records.delete(id)
    },
    async listByUser(userId) {
      await tick()
      return [...records.values()].filter((r) => r.userId === userId).map(copy)
    },
    async deleteByUser(userId, options = {}) {
      await tick()
      let count = 0
      for (const [id, record] of records) {
        if (record.userId === userId && id !== options.except) {
          records.delete(id)
          count += 1
        }
      }
      return count
    },
  }
}
