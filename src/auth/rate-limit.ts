import { ipRateLimitKey } from '../core/client-ip.js'
import { TesseraError, isTesseraError } from '../core/errors.js'

/**
 * The state of one rate-limit key, as every backend stores it (times are epoch milliseconds).
 * For a backoff key `hits` counts failures and `blockedUntil` is the end of the current lock; for
 * a window key `hits` counts attempts in the window that ends at `expiresAt`.
 */
export interface RateLimitState {
  hits: number
  delayMs: number
  blockedUntil: number
  expiresAt: number
}

/** Per-account policy: a few free failures, then a lock that doubles with every failure. */
export interface BackoffPolicy {
  freeFailures: number
  initialDelayMs: number
  maxDelayMs: number
  forgetAfterMs: number
}

/** Per-IP policy: at most `limit` counted attempts in a fixed window. */
export interface WindowPolicy {
  limit: number
  windowMs: number
}

/** What one atomic step decided: admitted, or refused for `retryAfterMs`. */
export type RateLimitDecision = { allowed: true } | { allowed: false; retryAfterMs: number }

/**
 * Where counters live. Every method is one atomic step on one key, so that several processes on
 * one backend enforce one limit and a burst of parallel attempts admits no more than the budget.
 * tessera ships memory, SQLite, PostgreSQL and Redis backends.
 */
export interface RateLimitStore {
  /** Counts an attempt against a backoff key unless it is locked. */
  hitBackoff(key: string, now: number, policy: BackoffPolicy): Promise<RateLimitDecision>
  /** Counts an attempt against a window key unless the window is full. */
  hitWindow(key: string, now: number, policy: WindowPolicy): Promise<RateLimitDecision>
  /** Gives back one attempt of a window key (a login that succeeded). */
  refundWindow(key: string, now: number): Promise<void>
  /** Forgets a key (a successful login resets the account's failures). */
  reset(key: string): Promise<void>
}

/** The live state, or null when absent or past its expiry. */
function live(state: RateLimitState | null, now: number): RateLimitState | null {
  return state !== null && state.expiresAt > now ? state : null
}

/**
 * One backoff attempt, as a pure function of the stored state; the SQL and memory backends run it
 * inside their atomic step, and the Redis backend's Lua script is a line-by-line copy.
 */
export function applyBackoff(
  stored: RateLimitState | null,
  now: number,
  policy: BackoffPolicy,
): { next: RateLimitState | null; decision: RateLimitDecision } {
  const state = live(stored, now)
  if (state !== null && state.blockedUntil > now) {
    // SECURITY: while locked, nothing is counted and nothing is admitted, right password or not.
    return { next: state, decision: { allowed: false, retryAfterMs: state.blockedUntil - now } }
  }
  // The attempt is counted before the password is checked (a reservation); a success resets the
  // key. So a burst of parallel attempts sees the counter move and admits only the budget.
  const hits = (state?.hits ?? 0) + 1
  const previous = state?.delayMs ?? 0
  const delayMs =
    hits < policy.freeFailures
      ? 0
      : previous === 0
        ? policy.initialDelayMs
        : Math.min(previous * 2, policy.maxDelayMs)
  const next: RateLimitState = {
    hits,
    delayMs,
    blockedUntil: delayMs === 0 ? 0 : now + delayMs,
    expiresAt: now + Math.max(policy.forgetAfterMs, delayMs),
  }
  return { next, decision: { allowed: true } }
}

/** One window attempt, as a pure function of the stored state (see {@link applyBackoff}). */
export function applyWindow(
  stored: RateLimitState | null,
  now: number,
  policy: WindowPolicy,
): { next: RateLimitState | null; decision: RateLimitDecision } {
  const state = live(stored, now)
  if (state !== null && state.hits >= policy.limit) {
    return { next: state, decision: { allowed: false, retryAfterMs: state.expiresAt - now } }
  }
  const next: RateLimitState = {
    hits: (state?.hits ?? 0) + 1,
    delayMs: 0,
    blockedUntil: 0,
    expiresAt: state?.expiresAt ?? now + policy.windowMs,
  }
  return { next, decision: { allowed: true } }
}

/** Gives back one window attempt (pure). */
export function applyRefund(stored: RateLimitState | null, now: number): RateLimitState | null {
  const state = live(stored, now)
  if (state === null) return null
  return { ...state, hits: Math.max(0, state.hits - 1) }
}

/** Options of {@link createMemoryRateLimitStore}. */
export interface MemoryRateLimitStoreOptions {
  /**
   * Most keys kept. Past it, expired keys are swept, then the oldest key that is not locked is
   * forgotten; only when every key is locked does the store refuse (`store_unavailable`).
   * @default 100000
   */
  maxKeys?: number
}

/**
 * Counters in this process only: for a single instance and for tests. Every step is synchronous,
 * hence atomic.
 */
export function createMemoryRateLimitStore(
  options: MemoryRateLimitStoreOptions = {},
): RateLimitStore {
  const maxKeys = options.maxKeys ?? 100_000
  const map = new Map<string, RateLimitState>()

  function write(key: string, now: number, next: RateLimitState | null): void {
    if (next === null) {
      map.delete(key)
      return
    }
    if (!map.has(key) && map.size >= maxKeys) {
      for (const [k, state] of map) if (state.expiresAt <= now) map.delete(k)
      if (map.size >= maxKeys) {
        // Forget the oldest key that is not locked (Map order is insertion order). SECURITY: a
        // running lock is never forgotten; when every key is locked, fail closed.
        let evicted = false
        for (const [k, state] of map) {
          if (state.blockedUntil <= now) {
            map.delete(k)
            evicted = true
            break
          }
        }
        if (!evicted) {
          throw new TesseraError('store_unavailable', 'memory rate-limit store is full (maxKeys)')
        }
      }
    }
    map.set(key, next)
  }

  // async so that a full store rejects the promise rather than throwing at the call.
  return {
    async hitBackoff(key, now, policy): Promise<RateLimitDecision> {
      await Promise.resolve()
      const { next, decision } = applyBackoff(map.get(key) ?? null, now, policy)
      write(key, now, next)
      return decision
    },
    async hitWindow(key, now, policy): Promise<RateLimitDecision> {
      await Promise.resolve()
      const { next, decision } = applyWindow(map.get(key) ?? null, now, policy)
      write(key, now, next)
      return decision
    },
    async refundWindow(key, now): Promise<void> {
      await Promise.resolve()
      const next = applyRefund(map.get(key) ?? null, now)
      if (next === null) map.delete(key)
      else map.set(key, next)
    },
    async reset(key): Promise<void> {
      await Promise.resolve()
      map.delete(key)
    },
  }
}

/** Options of {@link createLoginLimiter}. Durations are seconds. */
export interface LoginLimiterOptions {
  /** Where the counters live; use one shared backend (Redis, SQL) for several processes. */
  store: RateLimitStore
  /**
   * The clock, in epoch milliseconds (tests inject one).
   * @default Date.now
   */
  now?: () => number
  /** Prefix of every key, so that two apps can share a backend. @default 'login' */
  keyPrefix?: string
  account?: {
    /** Failures admitted without waiting. @default 5 */
    freeFailures?: number
    /** Lock after the last free failure, in seconds; doubles with each further failure. @default 1 */
    initialDelay?: number
    /** Longest lock, in seconds. @default 900 */
    maxDelay?: number
    /** Seconds after the last failure when the count is forgotten. @default 86400 */
    forgetAfter?: number
  }
  ip?: {
    /** Failed attempts admitted per window per IP. @default 100 */
    limit?: number
    /** Window length in seconds. @default 900 */
    window?: number
    /**
     * IPv6 addresses are limited per network of this many bits (one subscriber often holds a
     * whole /64). IPv4 addresses are limited one by one.
     * @default 64
     */
    ipv6PrefixLength?: number
  }
}

/** The proof that a login attempt was admitted; pass it to `succeeded` or `failed`. */
export interface LoginTicket {
  readonly accountKey: string | undefined
  readonly ipKey: string | undefined
}

/** What {@link LoginLimiter.check} decided. `retryAfter` is whole seconds, at least 1. */
export type LoginCheck =
  | { allowed: true; ticket: LoginTicket }
  | { allowed: false; retryAfter: number; scope: 'account' | 'ip' }

/** Login protection for one application; see {@link createLoginLimiter}. */
export interface LoginLimiter {
  /**
   * Call before hashing anything. Counts the attempt against the IP and the account and admits
   * it, or refuses it with the seconds to wait. Refused attempts must not verify the password.
   * @throws TesseraError `store_unavailable` when the backend cannot be reached (fail closed).
   */
  check(attempt: { account?: string; ip?: string }): Promise<LoginCheck>
  /** The password was right: forget the account's failures and give back the IP's attempt. */
  succeeded(ticket: LoginTicket): Promise<void>
  /** The password was wrong. The failure was already counted by `check`; this records nothing. */
  failed(ticket: LoginTicket): Promise<void>
  /** Lifts an account's lock and forgets its failures (an administrator's action). */
  unlock(account: string): Promise<void>
}

function seconds(name: string, value: number, { allowZero }: { allowZero: boolean }): number {
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new TesseraError('config_invalid', `${name} must be a positive number of seconds`)
  }
  return value
}

function count(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new TesseraError('config_invalid', `${name} must be a positive integer`)
  }
  return value
}

/** Runs one store step; anything but a TesseraError becomes `store_unavailable` (fail closed). */
export async function guard<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step()
  } catch (error) {
    if (isTesseraError(error)) throw error
    throw new TesseraError('store_unavailable', 'the rate-limit store did not answer', {
      cause: error,
    })
  }
}

/**
 * Login protection: per account, `freeFailures` free failures, then a lock of 1 s that doubles
 * with every further failure up to 15 minutes; per IP, 100 failed attempts per 15 minutes. The
 * attempt is counted when it is checked, before the password is hashed, so a burst of parallel
 * guesses admits no more than the budget, and a locked account costs no hash.
 *
 * @throws TesseraError `config_invalid` when an option is out of range.
 * @example
 * ```ts
 * const limiter = createLoginLimiter({ store: createMemoryRateLimitStore() })
 * const check = await limiter.check({ account: email, ip })
 * if (!check.allowed) return tooManyRequests(check.retryAfter)
 * const ok = user ? await verifyPassword(password, user.hash) : await dummyVerify(password)
 * await (ok ? limiter.succeeded(check.ticket) : limiter.failed(check.ticket))
 * ```
 */
export function createLoginLimiter(options: LoginLimiterOptions): LoginLimiter {
  const { store } = options
  const now = options.now ?? Date.now
  const prefix = options.keyPrefix ?? 'login'
  const backoff: BackoffPolicy = {
    freeFailures: count('account.freeFailures', options.account?.freeFailures ?? 5),
    initialDelayMs:
      seconds('account.initialDelay', options.account?.initialDelay ?? 1, { allowZero: false }) *
      1000,
    maxDelayMs:
      seconds('account.maxDelay', options.account?.maxDelay ?? 900, { allowZero: false }) * 1000,
    forgetAfterMs:
      seconds('account.forgetAfter', options.account?.forgetAfter ?? 86_400, {
        allowZero: false,
      }) * 1000,
  }
  if (backoff.maxDelayMs < backoff.initialDelayMs) {
    throw new TesseraError('config_invalid', 'account.maxDelay must be at least initialDelay')
  }
  const window: WindowPolicy = {
    limit: count('ip.limit', options.ip?.limit ?? 100),
    windowMs: seconds('ip.window', options.ip?.window ?? 900, { allowZero: false }) * 1000,
  }
  const accountKey = (account: string): string => `${prefix}:acct:${account}`
  const ipv6PrefixLength = options.ip?.ipv6PrefixLength ?? 64
  if (!Number.isInteger(ipv6PrefixLength) || ipv6PrefixLength < 1 || ipv6PrefixLength > 128) {
    throw new TesseraError('config_invalid', 'ip.ipv6PrefixLength must be an integer from 1 to 128')
  }
  // SECURITY: an IPv6 client rotating addresses inside its /64 is still one client.
  const ipKey = (ip: string): string => `${prefix}:ip:${ipRateLimitKey(ip, { ipv6PrefixLength })}`
  const toSeconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000))

  return {
    async check(attempt): Promise<LoginCheck> {
      const ticket: { accountKey: string | undefined; ipKey: string | undefined } = {
        accountKey: undefined,
        ipKey: undefined,
      }
      const at = now()
      if (attempt.ip !== undefined) {
        const key = ipKey(attempt.ip)
        const decision = await guard(() => store.hitWindow(key, at, window))
        if (!decision.allowed) {
          return { allowed: false, retryAfter: toSeconds(decision.retryAfterMs), scope: 'ip' }
        }
        ticket.ipKey = key
      }
      if (attempt.account !== undefined) {
        const key = accountKey(attempt.account)
        const decision = await guard(() => store.hitBackoff(key, at, backoff))
        if (!decision.allowed) {
          // The IP's attempt stays counted: guessing at a locked account is still guessing.
          return { allowed: false, retryAfter: toSeconds(decision.retryAfterMs), scope: 'account' }
        }
        ticket.accountKey = key
      }
      return { allowed: true, ticket }
    },

    async succeeded(ticket): Promise<void> {
      const { accountKey: account, ipKey: ip } = ticket
      if (account !== undefined) await guard(() => store.reset(account))
      if (ip !== undefined) await guard(() => store.refundWindow(ip, now()))
    },

    failed(_ticket): Promise<void> {
      return Promise.resolve()
    },

    async unlock(account): Promise<void> {
      await guard(() => store.reset(accountKey(account)))
    },
  }
}
