// Preloaded (NODE_OPTIONS=--import) into every node process when .ci/run runs
// the suite under libfaketime with the clock SJ_FILE_TIME_SHIFT_MS ahead.
//
// Why: libfaketime shifts what a process reads as the time, but Node reads
// file times with the statx system call, which libfaketime 0.9.10 does not
// intercept. A file written "now" would then carry the real (a year earlier)
// time, and everything that compares a file's mtime with the clock would see
// it as a year old: proper-lockfile calls a lock that was just made stale and
// takes it over (two writers in one commit), the archive prunes what it just
// wrote. A system clock that really is a year ahead moves file times too;
// this makes Node's file times agree with the faked clock, as libfaketime's
// own stat() interception does for C programs: times read get the shift
// added, times written (utimes) get it taken off.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const shiftMs = Number(process.env.SJ_FILE_TIME_SHIFT_MS ?? 0);
if (Number.isSafeInteger(shiftMs) && shiftMs !== 0) {
  const FIELDS = ['atime', 'mtime', 'ctime', 'birthtime'];
  const shiftStats = (stats) => {
    if (stats === null || typeof stats !== 'object' || !('mtimeMs' in stats)) return stats;
    const bigint = typeof stats.mtimeMs === 'bigint';
    for (const f of FIELDS) {
      if (bigint) {
        stats[`${f}Ms`] += BigInt(shiftMs);
        stats[`${f}Ns`] += BigInt(shiftMs) * 1_000_000n;
        stats[f] = new Date(Number(stats[`${f}Ms`]));
      } else {
        stats[`${f}Ms`] += shiftMs;
        stats[f] = new Date(stats[`${f}Ms`]);
      }
    }
    return stats;
  };
  /** A time as utimes takes it (seconds, a numeric string, or a Date), moved back to the kernel's clock. */
  const unshift = (time) => {
    if (time instanceof Date) return new Date(time.getTime() - shiftMs);
    const seconds = typeof time === 'string' ? Number(time) : time;
    return typeof seconds === 'number' && Number.isFinite(seconds) ? seconds - shiftMs / 1000 : time;
  };

  for (const name of ['statSync', 'lstatSync', 'fstatSync']) {
    const original = fs[name];
    fs[name] = function (...args) {
      return shiftStats(original.apply(this, args));
    };
  }
  for (const name of ['stat', 'lstat', 'fstat']) {
    const original = fs[name];
    fs[name] = function (...args) {
      const callback = args.pop();
      if (typeof callback !== 'function') return original.apply(this, [...args, callback]);
      return original.apply(this, [...args, (err, stats) => callback(err, err ? stats : shiftStats(stats))]);
    };
  }
  for (const name of ['stat', 'lstat']) {
    const original = fs.promises[name];
    fs.promises[name] = async function (...args) {
      return shiftStats(await original.apply(this, args));
    };
  }
  for (const name of ['utimesSync', 'futimesSync', 'lutimesSync', 'utimes', 'futimes', 'lutimes']) {
    const original = fs[name];
    fs[name] = function (target, atime, mtime, ...rest) {
      return original.call(this, target, unshift(atime), unshift(mtime), ...rest);
    };
  }
  for (const name of ['utimes', 'lutimes']) {
    const original = fs.promises[name];
    fs.promises[name] = function (target, atime, mtime) {
      return original.call(this, target, unshift(atime), unshift(mtime));
    };
  }
  syncBuiltinESMExports();
}
