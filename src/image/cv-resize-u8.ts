// cv2.resize on 8-bit pictures with INTER_AREA (downscaling) and INTER_CUBIC, bit for bit as OpenCV 4.x
// computes them (imgproc/src/resize.cpp), for sd-webui-controlnet's resize_image_with_pad. Each rule below
// changes some samples if done otherwise:
//   * the scales are double: scale = source side / target side;
//   * INTER_AREA at an integer scale on both axes (the "fast" path): the mean of each block, rounded half to
//     even from sum * float32(1 / area), except at scale 2 where (sum + 2) >> 2 rounds halves up;
//   * INTER_AREA otherwise: per axis a table of (source, target, float32 weight) from the cell
//     [d·scale, d·scale + scale), partial end cells weighted by their covered part (> 1e-3 only); rows are
//     summed in float32 in table order (sample · weight added to the row's running sum), then the rows into
//     the target row, rounded half to even;
//   * INTER_CUBIC: the source coordinate float32((d + 0.5)·scale − 0.5), its floor and fraction; Keys'
//     kernel (A = −0.75) in float32, each weight rounded to 11 fractional bits (half to even); source
//     columns and rows beyond the edges read the edge; the horizontal pass in integers, then the vertical
//     one: for runs of 8 samples in a row (OpenCV's SSE path) in float32 — each of the four rows as float
//     times weight / 2^22, summed from the last row up, rounded half to even — and for the row's last
//     (length mod 8) samples in integers, (sum + 2^21) >> 22; both clamped to 0..255.
// A same-size resize is a copy, as in cv::resize. Only scales >= 1 are reproduced for INTER_AREA (OpenCV
// upscales "area" with a bilinear variant, which resize_image_with_pad never asks for).

import { roundHalfEven } from '../round-half-even.js';
import { areaRows } from './cv-area.js';
import { createRaster, type Raster } from './raster.js';

const f = Math.fround;

const toU8 = (v: number): number => Math.min(255, Math.max(0, v));

export type CvInterpolation = 'area' | 'cubic';

/** cv2.resize(picture, (outWidth, outHeight), interpolation=INTER_AREA or INTER_CUBIC). */
export function cvResizeU8(picture: Raster, outWidth: number, outHeight: number, interpolation: CvInterpolation): Raster {
  const { width, height } = picture;
  if (outWidth < 1 || outHeight < 1) throw new RangeError(`cvResizeU8: target ${outWidth}x${outHeight}`);
  if (width === outWidth && height === outHeight) return { ...picture, data: picture.data.slice() };
  const scaleX = 1 / (outWidth / width);
  const scaleY = 1 / (outHeight / height);
  if (interpolation === 'cubic') return resizeCubic(picture, outWidth, outHeight, scaleX, scaleY);
  if (scaleX < 1 || scaleY < 1) throw new RangeError(`cvResizeU8: INTER_AREA upscaling (${width}x${height} to ${outWidth}x${outHeight}) is not reproduced`);
  const ix = roundHalfEven(scaleX);
  const iy = roundHalfEven(scaleY);
  if (Math.abs(scaleX - ix) < Number.EPSILON && Math.abs(scaleY - iy) < Number.EPSILON) return resizeAreaFast(picture, outWidth, outHeight, ix, iy);
  return resizeArea(picture, outWidth, outHeight, scaleX, scaleY);
}

function resizeAreaFast(picture: Raster, outWidth: number, outHeight: number, sx: number, sy: number): Raster {
  const { width, channels: n, data } = picture;
  const out = createRaster(outWidth, outHeight, n);
  const scale = f(1 / (sx * sy));
  const halves = sx === 2 && sy === 2;
  for (let dy = 0; dy < outHeight; dy++) {
    for (let dx = 0; dx < outWidth; dx++) {
      for (let c = 0; c < n; c++) {
        let sum = 0;
        for (let y = dy * sy; y < (dy + 1) * sy; y++) for (let x = dx * sx; x < (dx + 1) * sx; x++) sum += data[(y * width + x) * n + c]!;
        out.data[(dy * outWidth + dx) * n + c] = halves ? (sum + 2) >> 2 : toU8(roundHalfEven(f(sum * scale)));
      }
    }
  }
  return out;
}

function resizeArea(picture: Raster, outWidth: number, outHeight: number, scaleX: number, scaleY: number): Raster {
  const { width, height, channels: n, data } = picture;
  const out = createRaster(outWidth, outHeight, n);
  areaRows(data, width, height, n, outWidth, outHeight, scaleX, scaleY, (dy, sums) => {
    for (let i = 0; i < sums.length; i++) out.data[dy * outWidth * n + i] = toU8(roundHalfEven(sums[i]!));
  });
  return out;
}

const COEF_SCALE = 2048; // INTER_RESIZE_COEF_SCALE, 1 << INTER_RESIZE_COEF_BITS

/** interpolateCubic: Keys' kernel (A = -0.75) at fraction x, the four weights in float32 (float images use them as they are). */
export function interpolateCubic(x: number): [number, number, number, number] {
  const A = -0.75;
  const x1 = f(x + 1);
  const w0 = f(f(f(f(f(f(A * x1) - f(5 * A)) * x1) + f(8 * A)) * x1) - f(4 * A));
  const w1 = f(f(f(f(f(f(A + 2) * x) - f(A + 3)) * x) * x) + 1);
  const ox = f(1 - x);
  const w2 = f(f(f(f(f(f(A + 2) * ox) - f(A + 3)) * ox) * ox) + 1);
  const w3 = f(f(f(1 - w0) - w1) - w2);
  return [w0, w1, w2, w3];
}

/** interpolateCubic's four weights of fraction x, each as saturate_cast<short>(w · 2048). */
function cubicWeights(x: number): [number, number, number, number] {
  return interpolateCubic(x).map((w) => roundHalfEven(f(w * COEF_SCALE))) as [number, number, number, number];
}

interface CubicTaps {
  /** floor of the source coordinate of each target index */
  index: Int32Array;
  /** four fixed-point weights per target index, for index - 1 .. index + 2 */
  weights: Int32Array;
}

function cubicTaps(to: number, scale: number): CubicTaps {
  const index = new Int32Array(to);
  const weights = new Int32Array(4 * to);
  for (let d = 0; d < to; d++) {
    const at = f((d + 0.5) * scale - 0.5);
    const s = Math.floor(at);
    index[d] = s;
    weights.set(cubicWeights(f(at - s)), 4 * d);
  }
  return { index, weights };
}

/** A separable resize's horizontal taps: per target column, `per` source columns (clamped into the picture) and their fixed-point weights. */
export interface ColumnTaps {
  per: number;
  columns: Int32Array;
  weights: Int32Array;
}

/**
 * The horizontal pass of OpenCV's 8-bit separable resizes: a source row as Σ sample · weight per target sample, in
 * integers, made once and kept while later target rows may read it (`dropBelow`: rows no later target row reads).
 */
export function horizontalRows(picture: Raster, outWidth: number, taps: ColumnTaps): { row: (sy: number) => Int32Array; dropBelow: (sy: number) => void } {
  const { width, channels: n, data } = picture;
  const { per, columns, weights } = taps;
  const rows = new Map<number, Int32Array>();
  return {
    row: (sy) => {
      let row = rows.get(sy);
      if (!row) {
        row = new Int32Array(outWidth * n);
        const base = sy * width * n;
        for (let dx = 0; dx < outWidth; dx++) {
          for (let c = 0; c < n; c++) {
            let v = 0;
            for (let k = 0; k < per; k++) v += data[base + columns[per * dx + k]! * n + c]! * weights[per * dx + k]!;
            row[dx * n + c] = v;
          }
        }
        rows.set(sy, row);
      }
      return row;
    },
    dropBelow: (sy) => {
      for (const key of rows.keys()) if (key < sy) rows.delete(key);
    },
  };
}

const VECTOR = 8; // VResizeCubicVec_32s8u's step: two SSE registers of four floats
const ROW_SCALE = 1 / (COEF_SCALE * COEF_SCALE);

function resizeCubic(picture: Raster, outWidth: number, outHeight: number, scaleX: number, scaleY: number): Raster {
  const { width, height, channels: n } = picture;
  const xs = cubicTaps(outWidth, scaleX);
  const ys = cubicTaps(outHeight, scaleY);
  const rowLength = outWidth * n;
  const columns = Int32Array.from({ length: 4 * outWidth }, (_, i) => Math.min(Math.max(xs.index[i >> 2]! - 1 + (i & 3), 0), width - 1));
  const rows = horizontalRows(picture, outWidth, { per: 4, columns, weights: xs.weights });
  const horizontal = rows.row;
  const out = createRaster(outWidth, outHeight, n);
  const vectorEnd = rowLength - (rowLength % VECTOR);
  for (let dy = 0; dy < outHeight; dy++) {
    const s = ys.index[dy]!;
    const r = [0, 1, 2, 3].map((k) => horizontal(Math.min(Math.max(s - 1 + k, 0), height - 1)));
    const b = [0, 1, 2, 3].map((k) => ys.weights[4 * dy + k]!);
    const fb = b.map((w) => f(w * ROW_SCALE));
    const at = dy * rowLength;
    for (let x = 0; x < vectorEnd; x++) {
      const v = f(f(r[0]![x]! * fb[0]!) + f(f(r[1]![x]! * fb[1]!) + f(f(r[2]![x]! * fb[2]!) + f(r[3]![x]! * fb[3]!))));
      out.data[at + x] = toU8(roundHalfEven(v));
    }
    for (let x = vectorEnd; x < rowLength; x++) {
      const v = r[0]![x]! * b[0]! + r[1]![x]! * b[1]! + r[2]![x]! * b[2]! + r[3]![x]! * b[3]!;
      out.data[at + x] = toU8((v + (1 << 21)) >> 22);
    }
    rows.dropBelow(s - 1);
  }
  return out;
}
