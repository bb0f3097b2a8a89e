// lib/session.ts
import Database from 'better-sqlite3'
import { createKeyring, createSessionManager, type Keyring } from 'tessera-auth'
import { createSealedSession, createStoreSession } from 'tessera-auth/next'
import { createSQLiteStore } from 'tessera-auth/stores/sqlite'

// Made on first use, not at import: `next build` loads this file without TESSERA_SECRET.
function lazy<T extends object>(make: () => T): T {
  let made: T | undefined
  return new Proxy({} as T, { get: (_, key) => Reflect.get((made ??= make()), key) as unknown })
}
let keyring: Keyring | undefined
const getKeyring = (): Keyring => (keyring ??= createKeyring(process.env.TESSERA_SECRET ?? ''))
const secure = process.env.NODE_ENV === 'production'

// Stateless: the data sealed in the cookie (revocable only by rotating the secret).
export const sealed = lazy(() => createSealedSession<{ userId: string }>(getKeyring(), { secure }))
// Server-side: a signed opaque token in the cookie, its SHA-256 in SQLite.
export const sessions = lazy(() =>
  createStoreSession(
    createSessionManager(createSQLiteStore(new Database('sessions.db')), getKeyring(), { secure }),
  ),
)
