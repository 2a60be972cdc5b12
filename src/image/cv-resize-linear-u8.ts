// cv2.resize(picture, size, interpolation=INTER_LINEAR) on 8-bit pictures, bit for bit as OpenCV 4.11 computes it
// (imgproc/src/resize.cpp, resizeGeneric_ with HResizeLinear and VResizeLinear), for DWPose's YOLOX letterbox:
//   * scale = 1 / (target side / source side) in double; a scale of exactly 2 on both axes is INTER_AREA's fast path;
//   * per target column the source coordinate float32((d + 0.5)·scale − 0.5), its floor and fraction; columns left of
//     the picture read column 0 with fraction 0, columns at or past the last read the last one with fraction 0; the
//     weights (1 − fraction, fraction) as w · 2048 rounded half to even (the horizontal pass sums sample · weight in integers);
//   * rows the same but not clamped: a row before the first or past the last reads the edge row with its weights;
//   * the vertical pass as OpenCV's SIMD code does it for every sample (checked on rows of every length against
//     cv2): ((row0 >> 4) · b0 >> 16) + ((row1 >> 4) · b1 >> 16), then (sum + 2) >> 2, clamped to 0..255.

import { roundHalfEven } from '../round-half-even.js';
import { cvResizeU8, horizontalRows } from './cv-resize-u8.js';
import { createRaster, type Raster } from './raster.js';

const f = Math.fround;
const COEF_SCALE = 2048; // INTER_RESIZE_COEF_SCALE

interface Taps {
  index: Int32Array;
  weights: Int32Array;
}

/** Each target index's source index and its two fixed-point weights; `clamp`: the horizontal rule at the edges. */
function linearTaps(to: number, from: number, scale: number, clamp: boolean): Taps {
  const index = new Int32Array(to);
  const weights = new Int32Array(2 * to);
  for (let d = 0; d < to; d++) {
    const at = f((d + 0.5) * scale - 0.5);
    let s = Math.floor(at);
    let fraction = f(at - s);
    if (clamp && s < 0) [s, fraction] = [0, 0];
    if (clamp && s >= from - 1) [s, fraction] = [from - 1, 0];
    index[d] = s;
    weights[2 * d] = roundHalfEven(f(1 - fraction) * COEF_SCALE);
    weights[2 * d + 1] = roundHalfEven(fraction * COEF_SCALE);
  }
  return { index, weights };
}

/** cv2.resize(picture, (outWidth, outHeight), interpolation=cv2.INTER_LINEAR). */
export function cvResizeLinearU8(picture: Raster, outWidth: number, outHeight: number): Raster {
  const { width, height, channels: n } = picture;
  if (outWidth < 1 || outHeight < 1) throw new RangeError(`cvResizeLinearU8: target ${outWidth}x${outHeight}`);
  if (width === outWidth && height === outHeight) return { ...picture, data: picture.data.slice() };
  const scaleX = 1 / (outWidth / width);
  const scaleY = 1 / (outHeight / height);
  if (Math.abs(scaleX - 2) < Number.EPSILON && Math.abs(scaleY - 2) < Number.EPSILON) return cvResizeU8(picture, outWidth, outHeight, 'area');
  const xs = linearTaps(outWidth, width, scaleX, true);
  const ys = linearTaps(outHeight, height, scaleY, false);
  const rowLength = outWidth * n;
  // A clamped column has weight 0 on its right neighbour, which may lie past the edge: read the edge instead.
  const columns = Int32Array.from({ length: 2 * outWidth }, (_, i) => Math.min(xs.index[i >> 1]! + (i & 1), width - 1));
  const rows = horizontalRows(picture, outWidth, { per: 2, columns, weights: xs.weights });
  const out = createRaster(outWidth, outHeight, n);
  const edge = (y: number) => Math.min(Math.max(y, 0), height - 1);
  for (let dy = 0; dy < outHeight; dy++) {
    const s = ys.index[dy]!;
    rows.dropBelow(edge(s));
    const r0 = rows.row(edge(s));
    const r1 = rows.row(edge(s + 1));
    const [b0, b1] = [ys.weights[2 * dy]!, ys.weights[2 * dy + 1]!];
    const at = dy * rowLength;
    for (let i = 0; i < rowLength; i++) {
      const sum = (((r0[i]! >> 4) * b0) >> 16) + (((r1[i]! >> 4) * b1) >> 16);
      out.data[at + i] = Math.min(255, Math.max(0, (sum + 2) >> 2));
    }
  }
  return out;
}
