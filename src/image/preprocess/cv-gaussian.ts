// cv2.GaussianBlur(src, (0, 0), sigma) of a float32 image, as the ControlNet preprocessors call it on
// img.astype(np.float32): OpenCV 4.x's kernel size for float images, cvRound(sigma * 4 * 2 + 1) | 1; its
// kernel (getGaussianKernelBitExact: exp(-x²/(2σ²)) in double, normalised by 1 + 2·Σ, cast to float32);
// BORDER_REFLECT_101; a row pass into a float32 buffer, then a column pass, each summed in the order and
// with the FMAs of OpenCV's AVX2 kernels (rowTap, columnTap). Where OpenCV's dispatch differs (SSE-only
// CPUs, scalar tails of rows whose length is not a multiple of 8 or 16 floats; the callers' pictures are
// padded to multiples of 64 pixels, so theirs never have one) a value may differ by an ulp, which moves an
// 8-bit threshold or truncation only at an exact tie.

export function gaussianKernel(sigma: number): Float32Array {
  return Float32Array.from(gaussianKernelDoubles(Math.round(sigma * 4 * 2 + 1) | 1, sigma));
}

/** getGaussianKernelBitExact's n taps in double (softdouble), before any cast: exp(-x²/(2σ²)) normalised by 1 + 2·Σ. */
export function gaussianKernelDoubles(n: number, sigma: number): Float64Array {
  const scale = -0.125 / (sigma * sigma);
  const half = (n - 1) / 2;
  const values: number[] = [];
  let sum = 0;
  for (let i = 0, x = 1 - n; i < half; i++, x += 2) {
    const t = Math.exp(x * x * scale);
    values.push(t);
    sum += t;
  }
  sum = sum * 2 + 1;
  const mul = 1 / sum;
  const kernel = new Float64Array(n);
  for (let i = 0; i < half; i++) kernel[i] = kernel[n - 1 - i] = values[i]! * mul;
  kernel[half] = mul;
  return kernel;
}

/** BORDER_REFLECT_101: gfedcb|abcdefgh|gfedcba. */
export function reflect101(i: number, n: number): number {
  if (n === 1) return 0;
  for (;;) {
    if (i < 0) i = -i;
    else if (i >= n) i = 2 * n - 2 - i;
    else return i;
  }
}

/**
 * One output of the row pass, from the row's samples through `at` (reflected). Each step is one FMA: the product
 * of two float32 values is exact in double, so one rounding to float32 after the add. 5-tap kernels in the order
 * OpenCV 4.11's AVX2 SymmRowSmallVec_32f evaluates them (found against cv2.sepFilter2D on random rows): the inner
 * mirrored pair's sum times its weight, the centre, the outer pair; longer kernels as RowVec_32f: every tap in
 * kernel order from zero.
 */
function rowTap(kernel: Float32Array, at: (i: number) => number, i: number): number {
  const half = (kernel.length - 1) / 2;
  if (kernel.length === 5) {
    const acc = Math.fround(Math.fround(at(i - 1) + at(i + 1)) * kernel[3]!);
    return Math.fround(Math.fround(acc + at(i) * kernel[2]!) + Math.fround(at(i - 2) + at(i + 2)) * kernel[4]!);
  }
  let acc = 0;
  for (let k = 0; k < kernel.length; k++) acc = Math.fround(acc + kernel[k]! * at(i + k - half));
  return acc;
}

/** One output of the column pass, as SymmColumnVec_32f: the centre, then each mirrored pair's sum times its weight. */
function columnTap(kernel: Float32Array, at: (i: number) => number, i: number): number {
  const half = (kernel.length - 1) / 2;
  let acc = Math.fround(kernel[half]! * at(i));
  for (let k = 1; k <= half; k++) acc = Math.fround(acc + Math.fround(at(i - k) + at(i + k)) * kernel[half + k]!);
  return acc;
}

/** The blur of an interleaved float32 image (`channels` values per pixel), channel by channel: rows, then columns. */
export function gaussianBlurFloat(data: Float32Array, width: number, height: number, channels: number, sigma: number): Float32Array {
  const kernel = gaussianKernel(sigma);
  const rows = new Float32Array(data.length);
  for (let y = 0; y < height; y++) {
    const row = y * width * channels;
    for (let c = 0; c < channels; c++) {
      const at = (x: number) => data[row + reflect101(x, width) * channels + c]!;
      for (let x = 0; x < width; x++) rows[row + x * channels + c] = rowTap(kernel, at, x);
    }
  }
  const out = new Float32Array(data.length);
  const stride = width * channels;
  for (let i = 0; i < stride; i++) {
    const at = (y: number) => rows[reflect101(y, height) * stride + i]!;
    for (let y = 0; y < height; y++) out[y * stride + i] = columnTap(kernel, at, y);
  }
  return out;
}
