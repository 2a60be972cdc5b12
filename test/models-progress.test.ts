import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TransferMeter, type PullEvent } from '../src/models/progress.js';

test('one combined figure over all files, a rate over the recent window, throttled events', () => {
  let now = 0;
  const events: PullEvent[] = [];
  const meter = new TransferMeter(10_000, (e) => events.push(e), () => now);
  meter.setFileBytes('a', 2_000); // resumed .part: counts as done, not as transferred
  meter.start('b');
  now = 1_000;
  meter.add('b', 1_000);
  now = 1_050;
  meter.add('b', 500); // within 100 ms of the last event: not emitted
  now = 2_000;
  meter.add('a', 1_000);
  assert.is(events.length, 3);
  const last = events.at(-1)!;
  assert.ok(last.type === 'progress');
  if (last.type !== 'progress') return;
  assert.is(last.doneBytes, 2_000 + 1_000 + 500 + 1_000);
  assert.is(last.totalBytes, 10_000);
  // 1500 bytes arrived between the first sample (t = 1 s) and the last (t = 2 s).
  assert.is(last.bytesPerSecond, 1_500);
  assert.equal(last.activeFiles, ['b']);
  assert.is(meter.downloadedBytes, 2_500);
  // A file that starts over takes its bytes back out of the total done.
  meter.setFileBytes('b', 0);
  meter.emit(true);
  const reset = events.at(-1)!;
  assert.ok(reset.type === 'progress' && reset.doneBytes === 3_000);
});

test.run();
