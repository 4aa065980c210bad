import fs from 'node:fs';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { SessionStore, WarningCodes, type JournalWarning, type SessionStoreOptions, type WarningCode } from '../src/index.js';
import { copyFixtureStore, lineStart } from './helpers/fixture-store.js';
import { collectWarnings, tempStoreDir } from './helpers/temp-store.js';
import { JOURNALS_NOW } from './helpers/fixture-now.js';

/**
 * Every fixture under fixtures/journals/ is a real store, damaged the way real
 * life damages files (see fixtures/README.md). Each test copies one into a
 * private temp directory and replays it: opening never throws, every valid
 * record is kept, and every skipped line is reported exactly once with its
 * code, absolute file, 1-based line and byte offset.
 */

/** Fixture records are from 2026-11-21 09:00-09:02Z; a clock just after keeps them inside the 24 h TTL. */
/** The journals' documented now (fixtures/README.md). */
const NOW = JOURNALS_NOW;
const SEGMENT_1 = 'journal-00000001.ndjson';

interface SessionSummary {
  id: string;
  turns: number;
  conversationId: string | undefined;
}

interface ExpectedWarning {
  code: WarningCode;
  /** Store file name; default: the first segment. */
  file?: string;
  /** 1-based line; omit for whole-file warnings (then no offset either). */
  line?: number;
  /** Byte offset; default: where `line` starts in the fixture. */
  offset?: number;
}

interface FixtureCase {
  fixture: string;
  /** What the case proves, for the test title. */
  about: string;
  options?: Partial<SessionStoreOptions>;
  sessions: SessionSummary[];
  warnings: ExpectedWarning[];
  check?: (t: ExecutionContext, store: SessionStore) => void;
}

const s = (id: string, turns: number, conversationId?: string): SessionSummary => ({ id, turns, conversationId });

function openStore(t: ExecutionContext, dir: string, options: Partial<SessionStoreOptions> = {}): { store: SessionStore; warnings: JournalWarning[] } {
  const { warnings, onWarning } = collectWarnings();
  let store: SessionStore | undefined;
  t.notThrows(() => {
    store = SessionStore.openSync({ dir, onWarning, clock: () => NOW, fsync: false, ...options });
  });
  if (!store) throw new Error('open failed');
  const opened = store;
  t.teardown(() => opened.closeSync());
  return { store: opened, warnings };
}

function summarize(store: SessionStore): SessionSummary[] {
  return store
    .listSessions()
    .map((x) => s(x.id, x.turns.length, x.codexConversationId))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Warnings as comparable places (never messages). */
function places(warnings: readonly JournalWarning[]): Array<Pick<JournalWarning, 'code' | 'file' | 'line' | 'offset'>> {
  return warnings.map((w) => ({ code: w.code, file: w.file, line: w.line, offset: w.offset }));
}

function expectedPlaces(dir: string, expected: readonly ExpectedWarning[]): ReturnType<typeof places> {
  return expected.map((e) => {
    const file = path.join(dir, e.file ?? SEGMENT_1);
    if (e.line === undefined) return { code: e.code, file, line: undefined, offset: undefined };
    return { code: e.code, file, line: e.line, offset: e.offset ?? lineStart(file, e.line) };
  });
}

const cases: FixtureCase[] = [
  {
    fixture: 'torn-last-line',
    about: 'a last line cut mid-record is reported once as INCOMPLETE_TAIL and not applied',
    sessions: [s('s1', 1, 'conv-0a1b2c'), s('s2', 1)],
    warnings: [{ code: WarningCodes.INCOMPLETE_TAIL, line: 6 }],
  },
  {
    fixture: 'missing-final-newline',
    about: 'a whole record without its newline is INCOMPLETE_TAIL at open (it may be an append in progress)',
    sessions: [s('s1', 1), s('s2', 0, 'conv-nl04')],
    warnings: [{ code: WarningCodes.INCOMPLETE_TAIL, line: 5 }],
  },
  {
    fixture: 'torn-line-then-appends',
    about: 'a torn line that later appends terminated is skipped; records after it are kept',
    sessions: [s('s1', 2), s('s2', 1, 'conv-77aa'), s('s3', 0)],
    warnings: [{ code: WarningCodes.UNPARSABLE_LINE, line: 5 }],
  },
  {
    fixture: 'zero-filled-tail',
    about: 'a NUL-filled tail after power loss is reported once as ZERO_FILLED',
    sessions: [s('s1', 1), s('s2', 1, 'conv-zz01')],
    warnings: [{ code: WarningCodes.ZERO_FILLED, line: 6 }],
  },
  {
    fixture: 'garbage-lines',
    about: 'non-JSON lines in the middle are skipped one by one',
    sessions: [s('s1', 1, 'conv-g4rb'), s('s2', 1)],
    warnings: [3, 4, 5, 7].map((line) => ({ code: WarningCodes.UNPARSABLE_LINE, line })),
    check: (t, store) => t.is(store.getSession('s9'), undefined, 'the record missing its closing brace is not applied'),
  },
  {
    fixture: 'nul-bytes-in-line',
    about: 'lines with NUL bytes inside are UNPARSABLE_LINE',
    sessions: [s('s1', 1), s('s2', 1)],
    warnings: [3, 4].map((line) => ({ code: WarningCodes.UNPARSABLE_LINE, line })),
    check: (t, store) => t.is(store.getSession('s-lost'), undefined),
  },
  {
    fixture: 'not-an-object',
    about: 'JSON null, number, array, string and boolean lines are NOT_AN_OBJECT',
    sessions: [s('s1', 1), s('s2', 0)],
    warnings: [2, 3, 5, 6, 7].map((line) => ({ code: WarningCodes.NOT_AN_OBJECT, line })),
    check: (t, store) => t.is(store.getSession('s8'), undefined, 'a record wrapped in an array is not applied'),
  },
  {
    fixture: 'unknown-event-type',
    about: 'unknown event types (session.*, journal.*, another namespace) are skipped',
    sessions: [s('s1', 1), s('s2', 0, 'conv-u7')],
    warnings: [2, 4, 5].map((line) => ({ code: WarningCodes.UNKNOWN_EVENT_TYPE, line })),
  },
  {
    fixture: 'future-version-3',
    about: 'records of format version 3 are UNSUPPORTED_VERSION; records around them are kept',
    sessions: [s('s1', 1, 'conv-v1v1'), s('s2', 0)],
    warnings: [3, 4].map((line) => ({ code: WarningCodes.UNSUPPORTED_VERSION, line })),
    check: (t, store) => t.is(store.getSession('s-v2'), undefined),
  },
  {
    // Made when format 2 was still a future version: its "v":2 lines carry format 1's ISO `ts`, which format 2 (epoch ms) does not accept.
    fixture: 'future-version',
    about: 'lines marked format 2 with an ISO ts are INVALID_DATE; v1 records around them are kept',
    sessions: [s('s1', 1, 'conv-v1v1'), s('s2', 0)],
    warnings: [3, 4].map((line) => ({ code: WarningCodes.INVALID_DATE, line })),
    check: (t, store) => t.is(store.getSession('s-v2'), undefined),
  },
  {
    fixture: 'invalid-envelope',
    about: 'envelopes missing v, seq, t or w (or of the wrong type) are INVALID_ENVELOPE',
    sessions: [s('s1', 1)],
    warnings: [2, 3, 4, 5, 6, 7].map((line) => ({ code: WarningCodes.INVALID_ENVELOPE, line })),
  },
  {
    fixture: 'invalid-dates',
    about: 'invalid or missing ts, createdAt, lastAccessedAt and turn timestamps are INVALID_DATE',
    sessions: [s('s1', 2, 'conv-dates')],
    warnings: [2, 3, 4, 5, 6, 7, 8, 9, 10].map((line) => ({ code: WarningCodes.INVALID_DATE, line })),
    check: (t, store) => {
      const s1 = store.getSession('s1')!;
      t.is(s1.createdAt.toISOString(), '2026-11-20T08:00:00.000Z', 'the valid update applied');
      t.deepEqual(
        s1.turns.map((turn) => turn.timestamp.toISOString()),
        ['2026-11-21T09:00:49.000Z', '2026-11-21T09:30:00.000Z'],
        'valid turns kept, the one with a +02:00 offset as its UTC instant',
      );
      for (const id of ['s-bad-ts', 's-no-ts', 's-yesterday']) t.is(store.getSession(id), undefined);
    },
  },
  {
    fixture: 'invalid-dates-with-offset',
    about: 'calendar dates that do not exist are INVALID_DATE with a UTC offset too',
    sessions: [s('s1', 1)],
    warnings: [2, 3, 4].map((line) => ({ code: WarningCodes.INVALID_DATE, line })),
    check: (t, store) => {
      t.is(store.getSession('s-feb30'), undefined);
      t.is(store.getSession('s1')?.createdAt.toISOString(), '2026-11-21T09:00:07.000Z');
    },
  },
  {
    fixture: 'invalid-session-id',
    about: 'session ids outside [a-zA-Z0-9_-]{1,256} are INVALID_PAYLOAD; a 256-char id is valid',
    sessions: [s('s1', 1), s('x'.repeat(256), 0)],
    warnings: [2, 3, 4, 5, 6, 7, 8].map((line) => ({ code: WarningCodes.INVALID_PAYLOAD, line })),
  },
  {
    fixture: 'proto-keys',
    about: '__proto__/constructor/prototype as update keys are INVALID_PAYLOAD; as session ids they are normal sessions',
    sessions: [s('__proto__', 1, 'conv-proto'), s('constructor', 0, 'conv-ctor'), s('prototype', 0), s('s1', 1)],
    warnings: [2, 3, 4, 9].map((line) => ({ code: WarningCodes.INVALID_PAYLOAD, line })),
    check: (t, store) => {
      assertNotPolluted(t);
      for (const id of ['__proto__', 'constructor', 'prototype', 's1']) {
        const session = store.getSession(id)!;
        t.is(session.id, id);
        t.is(Object.getPrototypeOf(session), Object.prototype, `${id}: a plain object`);
        t.false(Object.hasOwn(session, 'polluted'));
        t.is((session as unknown as Record<string, unknown>).polluted, undefined);
      }
    },
  },
  {
    fixture: 'update-renames-session',
    about: 'an update whose data names another session id is INVALID_PAYLOAD (a session stays under its id); one naming its own id applies',
    sessions: [s('s1', 0), s('s2', 1)],
    warnings: [{ code: WarningCodes.INVALID_PAYLOAD, line: 2 }],
    check: (t, store) => {
      const s1 = store.getSession('s1') as unknown as Record<string, unknown>;
      t.is(s1.id, 's1');
      t.is(s1.note, 'kept');
      t.is((store.getSession('s2') as unknown as Record<string, unknown>).note, undefined);
    },
  },
  {
    fixture: 'oversized-line',
    about: 'a line longer than maxLineBytes is LINE_TOO_LONG; records after it are kept',
    options: { maxLineBytes: 4096 },
    sessions: [s('s1', 1), s('s2', 1)],
    warnings: [{ code: WarningCodes.LINE_TOO_LONG, line: 3 }],
  },
  {
    fixture: 'crlf-line-endings',
    about: 'CRLF line endings lose nothing and warn about nothing',
    sessions: [s('s1', 1), s('s2', 1, 'conv-crlf')],
    warnings: [],
  },
  {
    fixture: 'utf8-bom',
    about: 'a UTF-8 BOM is reported once as BOM_IGNORED and the first record is still applied',
    sessions: [s('s1', 1), s('s2', 0)],
    warnings: [{ code: WarningCodes.BOM_IGNORED, line: 1, offset: 0 }],
    check: (t, store) => t.is(store.getSession('s1')?.createdAt.toISOString(), '2026-11-21T09:00:07.000Z'),
  },
  {
    fixture: 'empty-file',
    about: 'an empty segment is an empty store',
    sessions: [],
    warnings: [],
  },
  {
    fixture: 'truncated-snapshot',
    about: 'a snapshot without footer is SNAPSHOT_UNREADABLE; the segments still give every session',
    sessions: [s('s1', 1), s('s2', 1, 'conv-snap'), s('s3', 0)],
    warnings: [{ code: WarningCodes.SNAPSHOT_UNREADABLE, file: 'snapshot-00000002.ndjson' }],
  },
  {
    fixture: 'spread-record',
    about: 'a turn spread over seven journal.part lines (and a record after them in its commit) is applied as one turn, with no warning',
    sessions: [s('s1', 2, 'conv-1')],
    warnings: [],
    check: (t, store) => {
      const prompt = store.getSession('s1')!.turns[0]!.prompt;
      t.true(prompt.startsWith('big: line 0 with "quotes", a back\\slash, é and 😀\n'));
      t.is(prompt.split('\n').length, 40);
    },
  },
  {
    fixture: 'torn-spread-record',
    about: 'a spread commit cut short mid-part is dropped whole (INCOMPLETE_COMMIT at its first line), and the next writer\'s turn is kept',
    sessions: [s('s2', 1)],
    warnings: [
      { code: WarningCodes.UNPARSABLE_LINE, line: 4 },
      { code: WarningCodes.INCOMPLETE_COMMIT, line: 2 },
    ],
    check: (t, store) => t.is(store.getSession('s2')!.turns[0]!.prompt, 'after the torn write'),
  },
  {
    fixture: 'damaged-spread-part',
    about: 'a damaged part of a spread record in a whole commit: the record is not applied, each of its other parts is INCOMPLETE_RECORD, the record after it is kept',
    sessions: [s('s3', 1)],
    warnings: [
      { code: WarningCodes.UNPARSABLE_LINE, line: 3 },
      ...[2, 4, 5, 6, 7, 8].map((line) => ({ code: WarningCodes.INCOMPLETE_RECORD, line })),
    ],
    check: (t, store) => t.is(store.getSession('s3')!.turns[0]!.prompt, 'after the damage'),
  },
];

function assertNotPolluted(t: ExecutionContext): void {
  t.false(Object.hasOwn(Object.prototype, 'polluted'), 'Object.prototype was not polluted');
  t.is(({} as Record<string, unknown>).polluted, undefined);
  t.is(Object.getPrototypeOf({}), Object.prototype);
  t.is(typeof ({}).constructor, 'function');
}

for (const c of cases) {
  test(`fixture ${c.fixture}: ${c.about}`, (t) => {
    const dir = copyFixtureStore(t, c.fixture);
    const { store, warnings } = openStore(t, dir, c.options);
    t.deepEqual(places(warnings), expectedPlaces(dir, c.warnings), 'exactly one warning per skipped line, at its place');
    t.deepEqual(summarize(store), c.sessions, 'every valid record kept, nothing else');
    c.check?.(t, store);
  });
}

test('fixture oversized-line: with the default maxLineBytes the long line is an ordinary record', (t) => {
  const dir = copyFixtureStore(t, 'oversized-line');
  const { store, warnings } = openStore(t, dir);
  t.deepEqual(places(warnings), []);
  t.deepEqual(summarize(store), [s('s1', 2), s('s2', 1)]);
  t.true(store.getSession('s1')!.turns[1]!.prompt.length > 9000);
});

test('fixture proto-keys: __proto__ and constructor work as session ids through the API, and survive reopening', async (t) => {
  const dir = copyFixtureStore(t, 'proto-keys');
  const first = openStore(t, dir);
  first.store.addTurn('__proto__', { prompt: 'again', response: 'ok', timestamp: new Date(NOW) });
  first.store.setCodexConversationId('constructor', 'conv-ctor-2');
  first.store.ensureSession('hasOwnProperty');
  t.throws(() => first.store.updateSession('s1', JSON.parse('{"__proto__":{"polluted":true}}')), { code: 'INVALID_UPDATE' });
  await first.store.close();
  const { store, warnings } = openStore(t, dir);
  t.deepEqual(
    places(warnings),
    expectedPlaces(dir, [2, 3, 4, 9].map((line) => ({ code: WarningCodes.INVALID_PAYLOAD, line }))),
  );
  t.deepEqual(summarize(store), [s('__proto__', 2, 'conv-proto'), s('constructor', 0, 'conv-ctor-2'), s('hasOwnProperty', 0), s('prototype', 0), s('s1', 1)]);
  t.true(store.deleteSession('__proto__'));
  t.is(store.getSession('__proto__'), undefined);
  assertNotPolluted(t);
});

test('fixture torn-last-line: a writer never glues its line onto a torn tail', async (t) => {
  const dir = copyFixtureStore(t, 'torn-last-line');
  const file = path.join(dir, SEGMENT_1);
  const original = fs.readFileSync(file);
  const tornAt = lineStart(file, 6);

  const first = openStore(t, dir);
  first.store.addTurn('s2', { prompt: 'after the crash', response: 'still here', timestamp: new Date(NOW) });
  first.store.ensureSession('s4');
  await first.store.close();
  t.deepEqual(places(first.warnings), [{ code: WarningCodes.INCOMPLETE_TAIL, file, line: 6, offset: tornAt }], 'the torn tail is reported once, not again when the writer terminates it');

  const bytes = fs.readFileSync(file);
  t.deepEqual(bytes.subarray(0, original.length), original, 'the existing bytes are untouched');
  t.deepEqual([...bytes.subarray(original.length, original.length + 2)], [0x1e, 0x0a], 'the torn line is sealed (record separator, newline) before the new records');
  const appended = bytes.subarray(original.length + 2).toString('utf8').split('\n');
  t.is(appended.pop(), '', 'the new records end in a newline');
  t.true(appended.length >= 2);
  for (const line of appended) t.is((JSON.parse(line) as { v: unknown }).v, 2, 'each new record is a whole line of its own (format 2)');

  const { store, warnings } = openStore(t, dir);
  t.deepEqual(places(warnings), [{ code: WarningCodes.UNPARSABLE_LINE, file, line: 6, offset: tornAt }], 'the torn line is now a skipped line');
  t.deepEqual(summarize(store), [s('s1', 1, 'conv-0a1b2c'), s('s2', 2), s('s4', 0)]);
  t.is(store.getSession('s2')!.turns[1]!.prompt, 'after the crash');
});

test('fixture zero-filled-tail: after a writer appends, the NUL run is one skipped ZERO_FILLED line', async (t) => {
  const dir = copyFixtureStore(t, 'zero-filled-tail');
  const file = path.join(dir, SEGMENT_1);
  const first = openStore(t, dir);
  first.store.addTurn('s1', { prompt: 'after power loss', response: 'ok', timestamp: new Date(NOW) });
  await first.store.close();
  t.is(first.warnings.length, 1, 'reported once at open, not again when the writer terminates it');

  const { store, warnings } = openStore(t, dir);
  t.deepEqual(places(warnings), [{ code: WarningCodes.ZERO_FILLED, file, line: 6, offset: lineStart(file, 6) }]);
  t.deepEqual(summarize(store), [s('s1', 2), s('s2', 1, 'conv-zz01')]);
});

test('fixture crlf-line-endings: a writer appends after CRLF lines without loss', async (t) => {
  const dir = copyFixtureStore(t, 'crlf-line-endings');
  const first = openStore(t, dir);
  first.store.addTurn('s1', { prompt: 'from linux', response: 'LF', timestamp: new Date(NOW) });
  await first.store.close();
  const { store, warnings } = openStore(t, dir);
  t.deepEqual(places(warnings), []);
  t.deepEqual(summarize(store), [s('s1', 2), s('s2', 1, 'conv-crlf')]);
});

test('fixture empty-file: a writer appends to an empty segment', async (t) => {
  const dir = copyFixtureStore(t, 'empty-file');
  const first = openStore(t, dir);
  const id = first.store.createSession();
  await first.store.close();
  const { store, warnings } = openStore(t, dir);
  t.deepEqual(places(warnings), []);
  t.deepEqual(summarize(store), [s(id, 0)]);
  t.deepEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.ndjson')), [SEGMENT_1]);
});

test('first run: a missing store directory is created 0700, empty, without warnings', async (t) => {
  const dir = path.join(tempStoreDir(t), 'nested', 'store');
  t.false(fs.existsSync(dir));
  const first = openStore(t, dir);
  t.deepEqual(places(first.warnings), []);
  t.deepEqual(first.store.listSessions(), []);
  t.is(fs.statSync(dir).mode & 0o777, 0o700);
  first.store.ensureSession('s1');
  await first.store.close();
  t.is(fs.statSync(path.join(dir, SEGMENT_1)).mode & 0o777, 0o600);
  const { store, warnings } = openStore(t, dir);
  t.deepEqual(places(warnings), []);
  t.deepEqual(summarize(store), [s('s1', 0)]);
});

test('first run: an existing empty directory with no journal file is an empty store', (t) => {
  const dir = tempStoreDir(t);
  fs.mkdirSync(dir, { mode: 0o700 });
  const { store, warnings } = openStore(t, dir);
  t.deepEqual(places(warnings), []);
  t.deepEqual(store.listSessions(), []);
  t.is(store.getSession('s1'), undefined);
});

test('LINE_TOO_LONG: a line over maxLineBytes is skipped whatever the limit (not only below the 64 KiB read buffer)', async (t) => {
  const dir = tempStoreDir(t);
  const writer = openStore(t, dir); // default maxLineBytes: 1 MiB
  writer.store.ensureSession('s1');
  writer.store.addTurn('s1', { prompt: 'p'.repeat(100_000), response: 'r', timestamp: new Date(NOW) });
  writer.store.ensureSession('s2');
  await writer.store.close();
  const file = path.join(dir, SEGMENT_1);
  const { store, warnings } = openStore(t, dir, { maxLineBytes: 70_000 });
  t.deepEqual(places(warnings), [{ code: WarningCodes.LINE_TOO_LONG, file, line: 2, offset: lineStart(file, 2) }]);
  t.deepEqual(summarize(store), [s('s1', 0), s('s2', 0)]);
});

test('fixture missing-final-newline: a whole record without its newline never finished its write; sealed, not applied, and the writer and a fresh replay agree', async (t) => {
  const dir = copyFixtureStore(t, 'missing-final-newline');
  const file = path.join(dir, SEGMENT_1);
  const first = openStore(t, dir);
  first.store.addTurn('s1', { prompt: 'after the newline', response: 'ok', timestamp: new Date(NOW) });
  await first.store.flush();
  const writerView = summarize(first.store);
  await first.store.close();
  t.deepEqual(places(first.warnings), [{ code: WarningCodes.INCOMPLETE_TAIL, file, line: 5, offset: lineStart(file, 5) }]);

  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((line) => line !== '');
  t.true(lines[4]!.endsWith('\x1e'), 'the unfinished record is sealed where it was');
  const seqs = lines.filter((line) => !line.endsWith('\x1e')).map((line) => (JSON.parse(line) as { seq: number }).seq);
  t.deepEqual(seqs, seqs.map((_, i) => i + 1), 'the sequence numbers readers apply stay gapless and increasing in file order');

  const { store, warnings } = openStore(t, dir);
  t.deepEqual(places(warnings), [{ code: WarningCodes.INCOMPLETE_TAIL, file, line: 5, offset: lineStart(file, 5) }], 'reported as the unfinished write it was; no SEQUENCE_REGRESSION');
  t.deepEqual(summarize(store), writerView, 'the writer and a fresh replay agree');
  t.is(store.getSession('s1')!.turns.length, 2);
  t.is(store.getSession('s2')!.turns.length, 0, 'the unfinished turn was never acknowledged, and is not applied');
});
