/**
 * The programmatic API of build/src/index.js (what the package entry,
 * build/dist/index.js, bundles; what
 * `import ... from 'session-journal'` loads), one test per function, on the
 * committed fixture stores. Where a command prints the same thing, the result
 * is compared with that command's golden file, so the function and the
 * command cannot drift apart.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import {
  ErrorCodes,
  HistoryPrunedError,
  Journal,
  JournalEventStore,
  SessionJournalError,
  VerifyCodes,
  compactEventStore,
  compactSessions,
  compactStore,
  exportSessions,
  importSessions,
  readChainHead,
  repairStore,
  replayHistory,
  sessionsAt,
  storeStats,
  verifyStore,
  type FoldState,
  type JournalRecord,
  type JournalWarning,
  type ReplayEvent,
  type ReplayOptions,
} from '../src/index.js';
import { copyFixtureStore } from './helpers/fixture-store.js';
import { collectWarnings, fixturePath, tempStoreDir } from './helpers/temp-store.js';
import { IMPORTS_NOW, STORES_NOW, TEST_T0 } from './helpers/fixture-now.js';

const GOLDEN = new URL('../../test/golden/', import.meta.url).pathname;
const golden = (name: string): unknown => JSON.parse(fs.readFileSync(path.join(GOLDEN, name), 'utf8'));
const goldenLines = (name: string): unknown[] =>
  fs
    .readFileSync(path.join(GOLDEN, name), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown);
const copyStore = (t: ExecutionContext, name: string): string => copyFixtureStore(t, name, 'stores');
/** As JSON prints it: Dates as ISO strings, undefined fields left out. */
const asJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

async function collect(dir: string, options: ReplayOptions = {}): Promise<{ events: ReplayEvent[]; warnings: JournalWarning[] }> {
  const { warnings, onWarning } = collectWarnings();
  const events: ReplayEvent[] = [];
  for await (const event of replayHistory(dir, { onWarning, ...options })) events.push(event);
  return { events, warnings };
}

test('verifyStore: the report verify --json prints; a hand-edited record is RECORD_EDITED with its place', async (t) => {
  const clean = copyStore(t, 'verify-clean');
  const report = await verifyStore(clean);
  t.true(report.ok);
  t.deepEqual(asJson(report), golden('verify/verify-clean.json'));

  const edited = copyStore(t, 'verify-edited-prompt');
  const bad = await verifyStore(edited);
  t.false(bad.ok);
  t.deepEqual(asJson(bad), golden('verify/verify-edited-prompt.json'));
  t.true(bad.problems.some((p) => p.code === VerifyCodes.RECORD_EDITED && p.file !== null && p.line !== null));
});

test('readChainHead: the head verify reports; passed back as expectHead it proves the chain up to it', async (t) => {
  const dir = copyStore(t, 'verify-clean');
  const head = readChainHead(dir);
  t.deepEqual(head, (golden('verify/verify-clean.json') as { head: unknown }).head);
  const proof = await verifyStore(dir, { expectHead: head });
  t.deepEqual(proof.expectedHead, { ...head, found: true, matches: true, chainIntact: true });
  const forged = await verifyStore(dir, { expectHead: { seq: head.seq, h: 'f'.repeat(64) } });
  t.false(forged.ok);
  t.deepEqual(
    forged.problems.map((p) => p.code),
    [VerifyCodes.EXPECTED_HEAD_MISMATCH],
  );
});

test('storeStats: the document stats --json prints, with ttlMs and now optional (24 h, the current time)', (t) => {
  const dir = copyStore(t, 'verify-clean');
  // As test/cli/stats.test.ts: git keeps no mtimes, and the last compaction is the snapshot's.
  const compactedAt = new Date('2026-01-03T17:02:00.000Z');
  fs.utimesSync(path.join(dir, 'snapshot-00000003.ndjson'), compactedAt, compactedAt);
  t.deepEqual(asJson(storeStats(dir, { now: STORES_NOW.verify })), golden('stats/verify-clean.json'));
  t.deepEqual(storeStats(dir, { now: STORES_NOW.verify, ttlMs: 60_000 }).sessions, { total: 3, live: 0, expired: 3 });
  const defaults = storeStats(dir);
  t.is(defaults.ttlMs, 24 * 60 * 60 * 1000);
  t.is(defaults.sessions.total, 3);
  const err = t.throws(() => storeStats(dir, { ttlMs: 0 }), { instanceOf: SessionJournalError });
  t.is(err?.code, ErrorCodes.INVALID_OPTION);
});

test('replayHistory: the events replay --ndjson prints, filtered the same way; the torn line goes to onWarning with its place', async (t) => {
  const dir = copyStore(t, 'audit-basic');
  const all = await collect(dir);
  t.deepEqual(asJson(all.events), goldenLines('replay/all.ndjson'));
  t.deepEqual(
    all.warnings.map((w) => [w.code, w.file, w.line, w.offset]),
    [['UNPARSABLE_LINE', path.join(dir, 'journal-00000003.ndjson'), 3, 476]],
  );
  t.deepEqual(asJson((await collect(dir, { sessions: ['alpha'] })).events), goldenLines('replay/session-alpha.ndjson'));
  t.deepEqual(asJson((await collect(dir, { types: ['turn'] })).events), goldenLines('replay/type-turn.ndjson'));
  t.deepEqual(asJson((await collect(dir, { types: ['rotate'] })).events), goldenLines('replay/type-rotate.ndjson'));
  t.deepEqual(asJson((await collect(dir, { writers: ['4202'] })).events), goldenLines('replay/writer-4202.ndjson'));
  t.deepEqual(asJson((await collect(dir, { since: Date.parse('2026-03-10T00:00:00Z'), until: Date.parse('2026-03-10T09:00:00Z') })).events), goldenLines('replay/since-until.ndjson'));

  // Stopping early is allowed: the files are closed, and a new replay starts from the beginning.
  const firstTwo: number[] = [];
  for await (const event of replayHistory(dir, { onWarning: () => undefined })) {
    firstTwo.push(event.seq);
    if (firstTwo.length === 2) break;
  }
  t.deepEqual(firstTwo, [1, 2]);
  const missing = path.join(path.dirname(dir), 'no-such-store');
  await t.throwsAsync(collect(missing), { instanceOf: SessionJournalError, message: /no-such-store/ });
});

test('sessionsAt: the sessions replay --state --at prints; before a pruned archive HistoryPrunedError (HISTORY_PRUNED)', async (t) => {
  const dir = copyStore(t, 'audit-basic');
  for (const [name, at] of [
    ['day1-2300', '2026-03-09T23:00:00Z'],
    ['day2-0830', '2026-03-10T08:30:00Z'],
    ['end', '2026-03-11T00:00:00Z'],
  ] as const) {
    const state = await sessionsAt(dir, Date.parse(at), { onWarning: () => undefined });
    t.is(state.at, Date.parse(at));
    t.deepEqual(asJson(state.sessions), (golden(`replay/state-${name}.json`) as { sessions: unknown }).sessions, name);
    t.true(state.sessions.every((s) => s.createdAt instanceof Date && s.turns.every((turn) => turn.timestamp instanceof Date)));
    t.deepEqual(state.base, { kind: 'history' });
  }
  fs.rmSync(path.join(dir, 'archive', 'journal-00000001.ndjson.gz'));
  const notes: string[] = [];
  const rebuilt = await sessionsAt(dir, Date.parse('2026-03-10T08:30:00Z'), { onWarning: () => undefined, onNote: (n) => notes.push(n) });
  t.deepEqual(asJson(rebuilt.sessions), (golden('replay/state-day2-0830.json') as { sessions: unknown }).sessions);
  t.is(rebuilt.base.kind, 'snapshot');
  t.is(rebuilt.base.snapshot?.seq, 12);
  t.is(notes.length, 1);
  const err = await t.throwsAsync(sessionsAt(dir, Date.parse('2026-03-09T22:00:00Z'), { onWarning: () => undefined }), { instanceOf: HistoryPrunedError });
  t.is(err?.code, ErrorCodes.HISTORY_PRUNED);
  t.is(err?.earliest, Date.parse('2026-03-10T08:00:00.000Z'));
});

test('compactSessions: folds a store into a snapshot, keeping the sessions a reader sees', async (t) => {
  const dir = copyStore(t, 'audit-basic');
  const now = STORES_NOW.audit;
  const before = await sessionsAt(dir, now, { onWarning: () => undefined });
  const { warnings, onWarning } = collectWarnings();
  const result = await compactSessions({ dir, now: () => now, onWarning });
  t.is(result.status, 'compacted');
  t.is(result.kept, before.sessions.length);
  t.truthy(result.snapshot);
  t.true(fs.existsSync(path.join(dir, result.snapshot!)));
  t.deepEqual(asJson((await sessionsAt(dir, now, { onWarning: () => undefined })).sessions), asJson(before.sessions));
  t.deepEqual(
    warnings.map((w) => w.code),
    ['UNPARSABLE_LINE', 'KEPT_ASIDE'],
    'the torn line is reported, and kept aside rather than lost',
  );
});

test('compactEventStore: drops the streams past their TTL and keeps the others', async (t) => {
  const dir = tempStoreDir(t);
  let clock = TEST_T0;
  const events = await JournalEventStore.open({ dir, clock: () => clock, autoCompact: false, fsync: false });
  await events.storeEvent('old-stream', { jsonrpc: '2.0', method: 'notifications/message', params: { n: 1 } });
  clock += 2 * 60 * 60_000;
  await events.storeEvent('new-stream', { jsonrpc: '2.0', method: 'notifications/message', params: { n: 2 } });
  await events.close();
  const result = await compactEventStore({ dir, ttlMs: 60 * 60_000, now: () => clock });
  t.is(result.status, 'compacted');
  t.is(result.kept, 1);
  t.deepEqual(result.removed, { expired: 1 });
});

/** A minimal reducer of `note.set` records ({key, text}), as a custom FoldState for compactStore. */
class Notes implements FoldState {
  readonly recordNamespace = 'note';
  readonly notes = new Map<string, { text: string; time: number }>();
  get size(): number {
    return this.notes.size;
  }
  reset(): void {
    this.notes.clear();
  }
  restore(entry: unknown) {
    const e = entry as { key: string; text: string; time: number };
    this.notes.set(e.key, { text: e.text, time: e.time });
    return undefined;
  }
  apply(record: JournalRecord) {
    const p = record.payload as { key: string; text?: string };
    if (record.type === 'note.set') this.notes.set(p.key, { text: p.text ?? '', time: record.time });
    else if (record.type === 'note.drop') this.notes.delete(p.key);
    return undefined;
  }
  *entries(): Iterable<unknown> {
    for (const [key, n] of [...this.notes].sort(([a], [b]) => (a < b ? -1 : 1))) yield { key, text: n.text, time: n.time };
  }
  retention(now: number) {
    return [...this.notes].filter(([, n]) => now - n.time > 60_000).map(([key]) => ({ key, reason: 'expired', type: 'note.drop', payload: { key } }));
  }
  newestTime(): number | undefined {
    return this.notes.size === 0 ? undefined : Math.max(...[...this.notes.values()].map((n) => n.time));
  }
  keyOf(record: JournalRecord): string | undefined {
    return (record.payload as { key?: string }).key;
  }
  drop(key: string): void {
    this.notes.delete(key);
  }
}

test('compactStore: the generic compactor, with a custom FoldState over a Journal of its own records', async (t) => {
  const dir = tempStoreDir(t);
  let clock = TEST_T0;
  const journal = Journal.openSync({ dir, consumer: new Notes(), clock: () => clock, fsync: false, flushOnExit: false });
  journal.append('note.set', { key: 'stale', text: 'written first' });
  clock += 5 * 60_000;
  journal.append('note.set', { key: 'fresh', text: 'written last' });
  await journal.close();
  const result = await compactStore({ dir, now: () => clock }, new Notes());
  t.is(result.status, 'compacted');
  t.deepEqual([result.kept, result.removed], [1, { expired: 1 }]);
  const reread = new Notes();
  Journal.openSync({ dir, consumer: reread, readOnly: true, create: false, flushOnExit: false }).closeSync();
  t.deepEqual([...reread.notes.keys()], ['fresh'], 'a fresh replay (snapshot + journal) sees the retention');
});

test('repairStore: dryRun reports and changes nothing; then the garbage moves to quarantine/ and verify is clean', async (t) => {
  const dir = copyStore(t, 'repair-garbage');
  const segment = path.join(dir, 'journal-00000001.ndjson');
  const bytes = fs.readFileSync(segment);
  const plan = await repairStore({ dir, dryRun: true });
  t.is(plan.status, 'would-repair');
  t.true(plan.itemsMoved > 0);
  t.deepEqual(fs.readFileSync(segment), bytes, 'dryRun changes nothing');
  t.false((await verifyStore(dir)).ok);
  const done = await repairStore({ dir, now: () => STORES_NOW.repair });
  t.is(done.status, 'repaired');
  t.is(done.itemsMoved, plan.itemsMoved);
  t.true(done.files.every((f) => f.quarantine !== null && fs.existsSync(path.join(dir, f.quarantine))));
  t.true((await verifyStore(dir)).ok);
});

test('importSessions and exportSessions: a v1 file in, the same sessions out; importing twice adds nothing', async (t) => {
  const dir = tempStoreDir(t);
  const file = fixturePath('imports', 'v1-sessions.json');
  const fileSessions = (JSON.parse(fs.readFileSync(file, 'utf8')) as { sessions: Array<{ id: string }> }).sessions;
  const first = await importSessions({ dir, file, now: () => IMPORTS_NOW, fsync: false });
  t.is(first.format, 'v1');
  t.is(first.imported, fileSessions.length);
  const again = await importSessions({ dir, file, now: () => IMPORTS_NOW, fsync: false });
  t.deepEqual([again.imported, again.alreadyPresent], [0, fileSessions.length]);
  const doc = exportSessions({ dir });
  t.is(doc.version, 1);
  t.deepEqual(
    doc.sessions.map((s) => s.id),
    fileSessions.map((s) => s.id).sort(),
  );
  // The same sessions, with every instant written as UTC.
  const utc = (iso: string) => new Date(iso).toISOString();
  const expected = (fileSessions as unknown as typeof doc.sessions)
    .map((s) => ({ ...s, createdAt: utc(s.createdAt), lastAccessedAt: utc(s.lastAccessedAt), turns: s.turns.map((turn) => ({ ...turn, timestamp: utc(turn.timestamp) })) }))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  t.deepEqual(doc.sessions, expected);
});
