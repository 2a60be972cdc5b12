import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { killReason } from '../bench/measure.js';
import { choosePeers, PEERS } from '../bench/peers.js';
import { combineRuns, markdownTable, type Summary } from '../bench/report.js';

/**
 * The bench's bookkeeping (no timing is measured here): repeated runs combined into one row, the
 * reason a killed tool is reported with, and --only's order.
 */
const run = (tool: string, stepMedianS: number | undefined, extra: Partial<Summary> = {}): Summary => ({
  tool,
  size: '512x512',
  load: '1.00 → 1.20',
  ...(stepMedianS === undefined ? { note: 'skipped: exit 1: boom' } : { stepMedianS, stepBestS: stepMedianS - 0.5, peakRssMb: 1000 + stepMedianS, runtime: 'onnxruntime-node 1.30.0' }),
  ...extra,
});

test('repeated runs: medians of the runs, best of the best steps, the spread of the run medians, failures kept', () => {
  const rows = combineRuns([run('diffuse', 10), run('optimum', 12), run('diffuse', 14), run('optimum', undefined), run('diffuse', 11)]);
  assert.is(rows.length, 2);
  const d = rows.find((r) => r.tool === 'diffuse')!;
  assert.is(d.stepMedianS, 11);
  assert.is(d.stepBestS, 9.5);
  assert.equal(d.stepSpread, [10, 14]);
  assert.is(d.runs, 3);
  assert.is(d.peakRssMb, 1011);
  assert.is(d.runtime, 'onnxruntime-node 1.30.0');
  assert.is(d.note, '3 of 3 runs finished');
  const o = rows.find((r) => r.tool === 'optimum')!;
  assert.is(o.stepMedianS, 12);
  assert.equal(o.stepSpread, [12, 12]);
  assert.match(o.note!, /^1 of 2 runs finished; skipped: exit 1: boom$/);
  const table = markdownTable(rows);
  assert.match(table, /\| diffuse \| 512x512 \| 11\.00 \| 10\.00–14\.00 \(3\) \|/);
  assert.match(table, /onnxruntime-node 1\.30\.0/);
});

test('a single run is its own row, without a spread', () => {
  const [only] = combineRuns([run('diffuse', 10)]);
  assert.is(only!.stepSpread, undefined);
  assert.match(markdownTable([only!]), /\| diffuse \| 512x512 \| 10\.00 \| — \|/);
});

test("a killed tool says who stopped it: the bench's timeout, or a SIGKILL from elsewhere (the OOM killer)", () => {
  assert.is(killReason('SIGKILL', true, 1800), 'stopped by the bench after 1800 s (--timeout)');
  assert.match(killReason('SIGKILL', false, 1800), /not sent by the bench \(out of memory\? see dmesg\)/);
  assert.is(killReason('SIGSEGV', false, 1800), 'killed by SIGSEGV');
});

test('--only runs the tools in the order given and names a tool it does not know', () => {
  assert.equal(choosePeers('optimum (same ORT),diffuse,optimum (ORT)').map((p) => p.name), ['optimum (same ORT)', 'diffuse', 'optimum (ORT)']);
  assert.throws(() => choosePeers('diffuse,optimum'), /no tool named 'optimum'/);
  assert.ok(PEERS.some((p) => p.name === 'optimum (same ORT)'));
});

test.run();
