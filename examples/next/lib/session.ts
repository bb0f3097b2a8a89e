import { createKeyring, createSessionManager } from 'tessera-auth'
import { createSealedSession, createStoreSession } from 'tessera-auth/next'
import { createRedisStore } from 'tessera-auth/stores/redis'
import { createClient } from 'redis'

const keyring = createKeyring(process.env.TESSERA_SECRET!)
const secure = process.env.NODE_ENV === 'production'

// Stateless: the data sealed in the cookie (revocable only by rotating the secret).
export const sealed = createSealedSession<{ userId: string }>(keyring, { secure, ttl: 7 * 86_400 })

// Store-backed: a signed opaque token in the cookie, SHA-256 of it in Redis.
const redis = createClient({ url: process.env.REDIS_URL, disableOfflineQueue: true })
await redis.connect()
export const sessions = createStoreSession(
  createSessionManager(createRedisStore(redis), keyring, { secure }),
)
