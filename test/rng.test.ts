import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRng, randomSeed, type Rng } from '../src/rng/index.js';
import { toUint64 } from '../src/rng/seed.js';

// Fixtures: tools/make_rng_refs.py (real torch 2.5.1 on an AVX-512 x86-64 CPU, and a numpy
// implementation of A1111's Philox source checked bit for bit against A1111's own module).

interface FixtureCall {
  n: number;
  /** Every value's float32 bit pattern, 8 hex digits each. */
  bits?: string;
  /** For large calls: sha256 of the little-endian float32 bytes, and the first/last 8 values. */
  sha256?: string;
  head?: string;
  tail?: string;
}
interface FixtureCase {
  seed: string;
  calls: FixtureCall[];
}
interface Fixture {
  source: string;
  cases: FixtureCase[];
}
interface PhiloxFixture extends Fixture {
  docstring_seed0_3x4: number[];
  docstring_tolerance: number;
}

function load<T extends Fixture>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../../test/fixtures/rng/${name}`, import.meta.url), 'utf8')) as T;
}

function hexBits(hex: string): Uint32Array {
  const out = new Uint32Array(hex.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 8, i * 8 + 8), 16);
  return out;
}

/** Seeds that fit go in as numbers, the rest as bigints, so both input types are exercised. */
function seedOf(text: string): number | bigint {
  const big = BigInt(text);
  return Number.isSafeInteger(Number(big)) && BigInt(Number(big)) === big ? Number(big) : big;
}

/** Distance in float32 steps (bit patterns mapped onto a monotonic integer line). */
function ulps(a: number, b: number): number {
  const ordered = (u: number) => (u >>> 31 ? -(u & 0x7fffffff) : u);
  return Math.abs(ordered(a) - ordered(b));
}

interface Comparison {
  values: number;
  mismatches: number;
  maxUlp: number;
  hashMismatches: number;
}

function compare(fixture: Fixture, make: (seed: number | bigint) => Rng): Comparison {
  const result: Comparison = { values: 0, mismatches: 0, maxUlp: 0, hashMismatches: 0 };
  const check = (got: Uint32Array, want: Uint32Array) => {
    for (let i = 0; i < want.length; i++) {
      result.values++;
      if (got[i] !== want[i]) {
        result.mismatches++;
        result.maxUlp = Math.max(result.maxUlp, ulps(got[i]!, want[i]!));
      }
    }
  };
  for (const c of fixture.cases) {
    const rng = make(seedOf(c.seed));
    for (const call of c.calls) {
      const values = rng.randn(call.n);
      assert.is(values.length, call.n);
      const bits = new Uint32Array(values.buffer);
      if (call.bits !== undefined) {
        check(bits, hexBits(call.bits));
      } else {
        check(bits.subarray(0, 8), hexBits(call.head!));
        check(bits.subarray(call.n - 8), hexBits(call.tail!));
        const digest = createHash('sha256').update(new Uint8Array(values.buffer)).digest('hex');
        if (digest !== call.sha256) result.hashMismatches++;
      }
    }
  }
  return result;
}

test('cpu (torch AVX2 kernel): bit-exact for every seed, size and call sequence', () => {
  const fixture = load('torch_cpu_avx2.json');
  const r = compare(fixture, (seed) => createRng('cpu', seed));
  console.log(`  cpu/avx2 vs ${fixture.source}:`, r);
  assert.ok(r.values > 5000);
  assert.equal(r, { values: r.values, mismatches: 0, maxUlp: 0, hashMismatches: 0 });
});

test('cpu with the default (scalar) kernel: within one glibc rounding of torch', () => {
  const fixture = load('torch_cpu_default.json');
  const r = compare(fixture, (seed) => createRng('cpu', seed, { cpuKernel: 'default' }));
  console.log(`  cpu/default vs ${fixture.source}:`, r);
  // Values below 16 per call are exact; the rest use glibc's logf/sincosf, which round about 1%
  // of their results the other way from the correctly rounded values we compute, and one such
  // step moves a normal by at most a few ulps (measured over 2^22 values: 1.5% differ, max 3).
  assert.is(r.hashMismatches, 0);
  assert.ok(r.mismatches / r.values < 0.03, `${r.mismatches} of ${r.values} differ`);
  assert.ok(r.maxUlp <= 4, `max ${r.maxUlp} ulp`);
});

test('cpu: calls under 16 values are exact with the default kernel too (same double path)', () => {
  const fixture = load('torch_cpu_default.json');
  const small: Fixture = {
    source: fixture.source,
    cases: fixture.cases.filter((c) => c.calls.every((call) => call.n < 16)),
  };
  const r = compare(small, (seed) => createRng('cpu', seed, { cpuKernel: 'default' }));
  assert.ok(r.values > 20);
  assert.is(r.mismatches, 0);
});

test('philox (A1111 NV): bit-exact for every seed, size and call sequence', () => {
  const fixture = load<PhiloxFixture>('philox.json');
  const r = compare(fixture, (seed) => createRng('philox', seed));
  console.log(`  philox vs ${fixture.source}:`, r);
  assert.ok(r.values > 5000);
  assert.equal(r, { values: r.values, mismatches: 0, maxUlp: 0, hashMismatches: 0 });
});

test("philox: seed 0 agrees with the values printed in A1111's rng_philox.py docstring", () => {
  const fixture = load<PhiloxFixture>('philox.json');
  const got = createRng('philox', 0).randn(12);
  // The docstring shows torch's CUDA output, which A1111's float64 evaluation matches to ~3e-7.
  fixture.docstring_seed0_3x4.forEach((want, i) => {
    assert.ok(Math.abs(got[i]! - want) < fixture.docstring_tolerance, `value ${i}: ${got[i]} vs ${want}`);
  });
});

test('seeds: number and bigint agree; negatives wrap as in torch; out-of-range seeds are refused', () => {
  for (const kind of ['cpu', 'philox'] as const) {
    assert.equal(createRng(kind, 4294967295).randn(20), createRng(kind, 4294967295n).randn(20));
  }
  assert.is(toUint64(-1), 2n ** 64n - 1n);
  assert.is(toUint64(2n ** 64n - 1n), 2n ** 64n - 1n);
  assert.throws(() => toUint64(1.5), /safe integer/);
  assert.throws(() => toUint64(2 ** 53 + 2), /safe integer/);
  assert.throws(() => toUint64(2n ** 64n), /outside/);
  assert.throws(() => toUint64(-(2n ** 63n) - 1n), /outside/);
});

test("randomSeed: an integer in A1111's range [0, 2^32 - 3]", () => {
  for (let i = 0; i < 1000; i++) {
    const s = randomSeed();
    assert.ok(Number.isInteger(s) && s >= 0 && s <= 2 ** 32 - 3, `${s}`);
  }
});

test('speed (reported, not asserted): one 4x128x128 draw', () => {
  for (const kind of ['cpu', 'philox'] as const) {
    const rng = createRng(kind, 1);
    const start = performance.now();
    rng.randn(4 * 128 * 128);
    console.log(`  ${kind}: 4x128x128 values in ${(performance.now() - start).toFixed(1)} ms`);
  }
});

test.run();
