/**
 * Damaged input on every backend, made by the backend (backends.ts,
 * `damage`): a line that is no record after the last one, half a record a
 * dead writer left there, a snapshot whose bytes changed. Opening never
 * throws, each damage is reported once with its code (on stderr when no
 * onWarning is given, never on stdout), every valid record is kept, and
 * writers go on where every reader reads them. The directory's damage at
 * exact files, lines and offsets is test/replay-fixtures.test.ts's, on the
 * committed fixtures.
 */
import { spawn } from 'node:child_process';
import test from 'ava';
import { WarningCodes } from '../../src/index.js';
import { NO_TTL } from '../helpers/compaction-helpers.js';
import { serializeSessions } from '../helpers/child-protocol.js';
import { backends, type Backend, type Location } from './backends.js';
import { FakeClock, TEST_T0 as T0, beforePeerRead, collectWarnings, named, track, turn } from './harness.js';

const BUILT_INDEX = new URL('../../src/index.js', import.meta.url).href;
const KEEP = { fsync: false, autoCompact: false as const, ttlMs: NO_TTL, maxSessions: 100_000 };

/** Runs node with `args`; kills it (SIGKILL) after `timeoutMs`. */
function runNode(args: string[], timeoutMs = 30_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** Three sessions with a turn each, flushed and closed. */
async function seedSessions(backend: Backend, at: Location, clock: FakeClock, ids = ['s1', 's2', 's3']): Promise<void> {
  const store = await backend.openSessions(at, { ...KEEP, clock: clock.read });
  for (const id of ids) {
    store.ensureSession(id);
    store.addTurn(id, turn(`hello ${id}`, clock.advance(1000)));
  }
  await store.close();
}

async function replay(backend: Backend, at: Location, clock: FakeClock) {
  const { warnings, onWarning } = collectWarnings();
  const store = await backend.openSessions(at, { ...KEEP, clock: clock.read, onWarning });
  const sessions = serializeSessions(store.listSessions());
  await store.close();
  return { sessions, codes: warnings.map((w) => w.code) };
}

for (const backend of backends) {
  test(named(backend, 'warnings go to stderr by default, never to stdout, naming the place of the damage'), async (t) => {
    const at = await backend.fresh(t);
    const seed = track(t, await backend.openSessions(at, { fsync: false }));
    seed.ensureSession('kept');
    await seed.close();
    const place = await backend.damage.garbageAfterLast(at, 'this is not json');
    const code = [
      `import { SessionStore } from ${JSON.stringify(BUILT_INDEX)};`,
      'const store = await SessionStore.open({ ...JSON.parse(process.argv[1]), fsync: false });',
      "if (store.getSession('kept') === undefined) process.exitCode = 3;",
      'await store.close();',
    ].join('\n');
    const child = await runNode(['--input-type=module', '-e', code, JSON.stringify(backend.child(at))]);
    t.is(child.status, 0, child.stderr);
    t.is(child.stdout, '', 'stdout is the MCP transport: nothing may go there');
    const lines = child.stderr.split('\n').filter((l) => l !== '');
    t.is(lines.length, 1, child.stderr);
    t.regex(lines[0]!, /UNPARSABLE_LINE/);
    t.true(lines[0]!.includes(place), `${lines[0]} names ${place}`);
  });

  test(named(backend, 'a line that is no record after the last one: reported once, every record kept, by a store opened after it and one open meanwhile; writers append after it'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    await seedSessions(backend, at, clock);
    const before = (await replay(backend, at, clock)).sessions;
    const { warnings: liveWarnings, onWarning } = collectWarnings();
    const live = track(t, await backend.openSessions(at, { ...KEEP, clock: clock.read, onWarning }));
    const place = await backend.damage.garbageAfterLast(at, '{"v":2,"seq":4,"t":"session.turn" this is not json');

    const { warnings, onWarning: report } = collectWarnings();
    const writer = track(t, await backend.openSessions(at, { ...KEEP, clock: clock.read, onWarning: report }));
    t.deepEqual(warnings.map((w) => [w.code, w.file?.includes(place)]), [[WarningCodes.UNPARSABLE_LINE, true]], 'reported once, at its place');
    t.deepEqual(serializeSessions(writer.listSessions()), before, 'every valid record applied');
    writer.addTurn('s2', turn('after the damage', clock.advance(1000)));
    writer.ensureSession('s4');
    await writer.flush();

    await beforePeerRead(backend, live);
    t.deepEqual(live.getSession('s2')?.turns.map((x) => x.prompt), ['hello s2', 'after the damage'], 'the store open meanwhile reads past it');
    t.truthy(live.getSession('s4'));
    t.deepEqual(liveWarnings.map((w) => w.code), [WarningCodes.UNPARSABLE_LINE], 'and reports it once');
    await Promise.all([live.close(), writer.close()]);
    const after = await replay(backend, at, clock);
    t.deepEqual(after.codes, [WarningCodes.UNPARSABLE_LINE]);
    t.deepEqual(after.sessions.map((s) => [s.id, s.turns.length]), [['s1', 1], ['s2', 2], ['s3', 1], ['s4', 0]]);
  });

  test(named(backend, 'half a record a dead writer left last: not applied, reported once (a tail, or unparsable once sealed); the next writer is not glued to it'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    await seedSessions(backend, at, clock);
    const torn = '{"v":2,"seq":7,"ts":1767268800000,"t":"session.turn","p":{"id":"s1","turn":{"prompt":"torn","resp';
    await backend.damage.tornAfterLast(at, torn);
    const first = await replay(backend, at, clock);
    t.is(first.codes.length, 1, `reported once: ${first.codes.join(', ')}`);
    t.true([WarningCodes.INCOMPLETE_TAIL, WarningCodes.UNPARSABLE_LINE].includes(first.codes[0] as never));
    t.deepEqual(first.sessions.map((s) => [s.id, s.turns.length]), [['s1', 1], ['s2', 1], ['s3', 1]], 'the torn record is not applied');

    const writer = track(t, await backend.openSessions(at, { ...KEEP, clock: clock.read, onWarning: () => undefined }));
    writer.addTurn('s1', turn('after the tear', clock.advance(1000)));
    await writer.close();
    const lines = await backend.lines(at);
    const tornAt = lines.findIndex((l) => l.text === backend.damage.sealed(torn));
    t.true(tornAt >= 0 && lines[tornAt + 1]?.record?.t === 'session.turn', 'the torn record is a line of its own, a whole record after it');
    const after = await replay(backend, at, clock);
    t.deepEqual(after.codes, [WarningCodes.UNPARSABLE_LINE], 'once a writer went on, the torn line is unparsable (no longer a tail in progress)');
    t.deepEqual(after.sessions.find((s) => s.id === 's1')?.turns.map((x) => x.prompt), ['hello s1', 'after the tear']);
  });

  test(named(backend, 'a snapshot whose bytes changed is not used: SNAPSHOT_UNREADABLE once, nothing damaged is read, later records are, and writers go on'), async (t) => {
    const at = await backend.fresh(t);
    const clock = new FakeClock(T0);
    await seedSessions(backend, at, clock, ['folded-1', 'folded-2']);
    await backend.compact('sessions', at, { ttlMs: NO_TTL, maxSessions: 100_000, now: clock.read, onWarning: () => undefined });
    await seedSessions(backend, at, clock, ['later']);
    const intact = await replay(backend, at, clock);
    t.deepEqual(intact.codes, []);
    await backend.damage.corruptSnapshot(at);

    const damaged = await replay(backend, at, clock);
    t.deepEqual(damaged.codes, [WarningCodes.SNAPSHOT_UNREADABLE], 'reported once');
    const written = new Map(intact.sessions.map((s) => [s.id, s]));
    for (const s of damaged.sessions) {
      const turns = written.get(s.id)?.turns.map((x) => x.prompt) ?? [];
      t.true(s.turns.every((x) => turns.includes(x.prompt)), `${s.id} holds only turns that were written`);
    }
    t.deepEqual(damaged.sessions.find((s) => s.id === 'later'), written.get('later'), 'what came after the snapshot is read');
    // A directory reads an older copy (archive/); without one, what only the snapshot held is gone, and the warning says so.
    if (backend.snapshotFallback) t.deepEqual(damaged.sessions, intact.sessions, 'nothing lost: the older copy was read');

    const writer = track(t, await backend.openSessions(at, { ...KEEP, clock: clock.read, onWarning: () => undefined }));
    writer.ensureSession('after-damage');
    await writer.close();
    t.truthy((await replay(backend, at, clock)).sessions.find((s) => s.id === 'after-damage'), 'a writer goes on, and readers read it');
  });

  test(named(backend, 'a KeyValueStore and a JournalEventStore keep every record around a line that is no record, and report it once'), async (t) => {
    const kvAt = await backend.fresh(t);
    const kv = await backend.openKv(kvAt, { fsync: false, autoCompact: false, clock: () => T0 });
    kv.set('a', 1).set('b', { x: [1, 2] });
    await kv.close();
    await backend.damage.garbageAfterLast(kvAt, 'kv garbage');
    const { warnings: kvWarnings, onWarning: kvReport } = collectWarnings();
    const kv2 = track(t, await backend.openKv(kvAt, { fsync: false, autoCompact: false, clock: () => T0, onWarning: kvReport }));
    kv2.set('c', 'after');
    await kv2.close();
    const kv3 = track(t, await backend.openKv(kvAt, { fsync: false, autoCompact: false, clock: () => T0, onWarning: kvReport }));
    t.deepEqual([...kv3.entries()].sort(), [['a', 1], ['b', { x: [1, 2] }], ['c', 'after']]);
    t.deepEqual(kvWarnings.map((w) => w.code), [WarningCodes.UNPARSABLE_LINE, WarningCodes.UNPARSABLE_LINE], 'once per open');
    await kv3.close();

    const evAt = await backend.fresh(t);
    const ev = await backend.openEvents(evAt, { fsync: false, autoCompact: false });
    const first = await ev.storeEvent('req-1', { jsonrpc: '2.0', method: 'notifications/message', params: { i: 1 } });
    await ev.storeEvent('req-1', { jsonrpc: '2.0', method: 'notifications/message', params: { i: 2 } });
    await ev.close();
    await backend.damage.garbageAfterLast(evAt, 'event garbage');
    const { warnings: evWarnings, onWarning: evReport } = collectWarnings();
    const ev2 = track(t, await backend.openEvents(evAt, { fsync: false, autoCompact: false, onWarning: evReport }));
    await ev2.storeEvent('req-1', { jsonrpc: '2.0', method: 'notifications/message', params: { i: 3 } });
    const got: unknown[] = [];
    t.is(await ev2.replayEventsAfter(first, { send: async (_id, m) => void got.push((m as { params: { i: number } }).params.i) }), 'req-1');
    t.deepEqual(got, [2, 3]);
    t.deepEqual(evWarnings.map((w) => w.code), [WarningCodes.UNPARSABLE_LINE]);
    await ev2.close();
  });
}
