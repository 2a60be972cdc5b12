// PIL's Image.resize(size, filter, box) for 8-bit images, bit for bit, with its LANCZOS, BICUBIC and BILINEAR filters.
//
// A1111 (resize_image) and diffusers (VaeImageProcessor.resize) resize with PIL LANCZOS, and fill the bars
// of resize-and-fill with PIL's default filter, BICUBIC. sharp's lanczos3 is a different implementation
// (other kernel normalisation, fixed-point and rounding) and differs by a few levels on many pixels, so
// matching the references needs PIL's algorithm: separable, horizontal pass first; per output pixel a
// filter window widened by the downscale factor, weights normalised to sum 1 in double, converted to
// 22-bit fixed point; each pass rounds and clips to 8 bits (libImaging/Resample.c).

import { type Raster, createRaster } from './raster.js';

const PRECISION_BITS = 32 - 8 - 2;

export type PilFilter = 'lanczos' | 'bicubic' | 'bilinear';

/** PIL's resampling filter numbers (Image.Resampling), as transformers' processor configs store them. */
export const PIL_FILTER_NUMBERS: Readonly<Record<number, PilFilter>> = { 1: 'lanczos', 2: 'bilinear', 3: 'bicubic' };

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

const lanczos = (x: number): number => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0);

// Keys' cubic with a = -0.5, written as PIL evaluates it.
function bicubic(x: number): number {
  const a = -0.5;
  const t = x < 0 ? -x : x;
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

const bilinear = (x: number): number => {
  const t = x < 0 ? -x : x;
  return t < 1 ? 1 - t : 0;
};

const FILTERS: Record<PilFilter, { fn: (x: number) => number; support: number }> = {
  lanczos: { fn: lanczos, support: 3 },
  bicubic: { fn: bicubic, support: 2 },
  bilinear: { fn: bilinear, support: 1 },
};

/** A box edge as PIL stores it: C float. */
export type Box = readonly [left: number, top: number, right: number, bottom: number];

interface Coefficients {
  ksize: number;
  /** first source index and tap count per output index */
  bounds: Int32Array;
  /** ksize fixed-point weights per output index */
  weights: Int32Array;
}

// C's (int) conversion truncates toward zero.
const cInt = (v: number): number => Math.trunc(v);

function precompute(inSize: number, in0: number, in1: number, outSize: number, filter: PilFilter): Coefficients {
  const { fn, support: baseSupport } = FILTERS[filter];
  const scale = Math.fround(Math.fround(in1) - Math.fround(in0)) / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = baseSupport * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = Math.fround(in0) + (xx + 0.5) * scale;
    const xmin = Math.max(0, cInt(center - support + 0.5));
    const xmax = Math.min(inSize, cInt(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x]! / ww : k[x]!;
      weights[xx * ksize + x] = cInt(w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, weights };
}

// clip8: arithmetic shift, then clamp (PIL's lookup table covers the reachable range).
const clip8 = (ss: number): number => {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
};

// Sums are exact integers in doubles and stay inside int32 (PIL keeps two spare bits for the negative
// lobes), so `>>` in clip8 reproduces C's shift.
function horizontal(src: Raster, rowOffset: number, rows: number, outWidth: number, c: Coefficients): Raster {
  const ch = src.channels;
  const out = createRaster(outWidth, rows, ch);
  const half = 1 << (PRECISION_BITS - 1);
  for (let yy = 0; yy < rows; yy++) {
    const rowBase = (yy + rowOffset) * src.width * ch;
    for (let xx = 0; xx < outWidth; xx++) {
      const xmin = c.bounds[xx * 2]!;
      const xmax = c.bounds[xx * 2 + 1]!;
      const kBase = xx * c.ksize;
      for (let b = 0; b < ch; b++) {
        let ss = half;
        for (let x = 0; x < xmax; x++) ss += src.data[rowBase + (x + xmin) * ch + b]! * c.weights[kBase + x]!;
        out.data[(yy * outWidth + xx) * ch + b] = clip8(ss);
      }
    }
  }
  return out;
}

function vertical(src: Raster, outHeight: number, c: Coefficients, rowShift: number): Raster {
  const ch = src.channels;
  const stride = src.width * ch;
  const out = createRaster(src.width, outHeight, ch);
  const half = 1 << (PRECISION_BITS - 1);
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = c.bounds[yy * 2]! - rowShift;
    const ymax = c.bounds[yy * 2 + 1]!;
    const kBase = yy * c.ksize;
    for (let i = 0; i < stride; i++) {
      let ss = half;
      for (let y = 0; y < ymax; y++) ss += src.data[(y + ymin) * stride + i]! * c.weights[kBase + y]!;
      out.data[yy * stride + i] = clip8(ss);
    }
  }
  return out;
}

/**
 * PIL's Image.resize((width, height), filter, box). `box` is a sub-rectangle of the source (edges may be
 * fractional; a zero-height or zero-width box blends the 2-3 edge rows/columns, which A1111's
 * resize-and-fill relies on). Each channel is resampled independently, as PIL does for "L" and "RGB".
 * (PIL premultiplies "RGBA" by alpha first; that path is not reproduced: split alpha off.)
 */
export function pilResize(
  src: Raster,
  width: number,
  height: number,
  filter: PilFilter = 'lanczos',
  box: Box = [0, 0, src.width, src.height],
): Raster {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new RangeError(`invalid resize target ${width}x${height}`);
  }
  const [left, top, right, bottom] = box;
  if (left < 0 || top < 0 || right > src.width || bottom > src.height || right - left < 0 || bottom - top < 0) {
    throw new RangeError(`resize box [${box.join(', ')}] is outside the ${src.width}x${src.height} source`);
  }
  const wholeImage = left === 0 && top === 0 && right === width && bottom === height;
  if (width === src.width && height === src.height && wholeImage) {
    return { ...src, data: src.data.slice() };
  }
  const needHorizontal = width !== src.width || left !== 0 || right !== width;
  const needVertical = height !== src.height || top !== 0 || bottom !== height;
  const vert = precompute(src.height, top, bottom, height, filter);
  // Only the source rows the vertical pass reads go through the horizontal pass.
  const firstRow = vert.bounds[0]!;
  const lastRow = vert.bounds[(height - 1) * 2]! + vert.bounds[(height - 1) * 2 + 1]!;
  let img = src;
  let rowShift = 0;
  if (needHorizontal) {
    img = horizontal(src, firstRow, lastRow - firstRow, width, precompute(src.width, left, right, width, filter));
    rowShift = firstRow;
  }
  if (needVertical) img = vertical(img, height, vert, rowShift);
  return img === src ? { ...src, data: src.data.slice() } : img;
}

/**
 * PIL's Image.resize((width, height), NEAREST) of the whole picture (ImagingScaleAffine): source
 * column floor(x0) with x0 = step / 2, advanced by step = in / out in double per output pixel.
 */
export function pilNearest(src: Raster, width: number, height: number): Raster {
  const pick = (input: number, output: number): Int32Array => {
    const step = input / output;
    const out = new Int32Array(output);
    let at = step * 0.5;
    for (let i = 0; i < output; i++, at += step) out[i] = Math.trunc(at);
    return out;
  };
  const xs = pick(src.width, width);
  const ys = pick(src.height, height);
  const c = src.channels;
  const data = new Uint8Array(width * height * c);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (ys[y]! * src.width + xs[x]!) * c;
      data.set(src.data.subarray(from, from + c), (y * width + x) * c);
    }
  }
  return { width, height, channels: c, data };
}
