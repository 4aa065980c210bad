/**
 * `session-journal/stores`: the two stores and their errors, nothing else.
 *
 * For short-lived processes (a hook fork that opens a store, reads or
 * writes one entry and exits): importing this entry loads only what opening
 * a store on a directory needs. The tools (verify, replay, stats, repair,
 * import and export), the compactor, the Redis backend and the MCP
 * integrations stay out of its static module graph; a store on Redis loads
 * its backend at open. The classes are the ones the main entry exports
 * (the bundles share them), so an error thrown here is an instance of the
 * main entry's `SessionJournalError`.
 */
export { SessionStore, DEFAULT_MAX_SESSIONS, DEFAULT_MAX_TURN_BYTES, DEFAULT_TTL_MS, type SessionStoreOptions } from './sessions/session-store.js';
export type { ConversationTurn, SessionData, SessionStorage } from './sessions/session-types.js';
export { KeyValueStore, DEFAULT_KV_AUTO_COMPACT, DEFAULT_KV_MAX_ENTRIES, DEFAULT_KV_TTL_MS, type KeyValueStoreOptions } from './kv/key-value-store.js';
export { MAX_KEY_LENGTH, type JsonValue } from './kv/kv-records.js';
export { SessionJournalError, ErrorCodes, type ErrorCode } from './errors.js';
export { WarningCodes, formatWarning, type JournalWarning, type WarningCode, type WarningHandler } from './engine/warnings.js';
export { DEFAULT_AUTO_COMPACT, type AutoCompactPolicy } from './compact/auto-compact.js';
export type { RedisLocation } from './storage/store-options.js';
