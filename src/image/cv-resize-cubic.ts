// cv2.resize(plane, size, interpolation=cv2.INTER_CUBIC) of a float32 plane as OpenCV 4.x's own code computes it
// (imgproc/src/resize.cpp: resizeGeneric_ with HResizeCubic and VResizeCubic; the 8-bit case is ./cv-resize-u8.ts,
// whose kernel this shares): the source coordinate float32((d + 0.5)·scale − 0.5), its floor and fraction, the four
// float32 weights of interpolateCubic, taps beyond the edges reading the edge; the horizontal pass sums the four
// products left to right; the vertical one, for runs of 4 samples in a row (the SSE path), from the last row up
// (S0·b0 + (S1·b1 + (S2·b2 + S3·b3))), and for the row's last (width mod 4) samples left to right; every product and
// sum rounded to float32. A same-size resize is a copy. opencv-python's default dispatch sends this to IPP, whose
// results differ by about an ulp (README, ControlNet preprocessors).

import { interpolateCubic } from './cv-resize-u8.js';

const f = Math.fround;
const VECTOR = 4; // VResizeCubicVec_32f's step: one SSE register of four floats

interface Taps {
  /** Four clamped source indices per target index. */
  index: Int32Array;
  weight: Float32Array;
}

function taps(from: number, to: number): Taps {
  const scale = 1 / (to / from);
  const index = new Int32Array(to * 4);
  const weight = new Float32Array(to * 4);
  for (let d = 0; d < to; d++) {
    const at = f((d + 0.5) * scale - 0.5);
    const s = Math.floor(at);
    interpolateCubic(f(at - s)).forEach((w, k) => {
      index[d * 4 + k] = Math.min(Math.max(s - 1 + k, 0), from - 1);
      weight[d * 4 + k] = w;
    });
  }
  return { index, weight };
}

/** `plane` [height, width] row-major -> [outHeight, outWidth]. */
export function cvResizeCubicF32(plane: Float32Array, width: number, height: number, outWidth: number, outHeight: number): Float32Array {
  if (plane.length !== width * height) throw new RangeError(`cvResizeCubicF32: ${plane.length} values for ${width}x${height}`);
  if (width === outWidth && height === outHeight) return plane.slice();
  const xs = taps(width, outWidth);
  const ys = taps(height, outHeight);
  const rows = new Float32Array(height * outWidth);
  for (let y = 0; y < height; y++) {
    for (let d = 0; d < outWidth; d++) {
      let sum = 0;
      for (let k = 0; k < 4; k++) sum = f(sum + f(plane[y * width + xs.index[d * 4 + k]!]! * xs.weight[d * 4 + k]!));
      rows[y * outWidth + d] = sum;
    }
  }
  const out = new Float32Array(outWidth * outHeight);
  const vectorEnd = outWidth - (outWidth % VECTOR);
  for (let d = 0; d < outHeight; d++) {
    const b = [0, 1, 2, 3].map((k) => ys.weight[d * 4 + k]!);
    const r = [0, 1, 2, 3].map((k) => ys.index[d * 4 + k]! * outWidth);
    const p = (k: number, i: number) => f(rows[r[k]! + i]! * b[k]!);
    for (let i = 0; i < vectorEnd; i++) out[d * outWidth + i] = f(p(0, i) + f(p(1, i) + f(p(2, i) + p(3, i))));
    for (let i = vectorEnd; i < outWidth; i++) out[d * outWidth + i] = f(f(f(p(0, i) + p(1, i)) + p(2, i)) + p(3, i));
  }
  return out;
}
