// cv2.resize(src, (width, height), interpolation=cv2.INTER_LINEAR) on one float32 plane, as OpenCV's
// generic resize computes it (imgproc/src/resize.cpp: resizeGeneric_ with HResizeLinear and
// VResizeLinear): the source coordinate (d + 0.5) * scale - 0.5 rounded to float, its floor and
// fraction; columns left of the first or right of the last source column take that column alone
// (fraction 0), rows outside are clamped to the edge row (both taps may read the same row). The
// horizontal pass runs first; each product and sum is rounded to float32 (no fused multiply-add).
// A same-size resize is a copy, as in cv::resize.

const f = Math.fround;

interface Taps {
  index: Int32Array;
  frac: Float32Array;
}

function taps(from: number, to: number, clampFraction: boolean): Taps {
  const scale = 1 / (to / from);
  const index = new Int32Array(to);
  const frac = new Float32Array(to);
  for (let d = 0; d < to; d++) {
    const at = f((d + 0.5) * scale - 0.5);
    let s = Math.floor(at);
    let fr = f(at - s);
    if (clampFraction && s < 0) [s, fr] = [0, 0];
    if (clampFraction && s >= from - 1) [s, fr] = [from - 1, 0];
    index[d] = s;
    frac[d] = fr;
  }
  return { index, frac };
}

/** `plane` [height, width] row-major -> [outHeight, outWidth]. */
export function cvResizeLinear(plane: Float32Array, width: number, height: number, outWidth: number, outHeight: number): Float32Array {
  if (plane.length !== width * height) throw new RangeError(`cvResizeLinear: ${plane.length} values for ${width}x${height}`);
  if (width === outWidth && height === outHeight) return plane.slice();
  const xs = taps(width, outWidth, true);
  const ys = taps(height, outHeight, false);
  const rows = new Map<number, Float32Array>();
  const row = (y: number): Float32Array => {
    const clamped = Math.min(Math.max(y, 0), height - 1);
    let out = rows.get(clamped);
    if (!out) {
      out = new Float32Array(outWidth);
      const base = clamped * width;
      for (let d = 0; d < outWidth; d++) {
        const s = xs.index[d]!;
        const fr = xs.frac[d]!;
        const a0 = f(1 - fr);
        // The last source column has no right neighbour: OpenCV reads it alone.
        out[d] = s + 1 < width ? f(f(plane[base + s]! * a0) + f(plane[base + s + 1]! * fr)) : f(plane[base + s]! * a0);
      }
      rows.set(clamped, out);
    }
    return out;
  };
  const result = new Float32Array(outWidth * outHeight);
  for (let d = 0; d < outHeight; d++) {
    const s = ys.index[d]!;
    const b1 = ys.frac[d]!;
    const b0 = f(1 - b1);
    const r0 = row(s);
    const r1 = row(s + 1);
    for (let x = 0; x < outWidth; x++) result[d * outWidth + x] = f(f(r0[x]! * b0) + f(r1[x]! * b1));
  }
  return result;
}
