import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { int8Support } from '../src/onnx/cpu-features.js';
import { cpuinfoWith } from './helpers/cpuinfo.js';

// What `diffuse doctor` says about --quantize int8, from /proc/cpuinfo's flags line.

test('VNNI (AVX-512 or AVX) gets int8 weights; AVX2 alone may saturate; no AVX2 is slow; unknown elsewhere', () => {
  assert.is(int8Support(cpuinfoWith('avx2 avx512f avx512_vnni'), 'x64').vnni, true);
  assert.is(int8Support(cpuinfoWith('avx2 avx_vnni'), 'x64').vnni, true);
  const avx2 = int8Support(cpuinfoWith('avx2 fma'), 'x64');
  assert.is(avx2.vnni, false);
  assert.match(avx2.note, /saturate/);
  // The gain each class can expect, as measured (README, Speed): only VNNI about halves a step.
  assert.match(int8Support(cpuinfoWith('avx2 avx512f avx512_vnni'), 'x64').note, /0\.4-0\.5x fp32's time/);
  const amx = int8Support(cpuinfoWith('avx2 avx512f avx512_vnni amx_tile amx_int8'), 'x64');
  assert.equal([amx.vnni, amx.amx, amx.format], [true, true, 'u8s8']);
  // AMX is what makes the quantizer store convolutions for ONNX Runtime's GEMM path; VNNI alone does not.
  assert.not.ok(int8Support(cpuinfoWith('avx2 avx512f avx512_vnni'), 'x64').amx);
  assert.match(amx.note, /AMX present: .*0\.41x fp32's time/);
  assert.match(avx2.note, /0\.80-0\.84x fp32's time/);
  const avx512 = int8Support(cpuinfoWith('avx2 fma avx512f avx512bw'), 'x64');
  assert.equal([avx512.vnni, avx512.format], [false, 'u8u8']);
  assert.match(avx512.note, /AVX-512 without VNNI: .*--quantize int8 quantizes the UNet's MatMuls only here .*0\.96x fp32's time/);
  assert.match(int8Support(cpuinfoWith('sse4_2'), 'x64').note, /no AVX2/);
  assert.is(int8Support(null, 'x64').vnni, undefined);
  assert.is(int8Support(cpuinfoWith('avx512_vnni'), 'arm64').vnni, undefined);
});

test('the weight format: u8s8 only where its products cannot saturate (VNNI, arm64), u8u8 on every other x86', () => {
  assert.is(int8Support(cpuinfoWith('avx2 avx512f avx512_vnni'), 'x64').format, 'u8s8');
  assert.is(int8Support(cpuinfoWith('avx2 avx_vnni'), 'x64').format, 'u8s8');
  // AVX-512 without VNNI (Skylake-SP) still adds u8·s8 pairs in 16 bits.
  assert.is(int8Support(cpuinfoWith('avx2 avx512f avx512bw'), 'x64').format, 'u8u8');
  assert.is(int8Support(cpuinfoWith('avx2 fma'), 'x64').format, 'u8u8');
  assert.is(int8Support(cpuinfoWith('sse4_2'), 'x64').format, 'u8u8');
  assert.is(int8Support(null, 'x64').format, 'u8u8');
  assert.is(int8Support(null, 'arm64').format, 'u8s8');
  for (const flags of ['avx2 fma', 'avx2 avx512_vnni']) assert.match(int8Support(cpuinfoWith(flags), 'x64').note, new RegExp(int8Support(cpuinfoWith(flags), 'x64').format));
});

test.run();
