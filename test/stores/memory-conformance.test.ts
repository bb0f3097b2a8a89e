import { createMemoryStore } from '../../src/stores/memory.js'
import { describeStoreConformance } from '../../src/testing/store-conformance.js'

// The memory store held to the same contract as the server-backed stores.
describeStoreConformance('memory store', ({ now }) => {
  const store = createMemoryStore({ now, sweepInterval: 0 })
  return { store, purgeExpired: () => Promise.resolve(store.sweep()), cleanup: () => store.close() }
})
