/**
 * Loaded with `node --import` into a child the test measures: at exit it
 * appends "<pid> <VmHWM kB>" (the peak resident set, as the kernel counts
 * it) to the file named by SJ_PEAK_RSS_FILE. A command that starts itself
 * again (compact) appends one line per process.
 */
import fs from 'node:fs';

const out = process.env.SJ_PEAK_RSS_FILE;
if (out) {
  process.on('exit', () => {
    const kb = /VmHWM:\s+(\d+)\s*kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1];
    fs.appendFileSync(out, `${process.pid} ${kb ?? 'unknown'}\n`);
  });
}
