/** A value restored but not made yet (a snapshot entry whose line is still unparsed). */
class Pending<V> {
  constructor(readonly make: () => V | undefined) {}
}

/**
 * A view's values, some of them not made yet (KeyedView.restoreLazily): a
 * process that opens a store of ten thousand sessions to read one parses
 * one. Every read makes what it touches, so no caller ever sees a Pending;
 * a value whose making fails (its maker reports why) reads as absent, as a
 * rejected snapshot entry always has.
 */
export class LazyValues<V> extends Map<string, V> {
  setPending(key: string, make: () => V | undefined): void {
    super.set(key, new Pending(make) as unknown as V);
  }

  /** True when the key holds a value, made or not yet: makes nothing. */
  holds(key: string): boolean {
    return super.has(key);
  }

  override get(key: string): V | undefined {
    const value = super.get(key);
    return value instanceof Pending ? this.make(key, value as Pending<V>) : value;
  }

  override has(key: string): boolean {
    return super.has(key) && this.get(key) !== undefined;
  }

  override values(): MapIterator<V> {
    this.makeAll();
    return super.values();
  }

  override keys(): MapIterator<string> {
    this.makeAll();
    return super.keys();
  }

  override entries(): MapIterator<[string, V]> {
    this.makeAll();
    return super.entries();
  }

  override [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  override forEach(callback: (value: V, key: string, map: Map<string, V>) => void, thisArg?: unknown): void {
    this.makeAll();
    super.forEach(callback, thisArg);
  }

  private make(key: string, pending: Pending<V>): V | undefined {
    const value = pending.make();
    if (value === undefined) super.delete(key);
    else super.set(key, value);
    return value;
  }

  private makeAll(): void {
    // Setting or deleting a key already visited is safe while a Map is iterated.
    for (const [key, value] of super.entries()) if (value instanceof Pending) this.make(key, value as Pending<V>);
  }
}
