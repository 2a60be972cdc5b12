// numpy 1.26's float32 exp as its AVX2 / AVX-512F loops compute it (umath/loops_exponent_log.dispatch.c.src, the
// path every float32 array takes on x86-64 machines with those instructions, strided views included): k =
// rint(x log2(e)), x reduced by Cody-Waite's two-part ln 2 (fused multiply-adds), exp of the rest as a degree-5 over
// degree-2 rational function (Horner with fused multiply-adds), scaled by 2^k; x >= 88.72283935546875 gives
// Infinity, x <= -103.97208404541 gives 0. It differs from the correctly rounded exp by up to 2.52 ulp (44% of the
// values YOLOX's size outputs gave in tools/make_dwpose_refs.py); DWPose's box sizes go through it.

import { fmaf } from '../fmaf.js';
import { roundHalfEven } from '../round-half-even.js';

const f = Math.fround;
const LOG2E = f(1.44269504088896341);
const LN2_HIGH = f(-6.93145752e-1);
const LN2_LOW = f(-1.42860677e-6);
const P = [9.999999999980870924916e-1, 7.257664613233124478488e-1, 2.473615434895520810817e-1, 5.114512081637298353406e-2, 6.757896990527504603057e-3, 5.082762527590693718096e-4].map(f);
const Q = [1, -2.742335390411667452936e-1, 2.159509375685829852307e-2].map(f);
const X_MAX = f(88.72283935546875);
const X_MIN = f(-103.97208404541);

/** np.exp of a float32 value, as numpy's SIMD loop returns it. */
export function numpyExpF32(x: number): number {
  if (Number.isNaN(x)) return x;
  if (x >= X_MAX) return Infinity;
  if (x <= X_MIN) return 0;
  const k = roundHalfEven(f(x * LOG2E));
  let r = fmaf(k, LN2_HIGH, x);
  r = fmaf(k, LN2_LOW, r);
  r = fmaf(k, 0, r);
  let num = fmaf(P[5]!, r, P[4]!);
  for (let i = 3; i >= 0; i--) num = fmaf(num, r, P[i]!);
  const den = fmaf(fmaf(Q[2]!, r, Q[1]!), r, Q[0]!);
  return f(f(num / den) * 2 ** k);
}
