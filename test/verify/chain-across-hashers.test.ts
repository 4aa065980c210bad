/**
 * A process hashes its first 2 KiB of records with the JavaScript sha256
 * (src/engine/record-digest.ts) and the rest with node:crypto. Records of
 * both kinds, written by several cold processes at once into one journal,
 * must make one chain that verify accepts: in this process (node:crypto
 * already loaded) and in a fresh CLI process (whose own first 2 KiB of
 * checks are hashed in JavaScript).
 */
import { execFile } from 'node:child_process';
import test from 'ava';
import { SessionStore, verifyStore } from '../../src/index.js';
import { runCli } from '../helpers/compaction-helpers.js';
import { tempStoreDir } from '../helpers/temp-store.js';

const storesEntry = new URL('../../dist/stores.js', import.meta.url).pathname;
const WRITERS = 4;
const TURNS = 12;
/** The clock every writer uses: fixed, each record a millisecond later. */
const NOW = Date.parse('2026-06-01T10:00:00.000Z');

/** A cold writer: opens the bundle's SessionStore, adds TURNS turns one durable flush at a time, and says after which record node:crypto was loaded. */
function coldWriter(dir: string, id: string, n: number): Promise<{ firstWithCrypto: number }> {
  const body = `
    const { SessionStore } = await import(${JSON.stringify(storesEntry)});
    let tick = ${NOW + n * 1000};
    const store = SessionStore.openSync({ dir: ${JSON.stringify(dir)}, autoCompact: false, clock: () => tick++ });
    let firstWithCrypto = -1;
    for (let i = 0; i < ${TURNS}; i++) {
      store.addTurn(${JSON.stringify(id)}, { prompt: 'writer ${n} turn ' + i + ' ' + 'é'.repeat(150), response: 'ok '.repeat(60), timestamp: new Date(${NOW} + i) });
      await store.flush();
      if (firstWithCrypto < 0 && process.moduleLoadList.includes('NativeModule crypto')) firstWithCrypto = i;
    }
    await store.close();
    console.log(JSON.stringify({ firstWithCrypto }));
  `;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', body], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as { firstWithCrypto: number })));
  });
}

test('records hashed in JavaScript and by node:crypto, from four cold processes writing at once, make one chain: verify finds nothing, in process and from a fresh CLI', async (t) => {
  const dir = tempStoreDir(t);
  const setup = SessionStore.openSync({ dir, autoCompact: false, clock: () => NOW });
  const id = setup.createSession();
  setup.closeSync();

  const writers = await Promise.all(Array.from({ length: WRITERS }, (_, n) => coldWriter(dir, id, n)));
  for (const w of writers) {
    t.true(w.firstWithCrypto > 0, 'the first records of a writer were hashed without node:crypto');
    t.true(w.firstWithCrypto < TURNS, 'later records of the same writer were hashed by node:crypto');
  }

  const report = await verifyStore(dir);
  t.deepEqual(report.problems, []);
  t.true(report.ok);
  t.is(SessionStore.openSync({ dir, readOnly: true }).getSession(id)?.turns.length, WRITERS * TURNS);

  const cli = await runCli(['verify', '--dir', dir, '--json'], { timeoutMs: 60_000 });
  t.is(cli.code, 0, cli.stderr);
  t.true((JSON.parse(cli.stdout) as { ok: boolean }).ok);
});
