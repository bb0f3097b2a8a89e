// connect-loki ships no types; only what the store test uses.
declare module 'connect-loki' {
  import type { EventEmitter } from 'node:events'
  interface LokiStoreOptions {
    path?: string
    autosave?: boolean
    ttl?: number
  }
  type LokiStore = EventEmitter
  export default function connectLoki(
    session: unknown,
  ): new (options?: LokiStoreOptions) => LokiStore
}
