import { KV_NAMESPACE } from '../kv/kv-records.js';

/** What the command line tells users about one kind of store (`compact --kind`). */
export interface StoreKind {
  /** The namespace of its records (`session` for `session.*`): the compactor tells kinds apart by it (STORE_KIND_MISMATCH). */
  namespace: string;
  /** What users call a store of this kind, for hints. */
  noun: string;
  /** The option capping its number of keys, if it has one. */
  limitFlag?: 'max-sessions' | 'max-entries';
}

/** The kinds of store `compact --kind` knows, the default first. */
export const STORE_KINDS = {
  sessions: { namespace: 'session', noun: 'a session store', limitFlag: 'max-sessions' },
  events: { namespace: 'event', noun: 'a JournalEventStore' },
  kv: { namespace: KV_NAMESPACE, noun: 'a KeyValueStore', limitFlag: 'max-entries' },
} satisfies Record<string, StoreKind>;

export type StoreKindName = keyof typeof STORE_KINDS;

export const DEFAULT_STORE_KIND: StoreKindName = 'sessions';

export function isStoreKindName(name: string): name is StoreKindName {
  return Object.prototype.hasOwnProperty.call(STORE_KINDS, name);
}

const kinds = Object.entries(STORE_KINDS) as Array<[StoreKindName, StoreKind]>;
const kindFlag = (name: StoreKindName) => `--kind ${name}${name === DEFAULT_STORE_KIND ? ' (the default)' : ''}`;

/** How to compact a store refused with STORE_KIND_MISMATCH, from the namespaces it was found to hold (its `details`). */
export function kindHint(expectedNamespace: unknown, found: Readonly<Record<string, unknown>> | undefined): string {
  const seen = kinds.find(([, kind]) => found !== undefined && Object.prototype.hasOwnProperty.call(found, kind.namespace));
  if (seen) return `${seen[1].noun} is compacted with ${kindFlag(seen[0])}`;
  // Only snapshot entries this kind cannot restore: a store of one of the others.
  const others = kinds.filter(([, kind]) => kind.namespace !== expectedNamespace);
  return `${others.map(([name, kind]) => `${kind.noun} is compacted with ${kindFlag(name)}`).join(', ')}`;
}
