import { fmaf } from '../fmaf.js';

/*
 * Scalar, bit-exact emulation of the float32 log and sincos that torch's AVX2 normal kernel calls
 * (ATen/native/cpu/avx_mathfun.h: Cephes polynomials, 8 lanes at a time). The operation order and
 * the fused multiply-adds are the ones GCC emitted in the Linux x86-64 torch 2.5.1 wheel (read
 * from its libtorch_cpu.so): GCC contracts the header's separate _mm256_mul_ps/_mm256_add_ps into
 * vfmadd wherever a product feeds an addition. Every other step rounds to float32 (Math.fround).
 */

const F = Math.fround;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

const SQRTHF = F(0.707106781186547524);
const LOG_P = [
  7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
  2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
].map(F);
const LOG_Q1 = F(-2.1219444e-4);
const LOG_Q2 = F(0.693359375);

/** log256_ps for one lane, for x a positive normal float32 (the kernel only passes (0, 1]). */
export function logAvx2(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  let e = (bits >>> 23) - 0x7f + 1;
  u32[0] = (bits & ~0x7f800000) | 0x3f000000;
  let m = f32[0]!; // mantissa scaled into [0.5, 1)
  const below = m < SQRTHF;
  if (below) e -= 1;
  m = F((below ? m : 0) + F(m - 1));

  let y = LOG_P[0]!;
  for (let k = 1; k < LOG_P.length; k++) y = fmaf(y, m, LOG_P[k]!);
  const z = F(m * m);
  y = F(m * y);
  y = fmaf(y, z, F(e * LOG_Q1));
  y = F(y - z * 0.5); // vfnmadd(z, 0.5, y): z * 0.5 is exact, so one rounding either way
  m = F(m + y);
  return fmaf(e, LOG_Q2, m);
}

const FOPI = F(1.27323954473516);
const MINUS_DP1 = F(-0.78515625);
const MINUS_DP2 = F(-2.4187564849853515625e-4);
const MINUS_DP3 = F(-3.77489497744594108e-8);
const COS_P = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(F);
const SIN_P = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(F);

/** Writes to out the [sin, cos] pair that sincos256_ps gives for one lane, for |x| well below 2^31. */
export function sincosAvx2(x: number, out: Float32Array): void {
  const negative = x < 0 || Object.is(x, -0);
  let r = Math.abs(x);
  // The octant, rounded up to even (cvttps2dq then (j + 1) & ~1); small, so exact as a float.
  const j = (Math.trunc(F(r * FOPI)) + 1) & ~1;
  const flipSin = ((j & 4) !== 0) !== negative;
  const flipCos = ((j - 2) & 4) === 0;
  const sinPolyForSin = (j & 2) === 0;

  // Cody-Waite reduction x - j*pi/4 with pi/4 split in three parts, each step fused.
  r = fmaf(j, MINUS_DP1, r);
  r = fmaf(j, MINUS_DP2, r);
  r = fmaf(j, MINUS_DP3, r);

  const z = F(r * r);
  let c = fmaf(fmaf(COS_P[0]!, z, COS_P[1]!), z, COS_P[2]!);
  c = F(z * c);
  c = fmaf(c, z, -(z * 0.5));
  c = F(c + 1);
  let s = fmaf(fmaf(SIN_P[0]!, z, SIN_P[1]!), z, SIN_P[2]!);
  s = F(z * s);
  s = fmaf(r, s, r);

  const sinV = sinPolyForSin ? s : c;
  const cosV = sinPolyForSin ? c : s;
  out[0] = flipSin ? -sinV : sinV;
  out[1] = flipCos ? -cosV : cosV;
}
