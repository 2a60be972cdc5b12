// cv2.GaussianBlur(src, (0, 0), sigma) of a uint8 image, as sd-webui-controlnet's scribble_hed/scribble_pidinet call it
// on their 0/255 map: OpenCV 4.x's bit-exact fixed-point path (GaussianBlur -> GaussianBlurFixedPoint), not the float
// one of ./cv-gaussian.ts. Kernel size cvRound(sigma * 3 * 2 + 1) | 1; the double kernel quantised to 8 fractional
// bits by error diffusion (getGaussianKernelFixedPoint_ED); rows then columns summed in integers (ufixedpoint16 rows,
// at most 255 · 256; ufixedpoint32 columns), so nothing rounds until the end, (sum + 2^15) >> 16, and the SIMD and
// scalar loops agree. BORDER_REFLECT_101. A side of one pixel gets a one-tap kernel in OpenCV; here every tap of the
// long kernel lands on that pixel, and the taps sum to exactly 256, so the value is the same.

import { roundHalfEven } from '../../round-half-even.js';
import { gaussianKernelDoubles, reflect101 } from './cv-gaussian.js';

/**
 * The fixed-point taps (out of 256): each side tap cvRound(k · 256 + the previous tap's rounding error), half to even,
 * mirrored; the centre whatever makes the sum exactly 256.
 */
export function fixedGaussianKernel(sigma: number): Int32Array {
  const n = roundHalfEven(sigma * 3 * 2 + 1) | 1;
  const exact = gaussianKernelDoubles(n, sigma);
  const half = (n - 1) / 2;
  const kernel = new Int32Array(n);
  let err = 0;
  let sum = 0;
  for (let i = 0; i < half; i++) {
    const adjusted = exact[i]! * 256 + err;
    const v = roundHalfEven(adjusted);
    err = adjusted - v;
    kernel[i] = kernel[n - 1 - i] = v;
    sum += v;
  }
  kernel[half] = 256 - 2 * sum;
  return kernel;
}

/** The blur of an interleaved uint8 image (`channels` samples per pixel), channel by channel. */
export function gaussianBlurU8(data: Uint8Array, width: number, height: number, channels: number, sigma: number): Uint8Array {
  const kernel = fixedGaussianKernel(sigma);
  const half = (kernel.length - 1) / 2;
  const stride = width * channels;
  const columnsAt = (n: number) => Int32Array.from({ length: n + 2 * half }, (_, i) => reflect101(i - half, n));
  const xs = columnsAt(width);
  const rows = new Int32Array(data.length);
  for (let y = 0; y < height; y++) {
    const row = y * stride;
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        let acc = 0;
        for (let k = 0; k < kernel.length; k++) acc += kernel[k]! * data[row + xs[x + k]! * channels + c]!;
        rows[row + x * channels + c] = acc;
      }
    }
  }
  const ys = columnsAt(height);
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < stride; i++) {
      let acc = 0;
      for (let k = 0; k < kernel.length; k++) acc += kernel[k]! * rows[ys[y + k]! * stride + i]!;
      out[y * stride + i] = (acc + 32768) >>> 16;
    }
  }
  return out;
}
