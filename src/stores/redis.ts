import { createHash } from 'node:crypto'
import { ErrorReply } from 'redis'
import { TesseraError } from '../core/errors.js'
import { PUBLIC_ID_LENGTH } from '../core/session-store.js'
import type { SessionRecord, SessionStore } from '../core/session-store.js'
import { timeoutMs, withDeadline } from './deadline.js'
import { checkRecord, deathTime } from './record-codec.js'

/** The per-command options the store passes to node-redis (v6 honours `timeout`). */
interface CommandOptions {
  timeout?: number
}

/** A node-redis v6 client (`createClient()` of the `redis` package), as the store uses it. */
export interface RedisClientLike {
  sendCommand(args: string[], options?: CommandOptions): Promise<unknown>
}

/** A node-redis v6 cluster client (`createCluster()` of the `redis` package), as the store uses it. */
export interface RedisClusterLike {
  sendCommand(
    firstKey: string | undefined,
    isReadonly: boolean | undefined,
    args: string[],
    options?: CommandOptions,
  ): Promise<unknown>
  readonly masters: readonly unknown[]
  /**
   * The client of one node (node-redis `cluster.nodeClient(master)`); {@link RedisStore.count}
   * uses it to SCAN each master. Without it, `count()` is refused.
   */
  nodeClient?(node: unknown): Promise<RedisClientLike>
}

/** The Redis session store: the {@link SessionStore} contract and a count of live sessions. */
export interface RedisStore extends SessionStore {
  /**
   * How many sessions live under this store's prefix (anonymous ones included), by one pass of
   * `SCAN MATCH <prefix>s:{*` over the server (each master of a cluster), `COUNT 1000` keys per
   * call. It adds nothing to the other operations, but its cost grows with every key of the
   * Redis database, ours or not (about one call per thousand keys): call it for a gauge or a
   * dashboard, and cache the result (the server keeps it 30 seconds). Expired sessions are not
   * counted (Redis drops a key at the record's expiry). SCAN may return a key twice while Redis
   * resizes its table or a cluster moves a slot, so the figure can run slightly high then.
   *
   * @throws TesseraError `store_unavailable` as the other operations; `config_invalid` on a
   * cluster client without `nodeClient`
   */
  count(): Promise<number>
}

/** Options of {@link createRedisStore}. */
export interface RedisStoreOptions {
  /**
   * Prepended to every key. Use one per application (and per test) on a shared server; it must
   * not contain `{` or `}` (they would pin every key to one cluster slot). @default 'tessera:'
   */
  prefix?: string
  /** Clock in epoch milliseconds, for key TTLs and `listByUser`. @default Date.now */
  now?: () => number
  /**
   * Seconds one Redis command may take, queueing included, before the store call rejects with
   * `store_unavailable`, enforced by the store itself (node-redis' per-command timeout is turned
   * off for the store's commands: it costs a timer and an exception per command). @default 1
   */
  timeout?: number
}

/**
 * A session store in Redis or Redis Cluster, over a node-redis v6 client the caller created,
 * connected and owns.
 *
 * Layout (with the default prefix):
 * - `tessera:s:{<id>}`: one hash per session (`r` the record as JSON, `v` its version, `u` its
 *   user), with a TTL at the record's next expiry, `min(expiresAt, absoluteExpiresAt)`.
 *   Requests look sessions up by id alone, so the id is the hash tag; every single-session
 *   operation, compare-and-set included, is one Lua script on this one key, hence atomic and
 *   valid on a cluster.
 * - `tessera:u:{<userId>}`: the set of a user's session ids, with a TTL at the latest absolute
 *   expiry of its members. Per-user keys carry the user id as hash tag, so they share a slot.
 *   The set is written before the session on create and update (a live session is always in its
 *   user's set) and cleaned of dead ids whenever it is listed.
 * - `tessera:p:{<userId>}`: a hash from each of the user's public ids (the first 22 characters of
 *   a session id) to the id, written and cleaned with the set (same hash tag, same slot), so
 *   `getByPublicId` (a bearer token's live-session check) is two keyed reads, not a listing.
 *
 * Configure the client for failures (see docs/stores.md): `socket.connectTimeout: 1000`,
 * `disableOfflineQueue: true`, `commandOptions: { timeout: 1000 }`, and an `error` listener.
 * Whatever the client does, every store call settles within about `timeout` per command.
 *
 * @throws TesseraError `config_invalid` for a prefix with `{` or `}`, or a bad timeout.
 * Operations throw `store_unavailable` when Redis cannot be reached or does not answer in time
 * (also `CLUSTERDOWN`, `LOADING`, `TRYAGAIN`, `MASTERDOWN`, `READONLY` replies); other error
 * replies are thrown as they are.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis'
 * import { createRedisStore } from 'tessera-auth/stores/redis'
 *
 * const client = createClient({
 *   url: process.env.REDIS_URL,
 *   socket: { connectTimeout: 1000 },
 *   disableOfflineQueue: true,
 *   commandOptions: { timeout: 1000 },
 * })
 * client.on('error', (error) => console.error('redis', error))
 * await client.connect()
 * const store = createRedisStore(client, { prefix: 'myapp:sess:' })
 * ```
 */
export function createRedisStore(
  client: RedisClientLike | RedisClusterLike,
  options: RedisStoreOptions = {},
): RedisStore {
  const prefix = options.prefix ?? 'tessera:'
  if (/[{}]/.test(prefix)) {
    throw new TesseraError(
      'config_invalid',
      'createRedisStore options.prefix must not contain { or }',
    )
  }
  const now = options.now ?? Date.now
  const deadline = timeoutMs('createRedisStore options.timeout', options.timeout ?? 1)
  // The store bounds every call itself (withDeadline: one plain timer). node-redis's own
  // per-command timeout (its default is 5 s) costs an AbortSignal.timeout per command, whose
  // timer later fires and builds a DOMException even for a command long answered: about 7% of
  // the server's CPU on `GET /auth/session`. 0 turns it off for the store's commands only.
  const commandOptions: CommandOptions = { timeout: 0 }
  const cluster = 'masters' in client

  const sessionKey = (id: string): string => `${prefix}s:{${id}}`
  const userKey = (userId: string): string => `${prefix}u:{${userId}}`
  const publicKey = (userId: string): string => `${prefix}p:{${userId}}`
  // The user's keys for the index scripts. An empty user id has no hash tag (`{}` hashes the
  // whole key), so its two keys could sit on two cluster slots: it gets no public-id hash.
  const indexKeys = (userId: string): string[] =>
    userId === '' ? [userKey(userId)] : [userKey(userId), publicKey(userId)]

  /** One command on `key`'s slot, bounded by the timeout, errors mapped. */
  async function send(key: string, args: string[]): Promise<unknown> {
    try {
      // SECURITY: every read goes to the master (isReadonly false): a replica can lag behind a
      // logout and hand out a revoked session.
      const reply = cluster
        ? client.sendCommand(key, false, args, commandOptions)
        : client.sendCommand(args, commandOptions)
      return await withDeadline(reply, deadline, 'Redis')
    } catch (error) {
      throw toStoreError(error)
    }
  }

  /** One command on one node (a SCAN), bounded and mapped like {@link send}. */
  async function sendTo(node: RedisClientLike, args: string[]): Promise<unknown> {
    try {
      return await withDeadline(node.sendCommand(args, commandOptions), deadline, 'Redis')
    } catch (error) {
      throw toStoreError(error)
    }
  }

  /** The clients whose keyspaces together hold every key: the server, or each cluster master. */
  async function nodes(): Promise<RedisClientLike[]> {
    if (!('masters' in client)) return [client]
    const nodeClient = client.nodeClient?.bind(client)
    if (nodeClient === undefined) {
      throw new TesseraError(
        'config_invalid',
        'createRedisStore count() on a cluster needs a client with nodeClient() (node-redis createCluster)',
      )
    }
    try {
      return await Promise.all(client.masters.map((master) => nodeClient(master)))
    } catch (error) {
      throw toStoreError(error)
    }
  }

  /**
   * Runs a script by its digest, loading it once per node when the node does not know it.
   * Every key of `keys` shares the first one's slot (one hash tag).
   */
  async function script(lua: Script, key: string | string[], args: string[]): Promise<unknown> {
    const keys = typeof key === 'string' ? [key] : key
    const first = keys[0] as string
    try {
      return await send(first, ['EVALSHA', lua.sha, String(keys.length), ...keys, ...args])
    } catch (error) {
      if (!(isReply(error) && error.message.startsWith('NOSCRIPT'))) throw error
      return send(first, ['EVAL', lua.source, String(keys.length), ...keys, ...args])
    }
  }

  /** Adds `id` to the user's set and public-id hash, live at least until `until`. */
  async function index(userId: string, id: string, until: number): Promise<void> {
    const ttl = until - now()
    if (ttl <= 0) return
    await script(INDEX, indexKeys(userId), [id, String(ttl), id.slice(0, PUBLIC_ID_LENGTH)])
  }

  /** Removes `ids` from the user's set and public-id hash. */
  async function unindex(userId: string, ids: string[]): Promise<void> {
    if (ids.length === 0) return
    await script(UNINDEX, indexKeys(userId), ids)
  }

  async function read(id: string): Promise<SessionRecord | null> {
    const json = await send(sessionKey(id), ['HGET', sessionKey(id), 'r'])
    return typeof json === 'string' ? (JSON.parse(json) as SessionRecord) : null
  }

  async function listByUser(userId: string): Promise<SessionRecord[]> {
    const key = userKey(userId)
    const ids = await members(key)
    const found = await Promise.all(ids.map(read))
    const live: SessionRecord[] = []
    const stale: string[] = []
    const t = now()
    found.forEach((record, position) => {
      if (record === null || record.userId !== userId) stale.push(ids[position] as string)
      else if (deathTime(record) > t) live.push(record)
    })
    await unindex(userId, stale)
    return live
  }

  return {
    get: read,

    async create(record: SessionRecord): Promise<void> {
      checkRecord(record)
      const ttl = deathTime(record) - now()
      if (ttl <= 0) return // already dead: nothing to keep
      // SECURITY: the user's set is written before the session, so a live session is always in
      // it and "log out everywhere" (deleteByUser) cannot miss one (OWASP ASVS 3.3.3).
      if (record.userId !== null) await index(record.userId, record.id, record.absoluteExpiresAt)
      await script(CREATE, sessionKey(record.id), [
        JSON.stringify(record),
        String(record.version),
        ...owner(record.userId),
        String(ttl),
      ])
    },

    async update(record: SessionRecord, expectedVersion: number): Promise<boolean> {
      checkRecord(record, expectedVersion)
      // SECURITY: the user's set first (see create): if the compare-and-set wins, the session
      // is already listed, also when this update moves it to another user.
      if (record.userId !== null) await index(record.userId, record.id, record.absoluteExpiresAt)
      const reply = await script(UPDATE, sessionKey(record.id), [
        String(expectedVersion),
        String(record.version),
        JSON.stringify(record),
        ...owner(record.userId),
        String(deathTime(record) - now()),
      ])
      const result: unknown[] = Array.isArray(reply) ? reply : []
      const [won, previousUser] = result
      if (won !== 1) return false
      if (typeof previousUser === 'string' && previousUser !== record.userId) {
        await unindex(previousUser, [record.id])
      }
      return true
    },

    async delete(id: string): Promise<void> {
      const userId = await script(DELETE, sessionKey(id), [])
      if (typeof userId === 'string') await unindex(userId, [id])
    },

    listByUser,

    async getByPublicId(userId: string, publicId: string): Promise<SessionRecord | null> {
      if (userId === '' || publicId.length !== PUBLIC_ID_LENGTH) return null
      const found = await script(LOOKUP, [userKey(userId), publicKey(userId)], [publicId])
      if (typeof found === 'string') {
        const record = await read(found)
        return record !== null && record.userId === userId && deathTime(record) > now()
          ? record
          : null
      }
      if (found !== 0) return null
      // Sessions written before the public-id hash existed: find it in the listing once, and
      // index every live one so the next lookup is keyed.
      const live = await listByUser(userId)
      for (const record of live) await index(userId, record.id, record.absoluteExpiresAt)
      return live.find((record) => record.id.slice(0, PUBLIC_ID_LENGTH) === publicId) ?? null
    },

    async deleteByUser(userId: string, deleteOptions: { except?: string } = {}): Promise<number> {
      const key = userKey(userId)
      const ids = (await members(key)).filter((id) => id !== deleteOptions.except)
      const deleted = await Promise.all(
        ids.map((id) => script(DELETE_OWNED, sessionKey(id), [userId])),
      )
      await unindex(userId, ids)
      return deleted.filter((reply) => reply === 1).length
    },

    async count(): Promise<number> {
      // Session keys only: `<prefix>s:{`, with the prefix's glob characters escaped. No other
      // key of ours starts so (user sets are `<prefix>u:{`, refresh tokens `<prefix>rt:s:{`).
      const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}s:{*`
      let total = 0
      for (const node of await nodes()) {
        let cursor = '0'
        do {
          const reply = await sendTo(node, ['SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000'])
          const [next, keys]: unknown[] = Array.isArray(reply) ? (reply as unknown[]) : []
          if (typeof next !== 'string' || !Array.isArray(keys)) {
            throw new TesseraError('store_unavailable', 'Redis session store: bad SCAN reply')
          }
          cursor = next
          total += keys.length
        } while (cursor !== '0')
      }
      return total
    },
  }

  async function members(key: string): Promise<string[]> {
    const reply = await send(key, ['SMEMBERS', key])
    return Array.isArray(reply) ? reply.filter((member) => typeof member === 'string') : []
  }
}

/**
 * The `maxmemory-policy` of the Redis server (of each master, for a cluster client with
 * `nodeClient`), by `CONFIG GET`, or `null` when it cannot be read: a managed Redis that hides or
 * renames `CONFIG`, or a user without the right to it. Revocation relies on keys Redis must not
 * drop (a user's set of sessions, a login counter): anything but `noeviction` can evict them
 * under memory pressure (docs/stores.md), so check this at start.
 *
 * @throws TesseraError `store_unavailable` when Redis cannot be reached or does not answer
 * within `timeout` seconds (default 1)
 */
export async function readEvictionPolicy(
  client: RedisClientLike | RedisClusterLike,
  options: { timeout?: number } = {},
): Promise<string | null> {
  const deadline = timeoutMs('readEvictionPolicy options.timeout', options.timeout ?? 1)
  const args = ['CONFIG', 'GET', 'maxmemory-policy']
  let targets: RedisClientLike[]
  if (!('masters' in client)) targets = [client]
  else if (client.nodeClient === undefined) {
    targets = [{ sendCommand: (command) => client.sendCommand(undefined, false, command) }]
  } else {
    const nodeClient = client.nodeClient.bind(client)
    targets = await Promise.all(client.masters.map((master) => nodeClient(master)))
  }
  const policies = new Set<string>()
  for (const target of targets) {
    let reply: unknown
    try {
      reply = await withDeadline(target.sendCommand(args, { timeout: 0 }), deadline, 'Redis')
    } catch (error) {
      if (isReply(error) && !UNAVAILABLE_REPLY.test(error.message)) return null // no CONFIG here
      throw toStoreError(error)
    }
    const policy = configValue(reply, 'maxmemory-policy')
    if (policy === null) return null
    policies.add(policy)
  }
  // The least safe policy decides: any master that may evict can lose a revocation.
  return [...policies].find((policy) => policy !== 'noeviction') ?? [...policies][0] ?? null
}

/** A value from a `CONFIG GET` reply: a flat array (RESP2), a Map or an object (RESP3). */
function configValue(reply: unknown, name: string): string | null {
  if (Array.isArray(reply)) {
    const index = reply.indexOf(name)
    const value: unknown = index >= 0 ? reply[index + 1] : undefined
    return typeof value === 'string' ? value : null
  }
  if (reply instanceof Map) {
    const value: unknown = reply.get(name)
    return typeof value === 'string' ? value : null
  }
  if (typeof reply === 'object' && reply !== null) {
    const value: unknown = (reply as Record<string, unknown>)[name]
    return typeof value === 'string' ? value : null
  }
  return null
}

/** The script arguments naming a session's user: a flag, then the id (empty for anonymous). */
function owner(userId: string | null): [string, string] {
  return userId === null ? ['0', ''] : ['1', userId]
}

interface Script {
  source: string
  sha: string
}

function defineScript(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

// ARGV: record JSON, version, has-user flag, user id, TTL ms. Replaces whatever was there.
const CREATE = defineScript(`
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'r', ARGV[1], 'v', ARGV[2])
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'u', ARGV[4]) end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`)

// Compare-and-set. ARGV: expected version, new version, record JSON, has-user flag, user id,
// TTL ms. Returns {0} when the key is gone or its version moved (never recreating it), else
// {1, previous user or nil}. A TTL of zero or less deletes the record: it is dead.
const UPDATE = defineScript(`
local version = redis.call('HGET', KEYS[1], 'v')
if (not version) or version ~= ARGV[1] then return {0} end
local previous = redis.call('HGET', KEYS[1], 'u')
redis.call('HSET', KEYS[1], 'r', ARGV[3], 'v', ARGV[2])
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'u', ARGV[5]) else redis.call('HDEL', KEYS[1], 'u') end
if tonumber(ARGV[6]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
else
  redis.call('DEL', KEYS[1])
end
return {1, previous}
`)

// Deletes a session; returns its user id (nil for none or anonymous) so the caller can clean
// the user's set.
const DELETE = defineScript(`
local user = redis.call('HGET', KEYS[1], 'u')
redis.call('DEL', KEYS[1])
return user
`)

// Deletes a session only if it belongs to ARGV[1]; returns 1 when it did.
const DELETE_OWNED = defineScript(`
if redis.call('HGET', KEYS[1], 'u') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// KEYS: the user's set, the user's public-id hash (absent for an empty user id). Adds ARGV[1] to the set and maps its public
// id ARGV[3] to it in the hash, and extends both TTLs to at least ARGV[2] ms (never shortens).
const INDEX = defineScript(`
for index, key in ipairs(KEYS) do
  if index == 1 then redis.call('SADD', key, ARGV[1]) else redis.call('HSET', key, ARGV[3], ARGV[1]) end
  if redis.call('PTTL', key) < tonumber(ARGV[2]) then redis.call('PEXPIRE', key, ARGV[2]) end
end
return 1
`)

// KEYS: the user's set, the user's public-id hash. Removes the ids ARGV from both (a public id
// only while it still names that id).
const UNINDEX = defineScript(`
for _, id in ipairs(ARGV) do
  redis.call('SREM', KEYS[1], id)
  local publicId = string.sub(id, 1, ${PUBLIC_ID_LENGTH})
  if KEYS[2] and redis.call('HGET', KEYS[2], publicId) == id then redis.call('HDEL', KEYS[2], publicId) end
end
return 1
`)

// KEYS: the user's set, the user's public-id hash. The id of public id ARGV[1]; else 0 when some
// id of the set is missing from the hash (written before it existed), else nil.
const LOOKUP = defineScript(`
local id = redis.call('HGET', KEYS[2], ARGV[1])
if id then return id end
if redis.call('SCARD', KEYS[1]) > redis.call('HLEN', KEYS[2]) then return 0 end
return false
`)

// Replies that mean "the server (or cluster) cannot serve this now", not "your command is wrong".
// OOM: a full Redis under `noeviction` refuses writes ("OOM command not allowed when used memory
// > 'maxmemory'"): the store cannot keep a session, which is an outage, not a bug.
const UNAVAILABLE_REPLY =
  /^(CLUSTERDOWN|LOADING|MASTERDOWN|TRYAGAIN|BUSY|READONLY|NOREPLICAS|OOM)\b/

function isReply(error: unknown): error is Error {
  if (error instanceof ErrorReply) return true
  // A client from another copy of the redis package: look at the class names.
  for (let proto: unknown = error; proto !== null && typeof proto === 'object';) {
    proto = Object.getPrototypeOf(proto)
    const name = (proto as { constructor?: { name?: unknown } } | null)?.constructor?.name
    if (name === 'ErrorReply') return true
  }
  return false
}

function toStoreError(error: unknown): unknown {
  if (error instanceof TesseraError) return error
  if (isReply(error)) {
    if (!UNAVAILABLE_REPLY.test(error.message)) return error
  } else if (error instanceof TypeError || error instanceof RangeError) {
    return error // a bug in the call, not the network
  }
  // Everything else a node-redis call rejects with is about the connection: closed, offline,
  // socket closed unexpectedly, connect or command timeout, a cluster that cannot route.
  const reason = describeError(error)
  return new TesseraError('store_unavailable', `Redis session store: ${reason}`, { cause: error })
}

/** The error's message, or its class name when it has none (node-redis timeouts). */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  return error.message !== '' ? error.message : error.constructor.name
}

// The near-cache (issue 18, docs/scaling.md) ships with this entry point: its invalidation
// channel is Redis pub/sub.
export {
  createRedisInvalidation,
  type InvalidationListener,
  type RedisInvalidation,
  type RedisInvalidationOptions,
  type RedisPublisherLike,
  type RedisSubscriberLike,
} from './redis-invalidation.js'
export {
  createNearCache,
  createNearCacheStore,
  type NearCache,
  type NearCacheOptions,
} from './near-cache.js'
