import { logAvx2, sincosAvx2 } from './avx2-mathfun.js';
import { Mt19937 } from './mt19937.js';
import { toUint64 } from './seed.js';
import type { Rng } from './types.js';

/**
 * Which build of torch's CPU normal kernel to reproduce for tensors of 16 or more float32 values:
 * - 'avx2': the vectorised kernel every x86-64 CPU with AVX2 runs (AVX-512 CPUs too: torch
 *   registers no AVX-512 build of this kernel and falls back to AVX2). Bit-exact.
 * - 'default': the scalar kernel of CPUs without AVX2 (ATEN_CPU_CAPABILITY=default, ARM): it
 *   calls the C library's logf and sincosf, which we approximate by correctly rounded values.
 *   glibc's are not correctly rounded (0.7% of logf and 1.3% of sincosf results differ), so
 *   against glibc 2.36 about 1.5% of the normals differ, by at most 3 float32 ulps.
 */
export type TorchCpuKernel = 'avx2' | 'default';

export interface TorchCpuRngState {
  mt: { words: number[]; next: number };
  cachedNormal?: number;
}

const F = Math.fround;
/** c10::pi<double> * 2: the scalar kernel computes its angle in double. */
const TWO_PI = 2 * Math.PI;
/** _mm256_set1_ps(2.0f * c10::pi<double>): the AVX2 kernel's angle factor, a float32. */
const TWO_PI_F32 = F(2 * Math.PI);
const TWO_POW_M24 = 2 ** -24;
const TWO_POW_M53 = 2 ** -53;
const TWO_POW_32 = 2 ** 32;

/**
 * torch.Generator('cpu').manual_seed(seed) followed by torch.randn(..., generator=g,
 * dtype=torch.float32) calls, value for value and bit for bit. Each call continues the stream.
 *
 * torch takes one of two paths per call (ATen/native/cpu/DistributionTemplates.h):
 * - 16 or more values (a contiguous float32 tensor): normal_fill draws one float uniform per
 *   value from 24 bits of one 32-bit output, then turns each block of 16 into normals by
 *   Box-Muller in float32, pairing u[j] (radius) with u[j + 8] (angle). When the size is not a
 *   multiple of 16, the last 16 values are drawn afresh and overwrite the tail.
 * - fewer than 16: each value comes from at::normal_distribution<double>, which draws two 53-bit
 *   uniforms (two 32-bit outputs each), returns r*cos and caches r*sin for the next such value.
 *   The cache lives in the generator, so it survives normal_fill calls in between.
 */
export class TorchCpuRng implements Rng {
  private readonly mt: Mt19937;
  private cachedNormal: number | undefined;
  private readonly sincos = new Float32Array(2);

  constructor(
    seed: number | bigint,
    private readonly kernel: TorchCpuKernel = 'avx2',
  ) {
    // mt19937 is seeded with the low 32 bits of the 64-bit seed only.
    this.mt = new Mt19937(Number(toUint64(seed) & 0xffffffffn));
  }

  randn(n: number): Float32Array {
    const out = new Float32Array(n);
    if (n >= 16) this.normalFill(out);
    else for (let i = 0; i < n; i++) out[i] = F(this.normalDouble());
    return out;
  }

  /** torch.randint(low, high, (n,), generator=g) for ranges under 2^32: (32-bit output mod range) + low. */
  randint(low: number, high: number, n: number): number[] {
    const range = high - low;
    if (!(Number.isInteger(low) && Number.isInteger(high) && range >= 1 && range < TWO_POW_32)) throw new RangeError(`randint range [${low}, ${high}) is not supported`);
    return Array.from({ length: n }, () => (this.mt.nextU32() % range) + low);
  }

  /** torch.rand(n, generator=g) in float32: 24 bits of one 32-bit output per value. */
  rand(n: number): Float32Array {
    return Float32Array.from({ length: n }, () => this.uniformFloat());
  }

  /** torch.randperm(n, generator=g) for small n (torch's "old behaviour" below 2^32 / 20): Fisher-Yates from the front. */
  randperm(n: number): number[] {
    if (!(Number.isInteger(n) && n >= 0 && n < TWO_POW_32 / 20)) throw new RangeError(`randperm of ${n} is not supported`);
    const r = Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < n - 1; i++) {
      const z = this.mt.nextU32() % (n - i);
      [r[i], r[i + z]] = [r[i + z]!, r[i]!];
    }
    return r;
  }

  /** The generator's state (torch's get_state holds the same: the twister and the cached double normal). */
  snapshot(): TorchCpuRngState {
    return { mt: this.mt.snapshot(), ...(this.cachedNormal !== undefined ? { cachedNormal: this.cachedNormal } : {}) };
  }

  restore(state: TorchCpuRngState): void {
    this.mt.restore(state.mt);
    this.cachedNormal = state.cachedNormal;
  }

  private uniformFloat(): number {
    return (this.mt.nextU32() & 0xffffff) * TWO_POW_M24;
  }

  private uniformDouble(): number {
    const hi = this.mt.nextU32();
    const lo = this.mt.nextU32();
    return ((hi & 0x1fffff) * TWO_POW_32 + lo) * TWO_POW_M53;
  }

  private normalDouble(): number {
    if (this.cachedNormal !== undefined) {
      const v = this.cachedNormal;
      this.cachedNormal = undefined;
      return v;
    }
    const u1 = this.uniformDouble();
    const u2 = this.uniformDouble();
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = TWO_PI * u1;
    this.cachedNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  private normalFill(out: Float32Array): void {
    const n = out.length;
    for (let i = 0; i < n; i++) out[i] = this.uniformFloat();
    for (let i = 0; i + 16 <= n; i += 16) this.boxMuller16(out, i);
    if (n % 16 !== 0) {
      for (let i = n - 16; i < n; i++) out[i] = this.uniformFloat();
      this.boxMuller16(out, n - 16);
    }
  }

  /** Turns the 16 uniforms at data[at..at+15] into normals in place, as normal_fill_16 does. */
  private boxMuller16(data: Float32Array, at: number): void {
    for (let j = at; j < at + 8; j++) {
      const u1 = F(1 - data[j]!); // [0, 1) -> (0, 1], exact
      const u2 = data[j + 8]!;
      if (this.kernel === 'avx2') {
        const radius = F(Math.sqrt(F(-2 * logAvx2(u1))));
        sincosAvx2(F(TWO_PI_F32 * u2), this.sincos);
        // fmadd(n, std = 1, mean = 0) is exact except that it turns -0 into +0.
        data[j] = F(radius * this.sincos[1]!) + 0;
        data[j + 8] = F(radius * this.sincos[0]!) + 0;
      } else {
        const radius = F(Math.sqrt(F(-2 * F(Math.log(u1)))));
        const theta = F(TWO_PI * u2);
        data[j] = F(radius * F(Math.cos(theta))) + 0;
        data[j + 8] = F(radius * F(Math.sin(theta))) + 0;
      }
    }
  }
}
