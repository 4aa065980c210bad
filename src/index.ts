export { SessionStore, DEFAULT_MAX_SESSIONS, DEFAULT_MAX_TURN_BYTES, DEFAULT_TTL_MS, type SessionStoreOptions } from './sessions/session-store.js';
export type { ConversationTurn, SessionData, SessionStorage } from './sessions/session-types.js';
export { SessionJournalError, ErrorCodes, type ErrorCode } from './errors.js';
export { WarningCodes, formatWarning, type JournalWarning, type WarningCode, type WarningHandler } from './journal/warnings.js';
export { Journal, type JournalConsumer, type JournalOptions } from './journal/journal.js';
export type { JournalRecord, Rejection } from './journal/record-codec.js';
export type { QueuedEntry } from './journal/commit-queue.js';
