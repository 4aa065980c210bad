/** The shapes of codex-mcp-server's `session/storage` module, restated so the store has no runtime dependency on it. */
export interface ConversationTurn {
  prompt: string;
  response: string;
  timestamp: Date;
}

export interface SessionData {
  id: string;
  createdAt: Date;
  lastAccessedAt: Date;
  turns: ConversationTurn[];
  codexConversationId?: string;
}

/** codex-mcp-server's SessionStorage contract: ten synchronous methods. */
export interface SessionStorage {
  createSession(): string;
  ensureSession(sessionId: string): void;
  getSession(sessionId: string): SessionData | undefined;
  updateSession(sessionId: string, data: Partial<SessionData>): void;
  deleteSession(sessionId: string): boolean;
  listSessions(): SessionData[];
  addTurn(sessionId: string, turn: ConversationTurn): void;
  resetSession(sessionId: string): void;
  setCodexConversationId(sessionId: string, conversationId: string): void;
  getCodexConversationId(sessionId: string): string | undefined;
}

/** codex-mcp-server's rule: 1-256 characters of letters, digits, '-' and '_'. */
export const SESSION_ID_PATTERN = /^[a-zA-Z0-9_-]{1,256}$/;

export function isValidSessionId(id: unknown): id is string {
  return typeof id === 'string' && SESSION_ID_PATTERN.test(id);
}
