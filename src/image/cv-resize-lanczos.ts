// cv2.resize(src, (width, height), interpolation=cv2.INTER_LANCZOS4) as OpenCV 4.x's generic resize computes it
// (imgproc/src/resize.cpp: interpolateLanczos4, resizeGeneric_ with HResizeLanczos4 and VResizeLanczos4): for each
// destination column and row the source coordinate (d + 0.5) * scale - 0.5 rounded to float, its floor and fraction,
// eight taps from floor - 3 to floor + 4 clamped to the edge, weighted by sin(pi t / 4) sin(pi t) / t² in float
// normalised to sum 1. The horizontal pass runs first. Float samples: products and sums in float32, the columns summed
// tap 0 to 7; the rows summed tap 7 down to 0 where OpenCV's 4-lane SIMD loop runs (all but the last width % 4
// columns), 0 to 7 in its scalar tail. 8-bit samples: weights in 11-bit fixed point (rounded), integer sums, the result
// (sum + 2^21) >> 22 clamped to 0..255. A same-size resize is a copy, as in cv::resize.

import { roundHalfEven } from '../round-half-even.js';

const f = Math.fround;
const S45 = 0.7071067811865476;
const CS: ReadonlyArray<readonly [number, number]> = [[1, 0], [-S45, -S45], [0, 1], [S45, -S45], [-1, 0], [S45, S45], [0, -1], [-S45, S45]];
const SIMD_LANES = 4;
const COEF_SCALE = 2048;

/** Samples in row-major HWC order: 8-bit or float32. */
export interface Samples<T extends Uint8Array | Float32Array> {
  data: T;
  width: number;
  height: number;
  channels: number;
}

/** interpolateLanczos4(x): the eight weights as float32. */
function lanczos4(x: number): Float32Array {
  const coeffs = new Float32Array(8);
  const x3 = f(x + 3);
  const y0 = -x3 * Math.PI * 0.25;
  const s0 = Math.sin(y0);
  const c0 = Math.cos(y0);
  let sum = 0;
  for (let i = 0; i < 8; i++) {
    const t = f(x3 - i);
    if (Math.abs(t) >= f(1e-6)) {
      const y = -t * Math.PI * 0.25;
      coeffs[i] = (CS[i]![0] * s0 + CS[i]![1] * c0) / (y * y);
    } else {
      coeffs[i] = 1e30;
    }
    sum = f(sum + coeffs[i]!);
  }
  const inv = f(1 / sum);
  for (let i = 0; i < 8; i++) coeffs[i] = f(coeffs[i]! * inv);
  return coeffs;
}

interface Taps {
  /** First tap's source index (floor - 3) of each destination index. */
  start: Int32Array;
  /** 8 weights per destination index. */
  weights: Float32Array;
}

function taps(from: number, to: number): Taps {
  const scale = 1 / (to / from);
  const start = new Int32Array(to);
  const weights = new Float32Array(8 * to);
  for (let d = 0; d < to; d++) {
    const at = f((d + 0.5) * scale - 0.5);
    const s = Math.floor(at);
    start[d] = s - 3;
    weights.set(lanczos4(f(at - s)), 8 * d);
  }
  return { start, weights };
}

const clamp = (i: number, n: number): number => (i < 0 ? 0 : i >= n ? n - 1 : i);

export function cvResizeLanczos4<T extends Uint8Array | Float32Array>(src: Samples<T>, outWidth: number, outHeight: number): Samples<T> {
  const { width, height, channels: cn } = src;
  if (src.data.length !== width * height * cn) throw new RangeError(`cvResizeLanczos4: ${src.data.length} values for ${width}x${height}x${cn}`);
  if (width === outWidth && height === outHeight) return { ...src, data: src.data.slice() as T };
  const fixed = src.data instanceof Uint8Array;
  const xs = taps(width, outWidth);
  const ys = taps(height, outHeight);
  // OpenCV's 8-bit path rounds each float weight to 11 fractional bits (saturate_cast<short>).
  const fixedWeights = (w: Float32Array) => Int32Array.from(w, (v) => Math.max(-32768, Math.min(32767, roundHalfEven(v * COEF_SCALE))));
  const xw = fixed ? fixedWeights(xs.weights) : xs.weights;
  const yw = fixed ? fixedWeights(ys.weights) : ys.weights;
  const rowLength = outWidth * cn;
  const rows = new Map<number, Float64Array | Float32Array>();
  const row = (y: number) => {
    let out = rows.get(y);
    if (out) return out;
    out = fixed ? new Float64Array(rowLength) : new Float32Array(rowLength);
    const base = y * width * cn;
    for (let d = 0; d < outWidth; d++) {
      const s = xs.start[d]!;
      for (let c = 0; c < cn; c++) {
        let v = 0;
        for (let j = 0; j < 8; j++) {
          const p = src.data[base + clamp(s + j, width) * cn + c]! * xw[8 * d + j]!;
          v = fixed ? v + p : f(v + f(p));
        }
        out[d * cn + c] = v;
      }
    }
    rows.set(y, out);
    return out;
  };
  const data = fixed ? new Uint8Array(outWidth * outHeight * cn) : new Float32Array(outWidth * outHeight * cn);
  const vectorEnd = rowLength - (rowLength % SIMD_LANES);
  for (let d = 0; d < outHeight; d++) {
    const s = ys.start[d]!;
    const srcRows = Array.from({ length: 8 }, (_, k) => row(clamp(s + k, height)));
    const beta = yw.subarray(8 * d, 8 * d + 8);
    const at = d * rowLength;
    for (let x = 0; x < rowLength; x++) {
      if (fixed) {
        let v = 0;
        for (let k = 0; k < 8; k++) v += srcRows[k]![x]! * beta[k]!;
        data[at + x] = Math.max(0, Math.min(255, Math.floor((v + 2 ** 21) / 2 ** 22)));
      } else if (x < vectorEnd) {
        let v = f(srcRows[7]![x]! * beta[7]!);
        for (let k = 6; k >= 0; k--) v = f(f(srcRows[k]![x]! * beta[k]!) + v);
        data[at + x] = v;
      } else {
        let v = f(srcRows[0]![x]! * beta[0]!);
        for (let k = 1; k < 8; k++) v = f(v + f(srcRows[k]![x]! * beta[k]!));
        data[at + x] = v;
      }
    }
  }
  return { data: data as T, width: outWidth, height: outHeight, channels: cn };
}
