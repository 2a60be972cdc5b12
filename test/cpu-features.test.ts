import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { int8Support } from '../src/onnx/cpu-features.js';

/** What `diffuse doctor` says about --quantize int8, from /proc/cpuinfo's flags line. */
const cpuinfo = (flags: string) => `processor\t: 0\nmodel name\t: test\nflags\t\t: fpu sse2 ${flags}\n\nprocessor\t: 1\n`;

test('VNNI (AVX-512 or AVX) is full speed; AVX2 alone may saturate; no AVX2 is slow; unknown elsewhere', () => {
  assert.is(int8Support(cpuinfo('avx2 avx512f avx512_vnni'), 'x64').vnni, true);
  assert.is(int8Support(cpuinfo('avx2 avx_vnni'), 'x64').vnni, true);
  const avx2 = int8Support(cpuinfo('avx2 fma'), 'x64');
  assert.is(avx2.vnni, false);
  assert.match(avx2.note, /saturate/);
  assert.match(int8Support(cpuinfo('sse4_2'), 'x64').note, /no AVX2/);
  assert.is(int8Support(null, 'x64').vnni, undefined);
  assert.is(int8Support(cpuinfo('avx512_vnni'), 'arm64').vnni, undefined);
});

test.run();
