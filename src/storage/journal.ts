import type { JournalConsumer } from '../engine/journal-consumer.js';
import { GroupCommitJournal, type GroupCommitOptions } from '../engine/group-commit.js';
import { fileStorage, type FileStorageOptions } from './file/file-storage.js';

export type { JournalConsumer } from '../engine/journal-consumer.js';
export { DEFAULT_MAX_LINE_BYTES } from '../engine/group-commit.js';

/** A journal in a store directory: the engine's options and the directory's. */
export interface JournalOptions extends GroupCommitOptions, FileStorageOptions {
  consumer: JournalConsumer;
}

/**
 * The engine over a storage: an append-only journal, replayed at open,
 * caught up cheaply before reads, and written by group commit. It knows
 * nothing about what the records mean. `open`/`openSync` pick the storage
 * from the options: a store directory (`dir`).
 */
export class Journal extends GroupCommitJournal {
  /** Opens the store and replays snapshot + journal. Throws only for the directory or I/O, never for content. */
  static openSync(options: JournalOptions): Journal {
    const journal = new Journal(options, fileStorage(options));
    journal.loadSync(options);
    return journal;
  }

  /** The same, letting the event loop run between replay steps (the journal is not usable before it resolves). */
  static async open(options: JournalOptions): Promise<Journal> {
    const journal = new Journal(options, fileStorage(options));
    await journal.load(options);
    return journal;
  }
}
