// cv2.resize(plane, (width, height), interpolation=cv2.INTER_AREA) of a float32 plane when shrinking, as OpenCV 4.x
// computes it (imgproc/src/resize.cpp; src/image/cv-resize-u8.ts has the 8-bit picture's). Whole-number factors on
// both axes (resizeAreaFast_): each sample is the sum of its block (row by row, four samples added together and then
// to the sum, as the unrolled loop does) times float32 1 / area; halving has a 4-lane SIMD kernel,
// ((a + b) + (c + d)) * 0.25, for all but the row's last width % 4 samples. Other factors (computeResizeAreaTab,
// ResizeArea_Invoker): each destination cell [d * scale, (d + 1) * scale) takes every source sample it covers,
// weighted by the covered fraction / the cell's size (float32 weights computed in double); a row's weighted samples
// are summed in float32, then the rows weighted the same way. Enlarging on either axis is not this code (OpenCV then
// interpolates bilinearly).

import { areaRows } from './cv-area.js';

const f = Math.fround;

function areaFast(plane: Float32Array, width: number, sx: number, sy: number, outWidth: number, outHeight: number): Float32Array {
  const out = new Float32Array(outWidth * outHeight);
  const area = sx * sy;
  const scale = f(1 / area);
  const offsets: number[] = [];
  for (let y = 0; y < sy; y++) for (let x = 0; x < sx; x++) offsets.push(y * width + x);
  const vectorEnd = sx === 2 && sy === 2 ? outWidth - (outWidth % 4) : 0;
  for (let dy = 0; dy < outHeight; dy++) {
    for (let dx = 0; dx < outWidth; dx++) {
      const base = dy * sy * width + dx * sx;
      const at = (k: number) => plane[base + offsets[k]!]!;
      if (dx < vectorEnd) {
        out[dy * outWidth + dx] = f(f(f(at(0) + at(1)) + f(at(2) + at(3))) * 0.25);
        continue;
      }
      let sum = 0;
      let k = 0;
      for (; k <= area - 4; k += 4) sum = f(sum + f(f(f(at(k) + at(k + 1)) + at(k + 2)) + at(k + 3)));
      for (; k < area; k++) sum = f(sum + at(k));
      out[dy * outWidth + dx] = f(sum * scale);
    }
  }
  return out;
}

function areaGeneral(plane: Float32Array, width: number, height: number, outWidth: number, outHeight: number, scaleX: number, scaleY: number): Float32Array {
  const out = new Float32Array(outWidth * outHeight);
  areaRows(plane, width, height, 1, outWidth, outHeight, scaleX, scaleY, (dy, sums) => out.set(sums, dy * outWidth));
  return out;
}

/** `plane` [height, width] row-major -> [outHeight, outWidth], both sides no larger. */
export function cvResizeAreaFloat(plane: Float32Array, width: number, height: number, outWidth: number, outHeight: number): Float32Array {
  if (plane.length !== width * height) throw new RangeError(`cvResizeAreaFloat: ${plane.length} values for ${width}x${height}`);
  if (outWidth < 1 || outHeight < 1) throw new RangeError(`cvResizeAreaFloat: target ${outWidth}x${outHeight}`);
  if (width === outWidth && height === outHeight) return plane.slice();
  const scaleX = 1 / (outWidth / width);
  const scaleY = 1 / (outHeight / height);
  if (scaleX < 1 || scaleY < 1) throw new RangeError(`cvResizeAreaFloat: ${width}x${height} -> ${outWidth}x${outHeight} enlarges (OpenCV interpolates bilinearly there)`);
  const ix = Math.round(scaleX);
  const iy = Math.round(scaleY);
  if (Math.abs(scaleX - ix) < Number.EPSILON && Math.abs(scaleY - iy) < Number.EPSILON) return areaFast(plane, width, ix, iy, outWidth, outHeight);
  return areaGeneral(plane, width, height, outWidth, outHeight, scaleX, scaleY);
}
