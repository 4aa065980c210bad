import { Journal } from '../storage/journal.js';
import type { JournalRecord } from '../engine/record-codec.js';
import type { JournalWarning } from '../engine/warnings.js';
import { auditTrail } from '../audit/replay-source.js';
import type { StdoutSink } from './stdout-sink.js';
import type { Stopper } from './stopper.js';

const POLL_MS = 200;

/**
 * --follow: a read-only Journal catches up every POLL_MS (following rotation
 * markers, reloading from the new snapshot when a compaction moved past it);
 * records with a seq above the last one seen are printed. A jump in seq (a
 * segment archived between two polls) is filled from the archive.
 */
export async function followJournal(dir: string, afterSeq: number, emit: (r: JournalRecord) => Promise<void>, out: StdoutSink, warn: (w: JournalWarning) => void, stopper: Stopper): Promise<void> {
  let lastSeq = afterSeq;
  const pending: JournalRecord[] = [];
  out.onClose(() => stopper.stop());
  const journal = Journal.openSync({
    dir,
    readOnly: true,
    create: false,
    flushOnExit: false,
    onWarning: warn,
    consumer: {
      reset: () => undefined,
      restore: () => undefined,
      apply: (record) => {
        pending.push(record);
        return undefined;
      },
    },
  });
  try {
    while (!stopper.stopped && !out.closed) {
      journal.catchUp();
      const batch = pending.splice(0);
      for (const record of batch) {
        if (out.closed) break;
        if (record.seq <= lastSeq) continue;
        // A record spread over several lines holds the seqs of all of them: only a jump past its first is a gap.
        if (record.seq - (record.lines ?? 1) > lastSeq) {
          for await (const item of auditTrail(dir)) {
            if (item.kind !== 'record' || item.record.seq <= lastSeq) continue;
            if (item.record.seq >= record.seq) break;
            lastSeq = item.record.seq;
            await emit(item.record);
          }
        }
        lastSeq = record.seq;
        await emit(record);
      }
      await stopper.sleep(POLL_MS);
    }
  } finally {
    await journal.close();
  }
}
