// cv2.GaussianBlur(src, (0, 0), sigma) of an 8-bit picture, OpenCV 4.x's bit-exact fixed-point path (smooth.dispatch.cpp,
// GaussianBlurFixedPoint): the kernel size for 8-bit pictures, cvRound(sigma * 3 * 2 + 1) | 1; the double kernel
// (getGaussianKernelBitExact: exp(-x²/(2σ²)) normalised by 1 + 2·Σ) turned into 8-bit fractions by error diffusion
// (getGaussianKernelFixedPoint_ED: each outer tap rounded half to even with the previous rounding error carried, the
// centre taking what is left of 256); a row pass of exact integer sums, a column pass of exact integer sums, then
// (sum + 2^15) >> 16; BORDER_REFLECT_101. Every step is integer arithmetic, so the SIMD and scalar paths agree.

import { roundHalfEven } from '../round-half-even.js';
import type { Raster } from './raster.js';

/** The fixed-point taps (8 fractional bits, summing to 256; sigma 0.8: 0, 6, 58, 128, 58, 6, 0). */
function gaussianKernelU8(sigma: number): number[] {
  const n = roundHalfEven(sigma * 3 * 2 + 1) | 1;
  const scale = -0.125 / (sigma * sigma);
  const half = (n - 1) / 2;
  const values: number[] = [];
  let sum = 0;
  for (let i = 0, x = 1 - n; i < half; i++, x += 2) {
    const t = Math.exp(x * x * scale);
    values.push(t);
    sum += t;
  }
  const mul = 1 / (sum * 2 + 1);
  const taps = new Array<number>(n);
  let err = 0;
  let outer = 0;
  for (let i = 0; i < half; i++) {
    const adjusted = values[i]! * mul * 256 + err;
    const v = roundHalfEven(adjusted);
    err = adjusted - v;
    taps[i] = taps[n - 1 - i] = v;
    outer += v;
  }
  taps[half] = 256 - 2 * outer;
  return taps;
}

/** BORDER_REFLECT_101: gfedcb|abcdefgh|gfedcba. */
function reflect101(i: number, n: number): number {
  if (n === 1) return 0;
  for (;;) {
    if (i < 0) i = -i;
    else if (i >= n) i = 2 * n - 2 - i;
    else return i;
  }
}

export function gaussianBlurU8(picture: Raster, sigma: number): Raster {
  const { width, height, channels } = picture;
  const taps = gaussianKernelU8(sigma);
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
  const data = new Uint8Array(rows.length);
  const line = width * channels;
  for (let y = 0; y < height; y++) {
    const from = taps.map((_, j) => reflect101(y + j - half, height) * line);
    for (let i = 0; i < line; i++) {
      let s = 0;
      for (let j = 0; j < taps.length; j++) s += taps[j]! * rows[from[j]! + i]!;
      data[y * line + i] = Math.min(255, Math.floor((s + 32768) / 65536));
    }
  }
  return { width, height, channels, data };
}
