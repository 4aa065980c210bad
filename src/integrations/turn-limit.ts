import { ErrorCodes, SessionJournalError } from '../errors.js';
import type { ConversationTurn, SessionData, SessionStorage } from '../sessions/session-types.js';
import { WarningCodes, type WarningHandler } from '../engine/warnings.js';

/** A storage that may say when its mutations are durable (SessionStore does). */
export type FlushableStorage = SessionStorage & { flush?: () => Promise<void> };

const utf8Bytes = (text: string): number => Buffer.byteLength(text);

/** The longest prefix of `text` of at most `maxBytes` UTF-8 bytes that does not end inside a surrogate pair. */
export function utf8Prefix(text: string, maxBytes: number): string {
  if (maxBytes <= 0) return '';
  if (utf8Bytes(text) <= maxBytes) return text;
  const cut = Buffer.from(text).subarray(0, maxBytes).toString('utf8');
  // A character cut in half decodes as U+FFFD at the end: drop it.
  return cut.endsWith('\ufffd') && !text.startsWith(cut) ? cut.slice(0, -1) : cut;
}

const isSizeError = (err: unknown): err is SessionJournalError =>
  err instanceof SessionJournalError && (err.code === ErrorCodes.TURN_TOO_LARGE || err.code === ErrorCodes.RECORD_TOO_LARGE);

/**
 * The storage codex-mcp-server's handlers get: every call goes to `inner`,
 * except that a turn too large to store (over `maxTurnBytes`, when set, or
 * over the journal's maxRecordBytes) is stored with its response cut to fit
 * and a note saying so, with a TURN_TRUNCATED warning. The handler calls
 * addTurn after codex answered: throwing there would fail the tool call and
 * lose an answer the client could still be given whole.
 */
export class TurnLimitedStorage implements SessionStorage {
  constructor(
    readonly inner: FlushableStorage,
    private readonly maxTurnBytes: number | undefined,
    private readonly warn: WarningHandler,
  ) {}

  /** True when a prompt alone is over the limit: refused before codex runs (see installSessionStorage). */
  promptTooLarge(prompt: string): boolean {
    return this.maxTurnBytes !== undefined && utf8Bytes(prompt) > this.maxTurnBytes;
  }

  addTurn(sessionId: string, turn: ConversationTurn): void {
    let response = turn.response;
    const full = utf8Bytes(response);
    if (this.maxTurnBytes !== undefined && utf8Bytes(turn.prompt) + full > this.maxTurnBytes) {
      response = this.cut(turn.response, this.maxTurnBytes - utf8Bytes(turn.prompt), full);
    }
    for (;;) {
      try {
        this.inner.addTurn(sessionId, response === turn.response ? turn : { ...turn, response });
        break;
      } catch (err) {
        // Over the record bound (JSON escaping makes the record larger than the text): cut further.
        if (!isSizeError(err)) throw err;
        const shorter = this.cut(turn.response, Math.floor(utf8Bytes(response) * 0.9) - 256, full);
        if (utf8Bytes(shorter) >= utf8Bytes(response)) throw err; // nothing left to cut: the prompt alone is too large
        response = shorter;
      }
    }
    if (response !== turn.response) {
      this.warn({ code: WarningCodes.TURN_TRUNCATED, message: `session ${sessionId}: an answer of ${full} bytes was stored cut to ${utf8Bytes(response)} bytes (${this.maxTurnBytes !== undefined ? `maxTurnBytes ${this.maxTurnBytes}` : 'maxRecordBytes'}); the client received it whole` });
    }
  }

  /** The response cut to about `maxBytes`, ending with a note of what was left out. */
  private cut(response: string, maxBytes: number, full: number): string {
    const note = `\n[session-journal: answer cut here to fit the store's limit; ${full} bytes in all]`;
    return utf8Prefix(response, maxBytes - utf8Bytes(note)) + note;
  }

  createSession(): string {
    return this.inner.createSession();
  }
  ensureSession(sessionId: string): void {
    this.inner.ensureSession(sessionId);
  }
  getSession(sessionId: string): SessionData | undefined {
    return this.inner.getSession(sessionId);
  }
  updateSession(sessionId: string, data: Partial<SessionData>): void {
    this.inner.updateSession(sessionId, data);
  }
  deleteSession(sessionId: string): boolean {
    return this.inner.deleteSession(sessionId);
  }
  listSessions(): SessionData[] {
    return this.inner.listSessions();
  }
  resetSession(sessionId: string): void {
    this.inner.resetSession(sessionId);
  }
  setCodexConversationId(sessionId: string, conversationId: string): void {
    this.inner.setCodexConversationId(sessionId, conversationId);
  }
  getCodexConversationId(sessionId: string): string | undefined {
    return this.inner.getCodexConversationId(sessionId);
  }
}
