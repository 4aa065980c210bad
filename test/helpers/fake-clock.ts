/**
 * A controllable clock for tests, shared by the store (`clock` option) and by
 * code that reads the global Date (codex-mcp-server's InMemorySessionStorage
 * calls `new Date()` and `Date.now()`).
 */
export class FakeClock {
  constructor(public now: number) {}

  /** For SessionStore's `clock` option. */
  readonly read = (): number => this.now;

  advance(ms: number): number {
    if (!(ms >= 0)) throw new Error(`clock must not go backwards (advance ${ms})`);
    this.now += ms;
    return this.now;
  }
}

const RealDate = globalThis.Date;

/**
 * Replaces the global Date with a subclass whose no-argument constructor and
 * static now() read `clock`. Dates made with arguments behave as before, and
 * `instanceof` accepts real and fake dates alike. Returns the restore function;
 * call it in a finally or t.teardown. Nesting is refused.
 */
export function installFakeDate(clock: FakeClock): () => void {
  if (globalThis.Date !== RealDate) throw new Error('a fake Date is already installed');
  class FakeDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(clock.now);
      else super(...(args as [string | number | Date]));
    }

    static override now(): number {
      return clock.now;
    }

    static override [Symbol.hasInstance](value: unknown): boolean {
      return value instanceof RealDate;
    }
  }
  globalThis.Date = FakeDate as DateConstructor;
  return () => {
    globalThis.Date = RealDate;
  };
}

/** Runs `fn` with the fake Date installed, restoring the real one afterwards. */
export function withFakeDate<T>(clock: FakeClock, fn: () => T): T {
  const restore = installFakeDate(clock);
  try {
    return fn();
  } finally {
    restore();
  }
}
