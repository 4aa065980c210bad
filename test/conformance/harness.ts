/**
 * What the conformance suites share: stores closed when a test ends (even a
 * failed one, before its location is removed), warnings collected, error
 * codes read, and the journal's lines of one type.
 */
import type { ExecutionContext } from 'ava';
import { SessionJournalError, type JournalEventStore, type KeyValueStore, type SessionStore, type SessionStoreOptions } from '../../src/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { TEST_T0 } from '../helpers/fixture-now.js';
import { collectWarnings } from '../helpers/temp-store.js';
import type { Backend, Location, Opts, StoredLine } from './backends.js';

export { FakeClock, TEST_T0, collectWarnings };

/** Closes `store` when the test ends; a store already closed, or one whose close fails after a failed test, is left be. */
export function track<S extends SessionStore | KeyValueStore | JournalEventStore>(t: ExecutionContext, store: S): S {
  t.teardown(async () => {
    try {
      await store.close();
    } catch {
      // already reported by the test
    }
  });
  return store;
}

/**
 * Before a read that must see what another process or host acknowledged: a
 * backend whose reads catch up by themselves is left to show it (the read
 * alone must see it); on one whose reads do not, `await store.catchUp()`.
 */
export async function beforePeerRead(backend: Backend, ...stores: Array<{ catchUp(): Promise<void> }>): Promise<void> {
  if (backend.readsCatchUp) return;
  for (const store of stores) await store.catchUp();
}

/** A session store on `clock`, fsync off, its warnings collected (the directory tests' `open`). */
export async function openSessions(t: ExecutionContext, backend: Backend, at: Location, clock: FakeClock, extra: Opts<SessionStoreOptions> = {}) {
  const { warnings, onWarning } = collectWarnings();
  const store = track(t, await backend.openSessions(at, { fsync: false, clock: clock.read, onWarning, ...extra }));
  return { store, warnings };
}

export function codeOf(err: unknown): string | undefined {
  return err instanceof SessionJournalError ? err.code : `not a SessionJournalError: ${String(err)}`;
}

/** The records of `type` among the store's journal lines. */
export async function ofType(backend: Backend, at: Location, type: string): Promise<NonNullable<StoredLine['record']>[]> {
  return (await backend.lines(at)).flatMap((l) => (l.record && l.record.t === type ? [l.record] : []));
}

/** The types of the store's journal records, in order. */
export async function typesOf(backend: Backend, at: Location): Promise<string[]> {
  return (await backend.lines(at)).flatMap((l) => (l.record ? [l.record.t] : []));
}

export const turn = (prompt: string, at = TEST_T0) => ({ prompt, response: `re: ${prompt}`, timestamp: new Date(at) });

/** `[backend] title`: the suites' test names. */
export const named = (backend: Backend, title: string) => `[${backend.name}] ${title}`;
