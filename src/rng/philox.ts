import { toUint64 } from './seed.js';
import type { Rng } from './types.js';

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const ROUNDS = 10;

/** 2^-32, exactly what A1111's float32(2.3283064e-10) is. */
const U_SCALE = 2 ** -32;
/** A1111's float32(2.3283064e-10 * 6.2831855): 2pi/2^32 as a float32 (so not quite 2pi/2^32). */
const V_SCALE = Math.fround(2.3283064e-10 * 6.2831855);

/** High 32 bits of the 64-bit product of two unsigned 32-bit integers. */
function mulHi(a: number, b: number): number {
  const aLo = a & 0xffff;
  const aHi = a >>> 16;
  const bLo = b & 0xffff;
  const bHi = b >>> 16;
  const hiLo = aHi * bLo;
  const cross = ((aLo * bLo) >>> 16) + (hiLo & 0xffff) + aLo * bHi;
  return (aHi * bHi + (hiLo >>> 16) + Math.floor(cross / 65536)) >>> 0;
}

/**
 * AUTOMATIC1111's "NV" noise source (modules/rng_philox.py), which imitates torch.randn on CUDA:
 * value i of the c-th call (c = 0, 1, ...) is Philox4x32-10 with key (seed low 32 bits, seed high
 * 32 bits) at counter (c, 0, i, 0); the first two output words feed one Box-Muller step
 * (radius from word 0, angle from word 1, sine only), evaluated in double and rounded to float32
 * once at the end, as numpy does it there.
 */
export class PhiloxRng implements Rng {
  private readonly key0: number;
  private readonly key1: number;
  private offset = 0;

  constructor(seed: number | bigint) {
    const s = toUint64(seed);
    this.key0 = Number(s & 0xffffffffn);
    this.key1 = Number(s >> 32n);
  }

  randn(n: number): Float32Array {
    if (n > 2 ** 32) throw new RangeError('philox noise is limited to 2^32 values per call');
    const out = new Float32Array(n);
    const offset = this.offset++ >>> 0;
    for (let i = 0; i < n; i++) {
      let c0 = offset;
      let c1 = 0;
      let c2 = i >>> 0;
      let c3 = 0;
      let k0 = this.key0;
      let k1 = this.key1;
      for (let round = 0; round < ROUNDS; round++) {
        if (round > 0) {
          k0 = (k0 + W0) >>> 0;
          k1 = (k1 + W1) >>> 0;
        }
        const hi0 = mulHi(c0, M0);
        const lo0 = Math.imul(c0, M0) >>> 0;
        const hi1 = mulHi(c2, M1);
        const lo1 = Math.imul(c2, M1) >>> 0;
        c0 = (hi1 ^ c1 ^ k0) >>> 0;
        c1 = lo1;
        c2 = (hi0 ^ c3 ^ k1) >>> 0;
        c3 = lo0;
      }
      const u = c0 * U_SCALE + U_SCALE / 2;
      const v = c1 * V_SCALE + V_SCALE / 2;
      out[i] = Math.sqrt(-2 * Math.log(u)) * Math.sin(v);
    }
    return out;
  }
}
