/**
 * The sha256 of a record's canonical text, for the hash chain. Node's
 * node:crypto costs a cold process about 3 ms to load, more than a hook
 * fork spends on everything else it writes; so a process hashes its first
 * couple of KiB with sha256.ts and loads node:crypto only when it hashes
 * more (or has loaded it for something else). Both give the same digest.
 */
import { crypto, cryptoLoaded } from '../lazy.js';
import { sha256 } from './sha256.js';

/**
 * Characters hashed in JavaScript before node:crypto is loaded: the
 * interpreted sha256 costs about 0.3 µs a byte cold, so 2 KiB (one or a
 * few records) stays well under the load it saves.
 */
const JS_HASH_BUDGET_CHARS = 2048;
let jsHashedChars = 0;

export function sha256Text(text: string, encoding: 'hex' | 'base64url'): string {
  if (!cryptoLoaded() && jsHashedChars + text.length <= JS_HASH_BUDGET_CHARS) {
    jsHashedChars += text.length;
    return Buffer.from(sha256(text)).toString(encoding);
  }
  return crypto().hash('sha256', text, encoding);
}
