/**
 * The Node flags a compaction process runs with: a small V8 young
 * generation. Folding a journal makes garbage fast, and V8's default
 * semi-spaces let it grow the process by tens of MB before collecting. The
 * flag cannot be set at run time (v8.setFlagsFromString after start-up
 * leaves the new space as it is), so it is given when the process starts:
 * by the store's automatic compactor (auto-compact.ts) when it starts the
 * child, and by `session-journal compact` typed by hand, which starts itself
 * once more with it (cli/main.ts).
 */
export const COMPACTION_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];

/** True when this process was started with the compaction's flags (or its own choice of the same V8 option). */
export function hasCompactionFlags(execArgv: readonly string[]): boolean {
  return COMPACTION_NODE_FLAGS.every((flag) => {
    const option = flag.split('=')[0]!;
    return execArgv.some((a) => a === flag || a.startsWith(`${option}=`) || a === option);
  });
}
