import { crypto } from '../lazy.js';
import { SESSION_ID_PATTERN } from '../sessions/session-types.js';

/** Hex digits of the SHA-256 of the original id appended to a mapped id: 48 bits, so two ids never meet by chance. */
const HASH_DIGITS = 12;
/** Longest readable part kept, so that it, "-" and the hash stay within the 256 characters an id may have. */
const SLUG_CHARS = 200;

/**
 * The id an imported session is stored under. A valid id (1-256 of
 * `[A-Za-z0-9_-]`, codex-mcp-server's rule, which ensureSession enforces)
 * is kept. Any other non-empty string (PR #134's FileSessionStorage accepted
 * every id without control characters: dots, colons, spaces, any script)
 * becomes a readable slug and a hash of the original: accents removed (NFKD),
 * each run of other characters replaced by `_`, `_` and `-` trimmed at both
 * ends, cut to 200 characters (`session` when nothing is left), then `-` and
 * the first 12 hex digits of the SHA-256 of the original id's UTF-8 bytes.
 * So `café.review` becomes `cafe_review-` and 12 hex digits. Deterministic
 * (importing the file again finds the sessions already present), distinct
 * for distinct ids, and valid, so mapping a mapped id changes nothing.
 * Returns undefined for what no id can be made of (not a string, or empty).
 */
export function importedSessionId(id: unknown): string | undefined {
  if (typeof id !== 'string' || id === '') return undefined;
  if (SESSION_ID_PATTERN.test(id)) return id;
  const slug =
    id
      .normalize('NFKD')
      .replace(/\p{M}+/gu, '')
      .replace(/[^A-Za-z0-9_-]+/g, '_')
      .replace(/^[_-]+/, '')
      .slice(0, SLUG_CHARS)
      .replace(/[_-]+$/, '') || 'session';
  return `${slug}-${crypto().createHash('sha256').update(id, 'utf8').digest('hex').slice(0, HASH_DIGITS)}`;
}
