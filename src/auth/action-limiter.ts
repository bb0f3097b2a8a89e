import { ipRateLimitKey } from '../core/client-ip.js'
import { TesseraError } from '../core/errors.js'
import { guard, type RateLimitStore, type WindowPolicy } from './rate-limit.js'

/** At most `limit` attempts per `window` seconds (a fixed window that starts at the first). */
export interface ActionLimit {
  limit: number
  /** Window length in seconds. */
  window: number
}

/**
 * The limits of one named action: per account (an e-mail address, a user id: whatever the
 * caller names the account by) and per client IP. Either may be left out.
 */
export interface ActionPolicy {
  account?: ActionLimit
  ip?: ActionLimit
}

/**
 * The actions tessera limits, with their defaults (API.md: every endpoint that sends mail or
 * checks a secret a person receives is limited per account and per IP):
 * - `password_reset_request`: 3 mails per address per hour, 20 requests per IP per hour;
 * - `password_reset_confirm`: 20 attempts per IP per 15 minutes (a token guesser meets it),
 *   10 per account per 15 minutes once a token has named the account.
 *
 * Add your own actions by spreading these: `{ ...DEFAULT_ACTION_POLICIES, my_action: {...} }`.
 */
export const DEFAULT_ACTION_POLICIES: Readonly<Record<string, ActionPolicy>> = Object.freeze({
  password_reset_request: {
    account: { limit: 3, window: 3600 },
    ip: { limit: 20, window: 3600 },
  },
  password_reset_confirm: {
    account: { limit: 10, window: 900 },
    ip: { limit: 20, window: 900 },
  },
  // E-mail (issue 16, docs/email.md): mails per address and per IP; guesses at mailed secrets.
  email_verification_request: {
    account: { limit: 3, window: 3600 },
    ip: { limit: 20, window: 3600 },
  },
  email_verify: {
    account: { limit: 10, window: 900 },
    ip: { limit: 20, window: 900 },
  },
  email_change_request: {
    account: { limit: 3, window: 3600 },
    ip: { limit: 10, window: 3600 },
  },
  email_change_confirm: {
    account: { limit: 10, window: 900 },
    ip: { limit: 20, window: 900 },
  },
  email_code_request: {
    account: { limit: 5, window: 3600 },
    ip: { limit: 20, window: 3600 },
  },
  email_code_verify: {
    account: { limit: 10, window: 900 },
    ip: { limit: 30, window: 900 },
  },
  // Passkeys (issue 14): each usernameless options answer stores a 5-minute challenge record,
  // asked for by anyone: bounded per IP so a flood cannot fill the session store.
  passkey_login_options: {
    ip: { limit: 120, window: 60 },
  },
})

/** Options of {@link createActionLimiter}. */
export interface ActionLimiterOptions {
  /**
   * Where the counters live: the same stores as the login limiter's (memory, SQLite,
   * PostgreSQL, Redis). Use one shared backend for several processes: they then enforce one
   * limit.
   */
  store: RateLimitStore
  /** The actions and their limits. @default DEFAULT_ACTION_POLICIES */
  policies?: Readonly<Record<string, ActionPolicy>>
  /** The clock, in epoch milliseconds (tests inject one). @default Date.now */
  now?: () => number
  /** Prefix of every key, so that it never meets the login limiter's keys. @default 'action' */
  keyPrefix?: string
  /**
   * IPv6 clients are limited per network of this many bits, as by the login limiter.
   * @default 64
   */
  ipv6PrefixLength?: number
}

/** Who is acting: the account acted on and the client's IP; either may be unknown. */
export interface ActionSubject {
  account?: string | undefined
  ip?: string | undefined
}

/** The attempts {@link ActionLimiter.check} counted; give it to `refund` to give them back. */
export interface ActionTicket {
  readonly keys: readonly string[]
}

/** What {@link ActionLimiter.check} decided. `retryAfter` is whole seconds, at least 1. */
export type ActionCheck =
  | { allowed: true; ticket: ActionTicket }
  | { allowed: false; retryAfter: number; scope: 'account' | 'ip' }

/** Rate limits for named actions; see {@link createActionLimiter}. */
export interface ActionLimiter {
  /** The action names this limiter knows. */
  readonly actions: readonly string[]
  /**
   * Counts one attempt of `action` against the IP, then the account, and admits it or refuses
   * it with the seconds to wait. A refused attempt must not be carried out (no mail, no token
   * check). The IP is counted first; an attempt refused for its IP counts nothing against the
   * account, and one refused for its account stays counted against the IP.
   *
   * @throws TesseraError `store_unavailable` when the store cannot be reached (fail closed);
   * `config_invalid` for an action that has no policy (a programming error).
   */
  check(action: string, subject: ActionSubject): Promise<ActionCheck>
  /** Gives back the attempts of a ticket (an attempt that turned out legitimate). */
  refund(ticket: ActionTicket): Promise<void>
  /** Forgets the account's count for an action (an administrator's action). */
  reset(action: string, account: string): Promise<void>
}

function checkLimit(name: string, limit: ActionLimit | undefined): WindowPolicy | undefined {
  if (limit === undefined) return undefined
  if (!Number.isInteger(limit.limit) || limit.limit < 1) {
    throw new TesseraError('config_invalid', `${name}.limit must be a positive integer`)
  }
  if (!Number.isFinite(limit.window) || limit.window <= 0) {
    throw new TesseraError('config_invalid', `${name}.window must be a positive number of seconds`)
  }
  return { limit: limit.limit, windowMs: limit.window * 1000 }
}

const ACTION_NAME = /^[a-z][a-z0-9_.-]{0,63}$/

/**
 * Rate limits for actions other than a password sign-in (that is `createLoginLimiter`'s): sending
 * a reset mail, trying a reset token, sending or checking an e-mailed code. Each named action has
 * a fixed-window limit per account and per IP, counted in a {@link RateLimitStore} in one atomic
 * step per key, so several processes over one store enforce one limit and a burst admits no more
 * than the budget.
 *
 * @throws TesseraError `config_invalid` when a policy is out of range or an action name is not
 * lower-case letters, digits, `_`, `.` or `-`.
 * @example
 * ```ts
 * const limits = createActionLimiter({ store: createRedisRateLimitStore(client) })
 * const check = await limits.check('password_reset_request', { account: email, ip })
 * if (!check.allowed) return // answer as if the mail was sent; send nothing
 * ```
 */
export function createActionLimiter(options: ActionLimiterOptions): ActionLimiter {
  const { store } = options
  const now = options.now ?? Date.now
  const prefix = options.keyPrefix ?? 'action'
  const ipv6PrefixLength = options.ipv6PrefixLength ?? 64
  if (!Number.isInteger(ipv6PrefixLength) || ipv6PrefixLength < 1 || ipv6PrefixLength > 128) {
    throw new TesseraError('config_invalid', 'ipv6PrefixLength must be an integer from 1 to 128')
  }
  const policies = new Map<string, { account?: WindowPolicy; ip?: WindowPolicy }>()
  for (const [action, policy] of Object.entries(options.policies ?? DEFAULT_ACTION_POLICIES)) {
    if (!ACTION_NAME.test(action)) {
      throw new TesseraError(
        'config_invalid',
        `action name "${action}" must be lower-case letters, digits, "_", "." or "-"`,
      )
    }
    const account = checkLimit(`${action}.account`, policy.account)
    const ip = checkLimit(`${action}.ip`, policy.ip)
    policies.set(action, {
      ...(account === undefined ? {} : { account }),
      ...(ip === undefined ? {} : { ip }),
    })
  }
  const policyOf = (action: string): { account?: WindowPolicy; ip?: WindowPolicy } => {
    const policy = policies.get(action)
    if (policy === undefined) {
      throw new TesseraError('config_invalid', `no rate-limit policy for the action "${action}"`)
    }
    return policy
  }
  // The account is the caller's normalised identifier (e.g. `parseEmail`'s), so variants of one
  // address are one key.
  const accountKey = (action: string, account: string): string =>
    `${prefix}:${action}:acct:${account}`
  // SECURITY: an IPv6 client rotating addresses inside its /64 is still one client.
  const ipKey = (action: string, ip: string): string =>
    `${prefix}:${action}:ip:${ipRateLimitKey(ip, { ipv6PrefixLength })}`
  const toSeconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000))

  return {
    actions: Object.freeze([...policies.keys()]),

    async check(action, subject): Promise<ActionCheck> {
      const policy = policyOf(action)
      const at = now()
      const keys: string[] = []
      if (subject.ip !== undefined && policy.ip !== undefined) {
        const key = ipKey(action, subject.ip)
        const window = policy.ip
        const decision = await guard(() => store.hitWindow(key, at, window))
        if (!decision.allowed) {
          return { allowed: false, retryAfter: toSeconds(decision.retryAfterMs), scope: 'ip' }
        }
        keys.push(key)
      }
      if (subject.account !== undefined && policy.account !== undefined) {
        const key = accountKey(action, subject.account)
        const window = policy.account
        const decision = await guard(() => store.hitWindow(key, at, window))
        if (!decision.allowed) {
          return { allowed: false, retryAfter: toSeconds(decision.retryAfterMs), scope: 'account' }
        }
        keys.push(key)
      }
      return { allowed: true, ticket: { keys } }
    },

    async refund(ticket): Promise<void> {
      const at = now()
      for (const key of ticket.keys) await guard(() => store.refundWindow(key, at))
    },

    async reset(action, account): Promise<void> {
      policyOf(action)
      await guard(() => store.reset(accountKey(action, account)))
    },
  }
}
