/**
 * Child process for the spread-record tests: opens a Journal on the store
 * given as argv[2] with lines of at most argv[3] bytes, appends one `kv.set`
 * whose value is argv[4] characters long (so it is spread over several
 * lines), closes, and prints the entry's seq on stdout.
 *
 * Usage: node spread-writer.js <storeDir> <maxLineBytes> <valueChars>
 */
import { Journal } from '../../src/index.js';
import { spreadValue } from './spread-values.js';

const [dir, maxLine, chars] = process.argv.slice(2);
if (!dir || !maxLine || !chars) {
  process.stderr.write('usage: spread-writer <storeDir> <maxLineBytes> <valueChars>\n');
  process.exit(2);
}
const journal = Journal.openSync({ dir, maxLineBytes: Number(maxLine), consumer: { reset: () => undefined, restore: () => undefined, apply: () => undefined } });
const entry = journal.append('kv.set', { key: 'from-child', value: spreadValue(Number(chars)) });
journal.closeSync();
process.stdout.write(`${entry.seq}\n`);
