/** The real codex-mcp-server on stdio with the naive single-file store. Usage: node mcp-naive-codex-server.js FILE */
import { startCodexMcpServer } from '../../src/index.js';
import { NaiveFileSessionStorage } from './mcp-naive-storage.js';

const file = process.argv[2];
if (!file) throw new Error('usage: mcp-naive-codex-server FILE');
await startCodexMcpServer({ storage: new NaiveFileSessionStorage(file) });
process.stdin.once('end', () => process.exit(0));
