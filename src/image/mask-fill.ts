import type { Raster } from './raster.js';

/** One box blur of radius r along rows then columns, edges clamped; three passes approximate a Gaussian. */
function boxBlur(plane: Float32Array, width: number, height: number, r: number): Float32Array {
  const pass = (src: Float32Array, len: number, lines: number, at: (line: number, k: number) => number): Float32Array => {
    const out = new Float32Array(src.length);
    for (let line = 0; line < lines; line++) {
      let sum = 0;
      for (let k = -r; k <= r; k++) sum += src[at(line, Math.min(len - 1, Math.max(0, k)))]!;
      for (let k = 0; k < len; k++) {
        out[at(line, k)] = sum / (2 * r + 1);
        sum += src[at(line, Math.min(len - 1, k + r + 1))]! - src[at(line, Math.max(0, k - r))]!;
      }
    }
    return out;
  };
  const rows = pass(plane, width, height, (y, x) => y * width + x);
  return pass(rows, height, width, (x, y) => y * width + x);
}

function gaussianLike(plane: Float32Array, width: number, height: number, sigma: number): Float32Array {
  // Three box passes of radius r have variance 3 * r(r+1)/3 ≈ sigma².
  const r = Math.max(1, Math.round(Math.sqrt(sigma * sigma + 1) - 0.5));
  return boxBlur(boxBlur(boxBlur(plane, width, height, r), width, height, r), width, height, r);
}

/**
 * A1111's "fill" masked content: the repainted area is pre-painted with the colours around it,
 * blurred from far to near (its cascade of Gaussian blurs of the unmasked picture, nearer ones
 * on top), here as normalised convolution blur(image * keep) / blur(keep) at each radius.
 */
export function fillMasked(image: Raster, repaint: Float32Array): Raster {
  const { width, height, channels } = image;
  const n = width * height;
  const keep = repaint.map((v) => (v >= 0.5 ? 0 : 1));
  const data = Uint8Array.from(image.data);
  for (const sigma of [Math.max(width, height) / 4, 32, 8, 2]) {
    const den = gaussianLike(keep, width, height, sigma);
    for (let c = 0; c < Math.min(3, channels); c++) {
      const plane = new Float32Array(n);
      for (let i = 0; i < n; i++) plane[i] = image.data[i * channels + c]! * keep[i]!;
      const num = gaussianLike(plane, width, height, sigma);
      for (let i = 0; i < n; i++) if (keep[i] === 0 && den[i]! > 1e-3) data[i * channels + c] = Math.round(Math.min(255, num[i]! / den[i]!));
    }
  }
  return { ...image, data };
}
