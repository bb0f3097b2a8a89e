import { interimMemoryStore } from '../helpers/tokens.js'
import { refreshTokenSuite } from './refresh-suite.js'

// The memory store of the sessions branch replaces the interim one when it is merged; SQLite,
// Redis and PostgreSQL join here as the stores branch lands.
refreshTokenSuite('an interim memory store', () =>
  Promise.resolve({ store: interimMemoryStore(), close: () => Promise.resolve() }),
)
