// cv2.getAffineTransform and cv2.warpAffine(picture, M, size, flags=INTER_LINEAR) (constant border 0) on 8-bit
// pictures as OpenCV 4.11 computes them (imgproc/src/imgwarp.cpp; the warp bit for bit), for DWPose's crops:
//   * getAffineTransform: the 6x6 system of three point pairs solved in double as LAPACK's dgesv (OpenBLAS) solves
//     it, without its kernels' accumulation orders: the matrix can be off in the last bits, which moves the warp's
//     1/1024-pixel positions for about 1% of crops (README);
//   * warpAffine: M inverted in double (D = 1 / (m0 m4 − m1 m3), …); each target pixel's source position in
//     1/1024 pixels, round((m1 y + m2) · 1024) + 16 per row plus round(m0 x · 1024) per column (halves to even), then
//     >> 5 to 1/32 pixels: the integer part and a 5-bit fraction on each axis;
//   * remap's bilinear weights in 1/32768: (32 − fy)(32 − fx)·32, (32 − fy) fx·32, fy (32 − fx)·32, fy fx·32; the
//     sum of the four samples times their weights, (sum + 2^14) >> 15; a sample outside the picture is 0, and a
//     target whose four samples are all outside is 0.

import { roundHalfEven } from '../round-half-even.js';
import { createRaster, type Raster } from './raster.js';

export interface Point2 {
  x: number;
  y: number;
}

/** A 2x3 affine matrix, row-major: x' = m0 x + m1 y + m2, y' = m3 x + m4 y + m5. */
export type Affine = [number, number, number, number, number, number];

/**
 * x with a x = b for the m x m row-major `a` (overwritten), as LAPACK's dgesv solves it in OpenBLAS for small systems
 * (opencv-python 4.11 is built with Lapack, so cv::solve's LU goes there): getf2 column by column (the column's
 * earlier pivots applied, its upper part reduced by running dot products, the rest by the earlier columns one at a
 * time, the largest magnitude as pivot, the rows below scaled by 1 / pivot), then getrs (the swaps on b, the unit
 * lower solve, the upper solve dividing by each pivot). OpenBLAS's vector kernels accumulate in their own orders,
 * which this does not follow: the result can differ from it in the last bits (see README). undefined when singular.
 */
function dgesv(a: Float64Array, b: Float64Array, m: number): Float64Array | undefined {
  const at = (i: number, j: number) => i * m + j;
  const pivots = new Int32Array(m);
  for (let j = 0; j < m; j++) {
    for (let i = 0; i < j; i++) {
      const p = pivots[i]!;
      if (p !== i) [a[at(i, j)], a[at(p, j)]] = [a[at(p, j)]!, a[at(i, j)]!];
    }
    for (let i = 1; i < j; i++) {
      let dot = 0;
      for (let k = 0; k < i; k++) dot += a[at(i, k)]! * a[at(k, j)]!;
      a[at(i, j)]! -= dot;
    }
    for (let k = 0; k < j; k++) {
      const t = -a[at(k, j)]!;
      for (let i = j; i < m; i++) a[at(i, j)]! += t * a[at(i, k)]!;
    }
    let p = j;
    for (let i = j + 1; i < m; i++) if (Math.abs(a[at(i, j)]!) > Math.abs(a[at(p, j)]!)) p = i;
    pivots[j] = p;
    const pivot = a[at(p, j)]!;
    if (pivot === 0) return undefined;
    if (p !== j) for (let k = 0; k <= j; k++) [a[at(j, k)], a[at(p, k)]] = [a[at(p, k)]!, a[at(j, k)]!];
    const r = 1 / pivot;
    for (let i = j + 1; i < m; i++) a[at(i, j)]! *= r;
  }
  for (let i = 0; i < m; i++) if (pivots[i] !== i) [b[i], b[pivots[i]!]] = [b[pivots[i]!]!, b[i]!];
  for (let i = 0; i < m; i++) for (let k = i + 1; k < m; k++) b[k]! += -b[i]! * a[at(k, i)]!;
  for (let i = m - 1; i >= 0; i--) {
    b[i] = b[i]! / a[at(i, i)]!;
    for (let k = 0; k < i; k++) b[k]! += -b[i]! * a[at(k, i)]!;
  }
  return b;
}

/** cv2.getAffineTransform(src, dst) of three float32 point pairs; undefined when the points are collinear. */
export function getAffineTransform(src: readonly Point2[], dst: readonly Point2[]): Affine | undefined {
  const a = new Float64Array(36);
  const b = new Float64Array(6);
  for (let i = 0; i < 3; i++) {
    const j = i * 12;
    const k = j + 6;
    a[j] = a[k + 3] = src[i]!.x;
    a[j + 1] = a[k + 4] = src[i]!.y;
    a[j + 2] = a[k + 5] = 1;
    b[i * 2] = dst[i]!.x;
    b[i * 2 + 1] = dst[i]!.y;
  }
  const x = dgesv(a, b, 6);
  return x ? (Array.from(x) as Affine) : undefined;
}

const INTER_BITS = 5;
const TAB = 1 << INTER_BITS;
const AB_BITS = 10;
const AB_SCALE = 1 << AB_BITS;
const ROUND_DELTA = AB_SCALE / TAB / 2;
const SHORT_MIN = -32768;
const SHORT_MAX = 32767;
const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;

const saturate = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/** cv2.warpAffine(picture, m, (width, height), flags=cv2.INTER_LINEAR): each target pixel read through m's inverse. */
export function warpAffineLinear(picture: Raster, matrix: Affine, width: number, height: number): Raster {
  const [a0, a1, a2, a3, a4, a5] = matrix;
  let det = a0 * a4 - a1 * a3;
  det = det !== 0 ? 1 / det : 0;
  const m0 = a4 * det;
  const m4 = a0 * det;
  const m1 = a1 * -det;
  const m3 = a3 * -det;
  const m2 = -m0 * a2 - m1 * a5;
  const m5 = -m3 * a2 - m4 * a5;
  const { width: sw, height: sh, channels: n, data } = picture;
  const out = createRaster(width, height, n);
  const cvRoundInt = (v: number) => saturate(roundHalfEven(v), INT_MIN, INT_MAX);
  const adelta = Float64Array.from({ length: width }, (_, x) => cvRoundInt(m0 * x * AB_SCALE));
  const bdelta = Float64Array.from({ length: width }, (_, x) => cvRoundInt(m3 * x * AB_SCALE));
  const sample = (sx: number, sy: number, c: number) => (sx >= 0 && sy >= 0 && sx < sw && sy < sh ? data[(sy * sw + sx) * n + c]! : 0);
  for (let y = 0; y < height; y++) {
    const x0 = cvRoundInt((m1 * y + m2) * AB_SCALE) + ROUND_DELTA;
    const y0 = cvRoundInt((m4 * y + m5) * AB_SCALE) + ROUND_DELTA;
    for (let x = 0; x < width; x++) {
      const X = Math.floor((x0 + adelta[x]!) / (1 << (AB_BITS - INTER_BITS)));
      const Y = Math.floor((y0 + bdelta[x]!) / (1 << (AB_BITS - INTER_BITS)));
      const sx = saturate(Math.floor(X / TAB), SHORT_MIN, SHORT_MAX);
      const sy = saturate(Math.floor(Y / TAB), SHORT_MIN, SHORT_MAX);
      if (sx >= sw || sx + 1 < 0 || sy >= sh || sy + 1 < 0) continue;
      const fx = X & (TAB - 1);
      const fy = Y & (TAB - 1);
      const w00 = (TAB - fy) * (TAB - fx) * TAB;
      const w01 = (TAB - fy) * fx * TAB;
      const w10 = fy * (TAB - fx) * TAB;
      const w11 = fy * fx * TAB;
      const at = (y * width + x) * n;
      for (let c = 0; c < n; c++) {
        const sum = sample(sx, sy, c) * w00 + sample(sx + 1, sy, c) * w01 + sample(sx, sy + 1, c) * w10 + sample(sx + 1, sy + 1, c) * w11;
        out.data[at + c] = saturate((sum + (1 << 14)) >> 15, 0, 255);
      }
    }
  }
  return out;
}
