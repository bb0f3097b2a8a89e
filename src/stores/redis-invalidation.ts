import { randomBytes } from 'node:crypto'
import { TesseraError } from '../core/errors.js'

/** The publishing side: any connected node-redis client (or cluster client) with `publish`. */
export interface RedisPublisherLike {
  publish(channel: string, message: string): Promise<unknown>
  /** node-redis's flag: false while the connection is down (then the channel counts as down). */
  readonly isReady?: boolean
}

/**
 * The subscribing side: a node-redis client used for nothing else (`client.duplicate()`,
 * connected), which the channel owns from then on: {@link RedisInvalidation.close} closes it.
 */
export interface RedisSubscriberLike {
  subscribe(channel: string, listener: (message: string) => void): Promise<unknown>
  on(
    event: 'error' | 'end' | 'reconnecting' | 'ready',
    listener: (...args: unknown[]) => void,
  ): unknown
  readonly isReady: boolean
  close?(): Promise<unknown>
  destroy(): void
}

/** Options of {@link createRedisInvalidation}. */
export interface RedisInvalidationOptions {
  /** The pub/sub channel every process of one deployment shares. @default 'tessera:invalidate' */
  channel?: string
  /**
   * Milliseconds between this process's heartbeats on the channel. Each one, coming back
   * through Redis, proves that the publisher, the server and the subscriber all work.
   * @default 50
   */
  heartbeatInterval?: number
  /**
   * Milliseconds without a message (a heartbeat or an invalidation) after which the channel
   * counts as down: every cache built on it is emptied and bypassed until messages flow again.
   * This bounds a channel that fails silently (no error on the connection); an error or a
   * reconnect takes it down at once. Not much shorter than the longest pause of a busy event
   * loop, or the cache keeps switching itself off under load.
   * @default 250
   */
  staleAfter?: number
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number
  /** Called with errors of the heartbeat publish (the channel goes down by itself meanwhile). */
  onError?: (error: unknown) => void
}

/** What a near-cache is told: keys to drop (`*` drops everything). */
export type InvalidationListener = (keys: readonly string[]) => void

/**
 * The invalidation channel of near-caches: Redis pub/sub between every process of a
 * deployment. Built by {@link createRedisInvalidation}.
 */
export interface RedisInvalidation {
  /**
   * True while messages flow: a message arrived within `staleAfter` ms and the subscriber is
   * connected. A cache reads its entries only then; otherwise it goes to the store.
   */
  healthy(): boolean
  /**
   * A number that moves whenever keys may have changed without this process seeing it: every
   * invalidation received and every time the channel went down. A cache fills an entry only
   * when the epoch is the same before and after the read, so a read that raced a revocation is
   * never kept.
   */
  epoch(): number
  /**
   * Tells every process (this one first, synchronously) that `keys` changed.
   * @throws TesseraError `store_unavailable` when the message cannot be published
   */
  publish(keys: readonly string[]): Promise<void>
  /** Registers a listener for invalidations (own and others'); `['*']` when the channel went down. */
  onInvalidate(listener: InvalidationListener): void
  /** Stops the heartbeat and closes the subscriber. */
  close(): Promise<void>
}

const HEARTBEAT = 'h'

/**
 * The near-cache's invalidation channel over Redis pub/sub (docs/scaling.md has the guarantee).
 * Messages are `i <sender> <JSON list of keys>` for changed keys and `h` heartbeats. It is
 * healthy once its first heartbeat came back; with Redis away (the subscriber not ready) it
 * subscribes when the subscriber becomes ready, and stays unhealthy (caches bypassed) until then.
 *
 * @throws TesseraError `config_invalid` for a bad interval
 * @example
 * ```ts
 * const subscriber = client.duplicate()
 * await subscriber.connect()
 * const invalidation = await createRedisInvalidation(client, subscriber)
 * const store = createNearCacheStore(createRedisStore(client), invalidation)
 * ```
 */
export async function createRedisInvalidation(
  publisher: RedisPublisherLike,
  subscriber: RedisSubscriberLike,
  options: RedisInvalidationOptions = {},
): Promise<RedisInvalidation> {
  const channel = options.channel ?? 'tessera:invalidate'
  const interval = options.heartbeatInterval ?? 50
  const staleAfter = options.staleAfter ?? 250
  if (!Number.isFinite(interval) || interval <= 0 || !Number.isFinite(staleAfter)) {
    throw new TesseraError(
      'config_invalid',
      'createRedisInvalidation: heartbeatInterval and staleAfter must be positive milliseconds',
    )
  }
  if (staleAfter <= interval) {
    throw new TesseraError(
      'config_invalid',
      'createRedisInvalidation: staleAfter must be longer than heartbeatInterval',
    )
  }
  const now = options.now ?? Date.now
  const onError = options.onError ?? ((): void => {})
  const listeners: InvalidationListener[] = []
  // Who sent a message: our own invalidations are applied when published, not again on receipt.
  const self = randomBytes(6).toString('base64url')
  let lastMessage = Number.NEGATIVE_INFINITY
  let connected = true
  let down = true
  let generation = 0
  let closed = false

  function emit(keys: readonly string[]): void {
    generation++
    for (const listener of listeners) listener(keys)
  }

  /** The channel stopped being trustworthy: forget everything, so nothing stale survives it. */
  function goDown(): void {
    if (down) return
    down = true
    emit(['*'])
  }

  function healthy(): boolean {
    if (
      !down &&
      (!connected ||
        !subscriber.isReady ||
        publisher.isReady === false ||
        now() - lastMessage > staleAfter)
    ) {
      goDown()
    }
    return !down
  }

  const onMessage = (message: string): void => {
    lastMessage = now()
    if (down && connected) {
      // Messages flow again. Whatever was missed meanwhile is covered: caches were emptied
      // when the channel went down and filled nothing while it was.
      down = false
      generation++
    }
    if (message === HEARTBEAT) return
    // `i <sender> <JSON list of keys>`; keys (user ids) may hold any character.
    const match = /^i (\S+) (.*)$/s.exec(message)
    if (match === null) return
    if (match[1] === self) return
    let keys: unknown
    try {
      keys = JSON.parse(match[2] as string)
    } catch {
      keys = ['*'] // unreadable: drop everything rather than keep something stale
    }
    emit(Array.isArray(keys) ? keys.filter((key) => typeof key === 'string') : ['*'])
  }

  subscriber.on('error', () => {
    connected = false
    goDown()
  })
  subscriber.on('end', () => {
    connected = false
    goDown()
  })
  subscriber.on('reconnecting', () => {
    connected = false
    goDown()
  })
  let subscribed = false
  async function subscribe(): Promise<void> {
    try {
      await subscriber.subscribe(channel, onMessage)
      subscribed = true
    } catch (error) {
      onError(error)
    }
  }
  subscriber.on('ready', () => {
    // node-redis subscribes again by itself after a reconnect; healthy again at the next
    // message. A subscription that never happened (Redis away at start) is made now.
    connected = true
    if (!subscribed && !closed) void subscribe()
  })
  connected = subscriber.isReady
  if (connected) await subscribe()

  const beat = (): void => {
    publisher.publish(channel, HEARTBEAT).catch((error: unknown) => {
      // A heartbeat that cannot be sent: the channel cannot be trusted from now on.
      goDown()
      onError(error)
    })
  }
  const timer = setInterval(beat, interval)
  timer.unref()
  beat()

  return {
    healthy,
    epoch: () => generation,
    async publish(keys): Promise<void> {
      if (keys.length === 0) return
      emit(keys)
      try {
        await publisher.publish(channel, `i ${self} ${JSON.stringify(keys)}`)
      } catch (error) {
        goDown()
        throw new TesseraError('store_unavailable', 'near-cache: cannot publish to Redis', {
          cause: error,
        })
      }
    },
    onInvalidate(listener): void {
      listeners.push(listener)
    },
    async close(): Promise<void> {
      if (closed) return
      closed = true
      clearInterval(timer)
      connected = false
      goDown()
      try {
        if (subscriber.close !== undefined) await subscriber.close()
        else subscriber.destroy()
      } catch {
        subscriber.destroy()
      }
    },
  }
}
