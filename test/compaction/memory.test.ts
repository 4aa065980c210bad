/**
 * Streaming sanity (not a benchmark): a journal of 200k records, larger than
 * the child's whole V8 heap, compacts under --max-old-space-size=96. The fold
 * reads the segment in chunks and the archive gzips it as a stream, so memory
 * follows the folded state (small here: resets keep sessions short), not the
 * journal. The real memory figure is in bench/.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { collectWarnings, tempStoreDir } from '../helpers/temp-store.js';
import { T0, freshReplay, runCli, snapshotsIn } from '../helpers/compaction-helpers.js';

const RECORDS = 200_000;
const SESSIONS = 100;
const RESET_EVERY = 30;

test('streaming: a 200k-record journal bigger than the heap compacts in a child with --max-old-space-size=96', async (t) => {
  const dir = tempStoreDir(t);
  const { warnings, onWarning } = collectWarnings();
  fs.mkdirSync(dir, { mode: 0o700 });
  const fd = fs.openSync(path.join(dir, 'journal-00000001.ndjson'), 'wx', 0o600);
  const writer = JSON.stringify(`${process.pid}@${os.hostname()}`);
  const base = T0 - 3_600_000; // an hour of history before T0, compacted at T0 (--now)
  const pad = 'lorem ipsum dolor sit amet '.repeat(18); // ~490 bytes a turn
  const turnsSinceReset = new Array<number>(SESSIONS).fill(0);
  let chunk = '';
  let bytes = 0;
  const emit = (seq: number, type: string, payload: string) => {
    chunk += `{"v":1,"seq":${seq},"ts":"${new Date(base + seq).toISOString()}","w":${writer},"t":"${type}","p":${payload}}\n`;
    if (chunk.length > 4 * 1024 * 1024) {
      bytes += fs.writeSync(fd, chunk);
      chunk = '';
    }
  };
  let seq = 0;
  for (let s = 0; s < SESSIONS; s++) emit(++seq, 'session.create', `{"id":"m${s}"}`);
  while (seq < RECORDS) {
    const s = seq % SESSIONS;
    if (turnsSinceReset[s] === RESET_EVERY) {
      emit(++seq, 'session.reset', `{"id":"m${s}"}`);
      turnsSinceReset[s] = 0;
    } else {
      const at = new Date(base + seq + 1).toISOString();
      emit(++seq, 'session.turn', `{"id":"m${s}","turn":{"prompt":"p${seq} ${pad}","response":"r${seq}","timestamp":"${at}"}}`);
      turnsSinceReset[s]!++;
    }
  }
  bytes += fs.writeSync(fd, chunk);
  fs.closeSync(fd);
  t.true(bytes > 96 * 1024 * 1024, `the journal (${bytes} bytes) is larger than the child's heap limit`);

  const run = await runCli(['compact', '--dir', dir, '--json', '--max-sessions', '1000', '--now', String(T0)], { execArgv: ['--max-old-space-size=96'], timeoutMs: 60_000 });
  t.is(run.stderr, '');
  t.is(run.code, 0);
  const result = JSON.parse(run.stdout) as { kept: number; bytesBefore: number; bytesAfter: number; segmentsArchived: number };
  t.is(result.kept, SESSIONS);
  t.is(result.segmentsArchived, 1);
  t.is(result.bytesBefore, bytes);
  t.true(result.bytesAfter < bytes / 10, 'the snapshot is much smaller than the journal');
  t.deepEqual(snapshotsIn(dir), ['snapshot-00000002.ndjson']);

  const replay = await freshReplay(dir, onWarning);
  t.is(replay.length, SESSIONS);
  t.deepEqual(
    replay.map((s) => s.turns.length),
    replay.map((s) => turnsSinceReset[Number(s.id.slice(1))]),
    'each session holds exactly the turns since its last reset',
  );
  t.deepEqual(warnings, []);
});
