/**
 * Compaction beside lines it cannot fold: garbage, a huge non-record line,
 * records of another namespace or an unknown type. They are copied verbatim
 * to quarantine/<segment>.kept.bad (indexed by .kept.json) before their
 * segment is archived, never block the compaction, and are kept aside once.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { compactSessions, ErrorCodes, WarningCodes } from '../../src/index.js';
import { copyFixtureStore, lineStart } from '../helpers/fixture-store.js';
import { collectWarnings, fixturePath } from '../helpers/temp-store.js';
import { FakeClock, NO_TTL, T0, openStore, runCli } from '../helpers/compaction-helpers.js';

interface KeptIndex {
  by: string;
  file: string;
  items: Array<{ file: string; line: number; offset: number; length: number; reason: string; quarantineOffset: number }>;
}

const SEGMENT = 'journal-00000001.ndjson';
const KEPT_BAD = path.join('quarantine', `${SEGMENT}.kept.bad`);
const KEPT_INDEX = path.join('quarantine', `${SEGMENT}.kept.json`);

/** Each fixture, and the lines (1-based) compaction cannot fold. */
const CASES: Array<[string, number[]]> = [
  ['garbage-lines', [3, 4, 5, 7]],
  ['unknown-event-type', [2, 4, 5]],
  ['not-an-object', [2, 3, 5, 6, 7]],
  ['invalid-envelope', [2, 3, 4, 5, 6, 7]],
];

for (const [fixture, lines] of CASES) {
  test(`${fixture}: compaction keeps lines ${lines.join(', ')} aside verbatim with their provenance, and compacts`, async (t) => {
    const dir = copyFixtureStore(t, fixture);
    const original = fs.readFileSync(path.join(dir, SEGMENT));
    const { onWarning, warnings } = collectWarnings();
    const result = await compactSessions({ dir, ttlMs: NO_TTL, onWarning, now: () => T0 });
    t.is(result.status, 'compacted');
    t.is(result.keptAside.lines, lines.length);
    t.true(warnings.some((w) => w.code === WarningCodes.KEPT_ASIDE), 'a KEPT_ASIDE warning names the files');

    const index = JSON.parse(fs.readFileSync(path.join(dir, KEPT_INDEX), 'utf8')) as KeptIndex;
    t.is(index.by, 'compaction');
    t.deepEqual(index.items.map((i) => i.line), lines);
    const bad = fs.readFileSync(path.join(dir, KEPT_BAD));
    for (const item of index.items) {
      t.is(item.offset, lineStart(fixturePath('journals', fixture, SEGMENT), item.line));
      const expected = original.subarray(item.offset, item.offset + item.length);
      t.deepEqual(bad.subarray(item.quarantineOffset, item.quarantineOffset + item.length), expected, `line ${item.line} kept byte for byte`);
      t.is(expected[expected.length - 1], 0x0a, 'a whole line, with its newline');
    }
    // The archive still holds the whole segment as it was (and the rotation marker after it): verify's history is complete.
    const archived = zlib.gunzipSync(fs.readFileSync(path.join(dir, 'archive', `${SEGMENT}.gz`)));
    t.deepEqual(archived.subarray(0, original.length), original);
    t.regex(archived.subarray(original.length).toString(), /^\{[^\n]*"t":"journal\.rotate"[^\n]*\}\n$/);
  });
}

test('a compaction interrupted after keeping lines aside does not keep them twice; later compactions add nothing', async (t) => {
  const dir = copyFixtureStore(t, 'garbage-lines');
  const interrupted = await t.throwsAsync(
    compactSessions({
      dir,
      ttlMs: NO_TTL,
      onWarning: () => undefined,
      now: () => T0,
      onStep: (step) => {
        if (step === 'retained') throw Object.assign(new Error('killed'), { code: 'TEST_STOP' });
      },
    }),
  );
  t.is((interrupted as { code?: string }).code, 'TEST_STOP');
  const first = fs.readFileSync(path.join(dir, KEPT_BAD));
  const again = await compactSessions({ dir, ttlMs: NO_TTL, onWarning: () => undefined, now: () => T0 });
  t.is(again.status, 'compacted');
  t.is(again.keptAside.lines, 0, 'already kept aside');
  t.deepEqual(again.keptAside.files.map((f) => f.file), [SEGMENT]);
  t.deepEqual(fs.readFileSync(path.join(dir, KEPT_BAD)), first);

  const clock = new FakeClock(T0);
  const store = openStore(dir, () => undefined, { clock: clock.read });
  store.ensureSession('later');
  await store.close();
  const third = await compactSessions({ dir, ttlMs: NO_TTL, onWarning: () => undefined, now: () => T0 });
  t.is(third.status, 'compacted');
  t.deepEqual(third.keptAside, { lines: 0, files: [] });
  t.deepEqual(fs.readdirSync(path.join(dir, 'quarantine')).sort(), [`${SEGMENT}.kept.bad`, `${SEGMENT}.kept.json`]);
});

test('a 4 MiB line that is no record (a runaway log line) no longer blocks compaction: it is kept aside whole', async (t) => {
  const dir = copyFixtureStore(t, 'garbage-lines');
  const file = path.join(dir, SEGMENT);
  const huge = Buffer.alloc(4 * 1024 * 1024, 'x');
  const at = fs.statSync(file).size;
  fs.appendFileSync(file, Buffer.concat([huge, Buffer.from('\n')]));
  const run = await runCli(['compact', '--dir', dir, '--json', '--ttl', '100000d']);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stderr, /LINE_TOO_LONG/);
  const doc = JSON.parse(run.stdout) as { keptAside: { lines: number } };
  t.is(doc.keptAside.lines, 5);
  const index = JSON.parse(fs.readFileSync(path.join(dir, KEPT_INDEX), 'utf8')) as KeptIndex;
  const item = index.items.find((i) => i.offset === at)!;
  t.like(item, { reason: WarningCodes.LINE_TOO_LONG, length: huge.length + 1 });
  const bad = fs.readFileSync(path.join(dir, KEPT_BAD));
  t.true(bad.subarray(item.quarantineOffset, item.quarantineOffset + huge.length).equals(huge));
});

test('a store of the other kind is still refused (STORE_KIND_MISMATCH): foreign records and none of its own', async (t) => {
  const dir = copyFixtureStore(t, 'garbage-lines');
  const file = path.join(dir, SEGMENT);
  const foreign = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.replace(/"t":"session\.[a-z]+"/, '"t":"event.store"'))
    .join('\n');
  fs.writeFileSync(file, foreign);
  const err = await t.throwsAsync(compactSessions({ dir, ttlMs: NO_TTL, onWarning: () => undefined, now: () => T0 }));
  t.is((err as { code?: string }).code, ErrorCodes.STORE_KIND_MISMATCH);
  t.false(fs.existsSync(path.join(dir, 'quarantine')));
});
