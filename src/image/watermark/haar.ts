// One level of the 2-D Haar wavelet transform as PyWavelets' dwt2 / idwt2 compute it in float64, operation
// for operation, so the results are the same doubles rather than merely close (the watermark truncates them
// to uint8, where a last-bit difference can move a pixel by a whole level).
//
// pywt's C convolution sums filter taps in order into a zero start: a downsampled output is
// f[0]*x[2k+1] + f[1]*x[2k], an upsampled pair is lo[t]*a[k] + hi[t]*d[k]. dwt2 filters along the rows
// axis first, then the columns; idwt2 undoes the columns first. Haar's taps are all ±1/√2, so every
// product is c*x or its negation.

/** pywt.Wavelet('haar') filter taps. */
const C = 0.7071067811865476;

/** The four bands of a level, each width × height, row-major (pywt's cA, (cH, cV, cD)). */
export interface HaarBands {
  width: number;
  height: number;
  approx: Float64Array;
  /** cH: detail across rows (axis 0), approximation across columns. */
  horizontal: Float64Array;
  /** cV: approximation across rows, detail across columns. */
  vertical: Float64Array;
  diagonal: Float64Array;
}

/**
 * pywt.dwt2(plane[:height, :width], 'haar') of a plane stored with `stride` samples per row; width and height
 * must be even (the watermark only transforms multiples of 4, so pywt's boundary extension never applies).
 */
export function haarDwt2(plane: ArrayLike<number>, stride: number, width: number, height: number): HaarBands {
  if (width % 2 !== 0 || height % 2 !== 0) throw new RangeError(`Haar transform of an odd size ${width}x${height}`);
  const w = width / 2;
  const h = height / 2;
  // rows first: low and high halves of each column, height/2 × width
  const low = new Float64Array(h * width);
  const high = new Float64Array(h * width);
  for (let r = 0; r < h; r++) {
    const top = 2 * r * stride;
    const bottom = top + stride;
    for (let x = 0; x < width; x++) {
      const a = C * plane[top + x]!;
      const b = C * plane[bottom + x]!;
      low[r * width + x] = b + a;
      high[r * width + x] = a - b;
    }
  }
  const bands: HaarBands = {
    width: w,
    height: h,
    approx: new Float64Array(w * h),
    horizontal: new Float64Array(w * h),
    vertical: new Float64Array(w * h),
    diagonal: new Float64Array(w * h),
  };
  for (let r = 0; r < h; r++) {
    for (let k = 0; k < w; k++) {
      const i = r * width + 2 * k;
      const o = r * w + k;
      const la = C * low[i]!;
      const lb = C * low[i + 1]!;
      const ha = C * high[i]!;
      const hb = C * high[i + 1]!;
      bands.approx[o] = lb + la;
      bands.vertical[o] = la - lb;
      bands.horizontal[o] = hb + ha;
      bands.diagonal[o] = ha - hb;
    }
  }
  return bands;
}

/** pywt.idwt2((approx, (horizontal, vertical, diagonal)), 'haar'): a (2·height) × (2·width) plane. */
export function haarIdwt2(bands: HaarBands): Float64Array {
  const { width: w, height: h } = bands;
  const width = 2 * w;
  // columns first: the low (approx, vertical) and high (horizontal, diagonal) halves, h × width each
  const low = new Float64Array(h * width);
  const high = new Float64Array(h * width);
  for (let o = 0; o < w * h; o++) {
    const i = 2 * o;
    const a = C * bands.approx[o]!;
    const v = C * bands.vertical[o]!;
    const hz = C * bands.horizontal[o]!;
    const d = C * bands.diagonal[o]!;
    low[i] = a + v;
    low[i + 1] = a - v;
    high[i] = hz + d;
    high[i + 1] = hz - d;
  }
  const out = new Float64Array(2 * h * width);
  for (let r = 0; r < h; r++) {
    for (let x = 0; x < width; x++) {
      const l = C * low[r * width + x]!;
      const hi = C * high[r * width + x]!;
      out[2 * r * width + x] = l + hi;
      out[(2 * r + 1) * width + x] = l - hi;
    }
  }
  return out;
}
