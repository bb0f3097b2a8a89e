import { TesseraError } from '../core/errors.js'
import type { MailMessage, Mailer } from './mailer.js'

/** How one message ended: sent (perhaps after retries), or given up after every attempt. */
export interface MailOutcome {
  /** What the mail was, e.g. `emailVerification` (never its content or a token). */
  kind: string
  outcome: 'sent' | 'failed'
  /** Attempts made, the first included. */
  attempts: number
  /** The last error, when it failed. */
  error?: unknown
}

/** Options of {@link createMailDelivery}. */
export interface MailDeliveryOptions {
  mailer: Mailer
  /** Tries per message, the first included. @default 3 */
  attempts?: number
  /**
   * Milliseconds to wait before the second, third, … try (the last value repeats).
   * @default [2000, 10000]
   */
  retryDelaysMs?: readonly number[]
  /** Called once per message when it is sent or given up; a failure is never silent. */
  onOutcome?: (outcome: MailOutcome) => void
  /** Background work that failed before a message existed (a database error, …). */
  onError?: (error: unknown) => void
  /** Most tasks waiting or running at once; more are refused (and reported). @default 1000 */
  maxPending?: number
}

/**
 * Mail off the request path: {@link MailDelivery.defer} runs a task (look up the account, issue
 * a token, send) after the current request has its answer, and {@link MailDelivery.send} sends
 * one message with bounded retries. So a request's answer, and its time, never depend on the
 * SMTP server, and a mail that cannot be sent is reported through `onOutcome`.
 */
export interface MailDelivery {
  /** Runs `task` after the current turn of the event loop; its errors go to `onError`. */
  defer(task: () => Promise<void>): void
  /** Sends with retries; resolves `true` when sent, `false` when given up (never rejects). */
  send(kind: string, message: MailMessage): Promise<boolean>
  /** Resolves when every task deferred so far (and what they sent) has finished. */
  idle(): Promise<void>
}

/**
 * Builds the delivery of an auth service over a mailer.
 *
 * @throws TesseraError `config_invalid` for attempts outside 1 to 10 or a negative delay
 * @example
 * ```ts
 * const delivery = createMailDelivery({
 *   mailer, onOutcome: (o) => o.outcome === 'failed' && logger.error({ kind: o.kind }, 'mail lost'),
 * })
 * ```
 */
export function createMailDelivery(options: MailDeliveryOptions): MailDelivery {
  const attempts = options.attempts ?? 3
  const delays = options.retryDelaysMs ?? [2000, 10_000]
  const maxPending = options.maxPending ?? 1000
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > 10) {
    throw new TesseraError('config_invalid', 'mail delivery attempts must be 1 to 10')
  }
  if (delays.some((delay) => !Number.isFinite(delay) || delay < 0)) {
    throw new TesseraError('config_invalid', 'mail retryDelaysMs must be non-negative numbers')
  }
  const onOutcome = options.onOutcome ?? ((): void => {})
  const onError =
    options.onError ??
    ((error: unknown): void => {
      console.error('tessera: mail task failed:', error instanceof Error ? error.message : error)
    })
  const pending = new Set<Promise<void>>()

  const wait = (ms: number): Promise<void> =>
    ms === 0
      ? new Promise((resolve) => setImmediate(resolve))
      : new Promise((resolve) => setTimeout(resolve, ms))

  return {
    defer(task) {
      if (pending.size >= maxPending) {
        onError(new TesseraError('store_unavailable', 'too many pending mail tasks'))
        return
      }
      const run = (async (): Promise<void> => {
        await new Promise<void>((resolve) => setImmediate(resolve))
        await task()
      })().catch(onError)
      const tracked = run.finally(() => pending.delete(tracked))
      pending.add(tracked)
    },

    async send(kind, message) {
      let last: unknown
      for (let attempt = 1; attempt <= attempts; attempt++) {
        if (attempt > 1) await wait(delays[Math.min(attempt - 2, delays.length - 1)] ?? 0)
        try {
          await options.mailer.send(message)
          onOutcome({ kind, outcome: 'sent', attempts: attempt })
          return true
        } catch (error) {
          last = error
        }
      }
      onOutcome({ kind, outcome: 'failed', attempts, error: last })
      return false
    },

    async idle() {
      while (pending.size > 0) await Promise.allSettled([...pending])
    },
  }
}
