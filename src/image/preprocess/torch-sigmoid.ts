// torch.sigmoid on float32 CPU tensors as torch 2.5's vectorised kernel computes it (UnaryOpsKernel.cpp's sigmoid_kernel
// on AVX2/AVX-512: 1 / (1 + exp(0 - x)) with exp from SLEEF's expf u10, each step in float32). SLEEF's exp is not
// correctly rounded: Math.exp rounded to float32 gives another sigmoid for 4% of normal inputs (81,280 of 2M), this port
// for none (2M seeded normals at two scales, tools/make_mlsd_refs.py's check). The scalar tail the kernel leaves to
// std::exp (fewer than 2 vectors) does not arise for M-LSD's maps, whose areas are multiples of 1024.

import { fmaf } from '../../fmaf.js';
import { roundHalfEven } from '../../round-half-even.js';

const f = Math.fround;
const R_LN2 = f(1.442695040888963407359924681001892137426645954152985934135449406931);
const L2U = f(0.693145751953125);
const L2L = f(1.428606765330187045e-6);
const POLY = [0.000198527617612853646278381, 0.00139304355252534151077271, 0.00833336077630519866943359, 0.0416664853692054748535156, 0.166666671633720397949219, 0.5].map(f);

/** SLEEF's xexpf (u10) with FMA, as its AVX2 and AVX-512 builds run it. */
export function sleefExpf(d: number): number {
  if (Number.isNaN(d)) return d;
  if (d < -104) return 0;
  if (d > 100) return Infinity;
  const q = roundHalfEven(f(d * R_LN2));
  let s = fmaf(q, -L2U, d);
  s = fmaf(q, -L2L, s);
  let u = POLY[0]!;
  for (const c of POLY.slice(1)) u = fmaf(u, s, c);
  u = f(1 + fmaf(f(s * s), u, s));
  // vldexp2: two scalings, each rounded.
  const half = q >> 1;
  return f(f(u * 2 ** half) * 2 ** (q - half));
}

export function torchSigmoid(x: number): number {
  return f(1 / f(1 + sleefExpf(f(0 - x))));
}
