import { randomBytes } from 'node:crypto'
import { createKeyring, type Keyring } from '../../src/core/keyring.js'

/** A keyring for tests (strict policy: the secret is random). */
export function testKeyring(): Keyring {
  return createKeyring(randomBytes(32).toString('base64url'))
}
