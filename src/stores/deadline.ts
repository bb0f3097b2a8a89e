import { TesseraError } from '../core/errors.js'

/**
 * Settles with `promise`, or rejects with `store_unavailable` once `ms` milliseconds have passed.
 * The late outcome of `promise` is swallowed (no unhandled rejection); what it did, if anything,
 * is unknown to the caller, as with any request to a backend that did not answer in time.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new TesseraError('store_unavailable', `${what} did not answer within ${ms} ms`))
    }, ms)
    timer.unref()
  })
  promise.catch(() => undefined)
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

/**
 * Converts a timeout option in seconds to milliseconds.
 *
 * @throws TesseraError `config_invalid` when it is not a positive finite number
 */
export function timeoutMs(option: string, seconds: number): number {
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new TesseraError('config_invalid', `${option} must be a positive number of seconds`)
  }
  return Math.max(1, Math.round(seconds * 1000))
}
