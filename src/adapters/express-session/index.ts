/**
 * A drop-in replacement for `express-session`: the same default export, options, `req.session`
 * API, exports (`Store`, `MemoryStore`, `Session`, `Cookie`) and callback store interface, so an
 * app switches by changing one import line. What changes underneath (docs/migrating.md):
 *
 * - the cookie carries a token (what `genid` made); `req.sessionID` and the store key are its
 *   SHA-256, so the store never holds the bearer secret (`cookie-value.ts` has the format);
 * - the cookie is signed with tessera's keyring: the first secret signs, every secret verifies,
 *   and a cookie signed with an older secret is re-signed with the first;
 * - weak secrets are refused unless `secretPolicy` is `weak` (its default when `NODE_ENV` is
 *   `development` or `test`: the one place the environment is read);
 * - on a tessera `SessionStore`, a save writes only the keys the request changed, merged with
 *   compare-and-set (the session manager's `update`), so concurrent requests keep each other's
 *   writes, and a destroyed session is never brought back;
 * - an optional absolute lifetime (`absoluteTimeout`).
 *
 * The middleware logic (when to save, touch, set the cookie) is ported from express-session
 * 1.19 (MIT, © 2010 Sencha Inc., 2011 TJ Holowaychuk, 2014-2015 Douglas Christopher Wilson).
 *
 * One file per concept: `middleware.ts` (diffable against express-session's index.js),
 * `session.ts`, `cookie.ts`, `cookie-value.ts`, `store.ts`, `memory-store.ts`, `backends.ts`
 * (tessera or connect store), `options.ts` (secrets and their policy), `http.ts`.
 */

import { Cookie } from './cookie.js'
import { MemoryStore } from './memory-store.js'
import { session as middleware } from './middleware.js'
import { Session } from './session.js'
import { Store } from './store.js'

export { Cookie } from './cookie.js'
export { MemoryStore } from './memory-store.js'
export { Session } from './session.js'
export { Store } from './store.js'
export type {
  ConnectStore,
  CookieData,
  CookieOptions,
  SessionData,
  SessionOptions,
  SessionRequest,
  StoreCallback,
} from './types.js'

// express-session hangs its classes on the default export (`session.MemoryStore`, and
// `session.Store` for stores written as `require('connect-x')(session)`): so does the drop-in.
const session = Object.assign(middleware, { Store, MemoryStore, Session, Cookie })

export default session
export { session }
