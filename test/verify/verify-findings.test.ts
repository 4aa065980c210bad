/**
 * The order of verify's problems: history order first, then, at one point
 * of history, by file and line, whatever order the phases found them in.
 */
import test from 'ava';
import { Findings } from '../../src/verify/verify-findings.js';

const problem = (file: string | null, line: number | null, code = 'X') => ({ code, file, line, offset: null, message: `${file}:${line}` });

test('problems sort by point in history, then by file, then by line; store-wide ones come last in the order found', (t) => {
  const findings = new Findings('/store');
  findings.add(problem('snapshot-00000003.ndjson', 5));
  findings.add(problem('journal-00000002.ndjson', 9), 7);
  findings.add(problem('snapshot-00000004.ndjson', 2));
  findings.addOverall(problem(null, null, 'EXPECTED_HEAD'));
  findings.add(problem('snapshot-00000003.ndjson', 1));
  findings.add(problem('journal-00000001.ndjson', 4), 3);
  findings.add(problem(null, null));
  t.deepEqual(
    findings.problems().map((p) => p.message),
    ['journal-00000001.ndjson:4', 'journal-00000002.ndjson:9', 'null:null', 'snapshot-00000003.ndjson:1', 'snapshot-00000003.ndjson:5', 'snapshot-00000004.ndjson:2', 'null:null'],
  );
  t.is(findings.problems().at(-1)!.code, 'EXPECTED_HEAD');
});

test('noneUpTo: only problems at or before a record count', (t) => {
  const findings = new Findings('/store');
  findings.add(problem('journal-00000001.ndjson', 4), 3);
  findings.add(problem('snapshot-00000003.ndjson', 1));
  t.true(findings.noneUpTo(2));
  t.false(findings.noneUpTo(3));
});
