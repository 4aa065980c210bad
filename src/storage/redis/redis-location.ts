/** Where a store on Redis is (docs/FORMAT.md, "The Redis backend"). */
export interface RedisLocation {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. */
  url: string;
  /** The store's key prefix: 1 to 128 characters of [A-Za-z0-9._:-]. Give each store a prefix of its own. */
  prefix: string;
  /** Fail the open with REDIS_UNAVAILABLE after this long without a connection (default 5 s). */
  connectTimeoutMs?: number;
  /**
   * A command without a reply after this long (default 10 s) fails with
   * REDIS_UNAVAILABLE and its connection is replaced: a stopped, overloaded
   * or unreachable server. A commit that timed out is in doubt and read back
   * (docs/FORMAT.md).
   */
  commandTimeoutMs?: number;
  /**
   * After each commit, WAIT until this many replicas have it (default 0:
   * none); fewer within timeoutMs rejects flush() with REDIS_NOT_REPLICATED.
   */
  wait?: { replicas: number; timeoutMs: number };
}
