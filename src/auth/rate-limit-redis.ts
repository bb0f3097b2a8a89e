import { TesseraError } from '../core/errors.js'
import { timeoutMs, withDeadline } from '../stores/deadline.js'
import type {
  BackoffPolicy,
  RateLimitDecision,
  RateLimitStore,
  WindowPolicy,
} from './rate-limit.js'

/** The part of a node-redis (v5/v6) client or cluster this store uses. */
export interface RedisEvalClientLike {
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>
}

/** Options of {@link createRedisRateLimitStore}. */
export interface RedisRateLimitStoreOptions {
  /** Prefix of every key. @default 'tessera:rl:' */
  prefix?: string
  /**
   * Seconds one script may take before the call rejects with `store_unavailable`, enforced by
   * the store itself as the session store does (node-redis stops timing a command once it is
   * written to the socket, so a Redis that hangs would hold a login for as long). @default 1
   */
  timeout?: number
}

// Each script touches one key (Redis Cluster safe) and is a line-by-line copy of applyBackoff,
// applyWindow and applyRefund in rate-limit.ts. A hash holds h (hits), d (delay ms),
// b (blocked until) and e (expires at); the key's TTL only cleans up, decisions use `now`.
// SECURITY: a script runs atomically, so parallel attempts cannot both read the same count.
const BACKOFF = `
local now = tonumber(ARGV[1])
local free = tonumber(ARGV[2])
local initial = tonumber(ARGV[3])
local maxd = tonumber(ARGV[4])
local forget = tonumber(ARGV[5])
local s = redis.call('HMGET', KEYS[1], 'h', 'd', 'b', 'e')
local hits, delay = 0, 0
if s[4] and tonumber(s[4]) > now then
  hits = tonumber(s[1])
  delay = tonumber(s[2])
  local blocked = tonumber(s[3])
  if blocked > now then return {0, blocked - now} end
end
hits = hits + 1
local nd = 0
if hits >= free then
  if delay == 0 then nd = initial else nd = math.min(delay * 2, maxd) end
end
local nb = 0
if nd > 0 then nb = now + nd end
local ne = now + math.max(forget, nd)
redis.call('HSET', KEYS[1], 'h', hits, 'd', nd, 'b', string.format('%d', nb), 'e', string.format('%d', ne))
redis.call('PEXPIRE', KEYS[1], ne - now)
return {1, 0}
`

const WINDOW = `
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 'h', 'e')
local hits, expires = 0, now + window
if s[2] and tonumber(s[2]) > now then
  hits = tonumber(s[1])
  expires = tonumber(s[2])
end
if hits >= limit then return {0, expires - now} end
redis.call('HSET', KEYS[1], 'h', hits + 1, 'd', 0, 'b', 0, 'e', string.format('%d', expires))
redis.call('PEXPIRE', KEYS[1], expires - now)
return {1, 0}
`

const REFUND = `
local now = tonumber(ARGV[1])
local s = redis.call('HMGET', KEYS[1], 'h', 'e')
if s[2] and tonumber(s[2]) > now and tonumber(s[1]) > 0 then
  redis.call('HINCRBY', KEYS[1], 'h', -1)
end
return 0
`

const RESET = `redis.call('DEL', KEYS[1]) return 0`

function decision(reply: unknown): RateLimitDecision {
  if (!Array.isArray(reply) || reply.length !== 2) {
    throw new TesseraError('store_unavailable', 'unexpected reply from the rate-limit script')
  }
  return Number(reply[0]) === 1
    ? { allowed: true }
    : { allowed: false, retryAfterMs: Number(reply[1]) }
}

/**
 * Counters in Redis through node-redis, one Lua script per step (atomic on the server), so every
 * process on the Redis server or cluster enforces one limit.
 *
 * Every call settles within `timeout` (default 1 s): `store_unavailable` when Redis does not
 * answer, cannot be reached, or refuses the write (`OOM command not allowed`).
 *
 * @throws TesseraError `config_invalid` for a bad timeout
 * @example
 * ```ts
 * const client = await createClient({ url }).connect()
 * const limiter = createLoginLimiter({ store: createRedisRateLimitStore(client) })
 * ```
 */
export function createRedisRateLimitStore(
  client: RedisEvalClientLike,
  options: RedisRateLimitStoreOptions = {},
): RateLimitStore {
  const prefix = options.prefix ?? 'tessera:rl:'
  const deadline = timeoutMs('createRedisRateLimitStore options.timeout', options.timeout ?? 1)

  async function run(script: string, key: string, args: number[]): Promise<unknown> {
    try {
      // SECURITY: bounded like every Redis call: a hung Redis fails the login closed (503)
      // within the deadline instead of holding it (and its socket) open.
      return await withDeadline(
        client.eval(script, {
          keys: [prefix + key],
          arguments: args.map((value) => String(Math.round(value))),
        }),
        deadline,
        'the rate-limit Redis',
      )
    } catch (error) {
      if (error instanceof TesseraError) throw error
      throw new TesseraError('store_unavailable', 'the rate-limit Redis did not answer', {
        cause: error,
      })
    }
  }

  return {
    async hitBackoff(key: string, now: number, policy: BackoffPolicy): Promise<RateLimitDecision> {
      return decision(
        await run(BACKOFF, key, [
          now,
          policy.freeFailures,
          policy.initialDelayMs,
          policy.maxDelayMs,
          policy.forgetAfterMs,
        ]),
      )
    },
    async hitWindow(key: string, now: number, policy: WindowPolicy): Promise<RateLimitDecision> {
      return decision(await run(WINDOW, key, [now, policy.limit, policy.windowMs]))
    },
    async refundWindow(key: string, now: number): Promise<void> {
      await run(REFUND, key, [now])
    },
    async reset(key: string): Promise<void> {
      await run(RESET, key, [])
    },
  }
}
