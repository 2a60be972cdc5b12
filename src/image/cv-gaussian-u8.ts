// cv2.GaussianBlur(src, (0, 0), sigma) of an 8-bit picture, OpenCV 4.x's bit-exact fixed-point path (smooth.dispatch.cpp,
// GaussianBlurFixedPoint), not the float one of ./preprocess/cv-gaussian.ts: the kernel size for 8-bit pictures,
// cvRound(sigma * 3 * 2 + 1) | 1, unless the caller gives one (cv2.GaussianBlur(src, (w, h), sigma): both axes take sigma,
// a side of 1 is a one-tap kernel of 256); the double kernel (getGaussianKernelBitExact, shared with the float path) turned into
// 8-bit fractions by error diffusion (getGaussianKernelFixedPoint_ED: each outer tap rounded half to even with the
// previous rounding error carried, the centre taking what is left of 256); a row pass of exact integer sums (at most
// 255 · 256, ufixedpoint16), a column pass of exact integer sums, then (sum + 2^15) >> 16; BORDER_REFLECT_101. Every step
// is integer arithmetic, so the SIMD and scalar paths agree, and IPP plays no part (OpenCV sends 8-bit pictures here
// before it would consider IPP). A side of one pixel gets a one-tap kernel in OpenCV; here every tap lands on that
// pixel and the taps sum to 256, which gives the same value.

import { roundHalfEven } from '../round-half-even.js';
import { gaussianKernelDoubles, reflect101 } from './preprocess/cv-gaussian.js';
import type { Raster } from './raster.js';

/** The fixed-point taps (8 fractional bits, summing to 256; sigma 0.8: 0, 6, 58, 128, 58, 6, 0). */
export function gaussianKernelU8(sigma: number, n = roundHalfEven(sigma * 3 * 2 + 1) | 1): number[] {
  const exact = gaussianKernelDoubles(n, sigma);
  const half = (n - 1) / 2;
  const taps = new Array<number>(n);
  let err = 0;
  let outer = 0;
  for (let i = 0; i < half; i++) {
    const adjusted = exact[i]! * 256 + err;
    const v = roundHalfEven(adjusted);
    err = adjusted - v;
    taps[i] = taps[n - 1 - i] = v;
    outer += v;
  }
  taps[half] = 256 - 2 * outer;
  return taps;
}

/** `size`: cv2's ksize, (width, height) in taps, odd. */
export function gaussianBlurU8(picture: Raster, sigma: number, size?: { width: number; height: number }): Raster {
  const { width, height, channels } = picture;
  const taps = gaussianKernelU8(sigma, size?.width);
  const half = (taps.length - 1) / 2;
  const rows = new Uint32Array(width * height * channels);
  for (let x = 0; x < width; x++) {
    const from = taps.map((_, j) => reflect101(x + j - half, width));
    for (let y = 0; y < height; y++) {
      for (let c = 0; c < channels; c++) {
        let s = 0;
        for (let j = 0; j < taps.length; j++) s += taps[j]! * picture.data[(y * width + from[j]!) * channels + c]!;
        rows[(y * width + x) * channels + c] = s;
      }
    }
  }
  const columnTaps = gaussianKernelU8(sigma, size?.height);
  const columnHalf = (columnTaps.length - 1) / 2;
  const data = new Uint8Array(rows.length);
  const line = width * channels;
  for (let y = 0; y < height; y++) {
    const from = columnTaps.map((_, j) => reflect101(y + j - columnHalf, height) * line);
    for (let i = 0; i < line; i++) {
      let s = 0;
      for (let j = 0; j < columnTaps.length; j++) s += columnTaps[j]! * rows[from[j]! + i]!;
      data[y * line + i] = Math.min(255, Math.floor((s + 32768) / 65536));
    }
  }
  return { width, height, channels, data };
}
