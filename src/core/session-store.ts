/** JSON value stored in a session's `data`. */
export type JSONValue =
  string | number | boolean | null | JSONValue[] | { [key: string]: JSONValue }

/** Request metadata kept with a session, for "your devices" lists and audits. */
export interface SessionMeta {
  ip?: string
  userAgent?: string
  /**
   * When the user last proved a credential in this session (epoch ms); absent means the
   * session's `createdAt`. Written by the session manager (`create` / `regenerate` with `auth`).
   */
  authTime?: number
  /** Authenticator assurance level of that proof: 2 for two factors; absent means 1. */
  aal?: 1 | 2
  /** The RFC 8176 methods of that proof (`pwd`, `otp`, `hwk`, ...); absent means none recorded. */
  amr?: string[]
}

/**
 * Length of a session's public id: the first 22 characters (128 bits) of its stored id. Safe to
 * show and log; it addresses a record only together with the user id
 * ({@link SessionStore.getByPublicId}).
 */
export const PUBLIC_ID_LENGTH = 22

/**
 * One stored session. `id` is SHA-256 of the token (base64url), never the token itself.
 * Times are epoch milliseconds. Stores keep records as given and do not interpret `data`.
 */
export interface SessionRecord {
  id: string
  userId: string | null
  /** Incremented on every successful update; the compare-and-set field. */
  version: number
  createdAt: number
  lastSeenAt: number
  /** Idle expiry: the record is dead after this time unless extended. */
  expiresAt: number
  /** Absolute expiry: the record is dead after this time whatever the activity. */
  absoluteExpiresAt: number
  data: Record<string, JSONValue>
  meta: SessionMeta
}

/**
 * What a session store must do. Every store passes the conformance suite in
 * `tessera-auth/testing` against its real server.
 *
 * Stores throw `TesseraError('store_unavailable')` when their backend cannot be reached or does
 * not answer in time; they never report a missing record for an unreachable backend. Store TTLs
 * and purges only clean up: a store never drops a record before
 * `min(expiresAt, absoluteExpiresAt)`, and expiry is decided by the session manager.
 */
export interface SessionStore {
  /**
   * The record, or `null` when there is none (a store may also hide expired records). An id that
   * is not a valid hash (empty, very long, odd characters) gives `null`, never an error.
   */
  get(id: string): Promise<SessionRecord | null>
  /** Stores a new record (its `id` is fresh; a store may replace a record with the same id). */
  create(record: SessionRecord): Promise<void>
  /**
   * Compare-and-set on `version`: writes `record` only when the stored version equals
   * `expectedVersion`. The caller passes `record.version === expectedVersion + 1`. Returns false
   * when the record is gone or the version moved, and never recreates a deleted record.
   */
  update(record: SessionRecord, expectedVersion: number): Promise<boolean>
  /** Deletes the record; resolves also when there is none. */
  delete(id: string): Promise<void>
  /**
   * Every live record of the user (records past `min(expiresAt, absoluteExpiresAt)` may be left
   * out); never an anonymous one.
   */
  listByUser(userId: string): Promise<SessionRecord[]>
  /**
   * The live record of `userId` whose id starts with `publicId` (the first
   * {@link PUBLIC_ID_LENGTH} characters of a stored id: a session's public id, the `sid` of its
   * access tokens), or `null`: one keyed read, whatever the number of sessions the user or the
   * store holds. A record of another user, or an anonymous one, is never returned. Optional:
   * without it the session manager finds the record in {@link SessionStore.listByUser}, which
   * costs one read per session of the user.
   */
  getByPublicId?(userId: string, publicId: string): Promise<SessionRecord | null>
  /** Deletes every record of the user except `options.except` (an id); returns how many. */
  deleteByUser(userId: string, options?: { except?: string }): Promise<number>
  /** Releases what the store itself opened (never the client the user passed in). */
  close?(): Promise<void>
}
