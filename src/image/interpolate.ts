// torch.nn.functional.interpolate on float32 NCHW tensors, as PyTorch's CPU kernels compute it
// (aten/src/ATen/native/cpu/UpSampleKernel.cpp, size given, align_corners False): the modes
// AUTOMATIC1111's latent upscalers use (shared.latent_upscale_modes). Every product and sum is
// rounded to float32 where the kernel's float arithmetic rounds; the index and weight arithmetic
// that the kernel does in double is done in double.

export type InterpolateMode = 'bilinear' | 'bicubic' | 'nearest' | 'nearest-exact';

const f = Math.fround;

/** One axis's taps: for each output index, the first input index and the weights of consecutive inputs (clamped for bicubic). */
interface AxisTaps {
  /** Input indices per output index, `taps` each. */
  index: Int32Array;
  weight: Float32Array;
  taps: number;
}

/**
 * Resizes [n, c, h, w] to [n, c, outH, outW]. `antialias` (bilinear and bicubic only) is PIL-style
 * resampling: a separable filter widened by the scale when shrinking, bicubic with a = -0.5
 * instead of -0.75, the width pass first, each pass rounded to float32.
 */
export function interpolate(
  x: Float32Array,
  dims: readonly [number, number, number, number],
  outH: number,
  outW: number,
  mode: InterpolateMode,
  antialias = false,
): Float32Array {
  const [n, c, h, w] = dims;
  if (x.length !== n * c * h * w) throw new RangeError(`interpolate: ${x.length} values, dims say ${n * c * h * w}`);
  if (antialias && (mode === 'nearest' || mode === 'nearest-exact')) throw new RangeError('interpolate: antialias applies to bilinear and bicubic only');
  if (mode === 'nearest' || mode === 'nearest-exact') return nearest(x, n * c, h, w, outH, outW, mode === 'nearest-exact');
  if (antialias) {
    const wide = separablePass(x, n * c * h, w, outW, filterTaps(w, outW, mode));
    return transposePass(wide, n * c, h, outW, outH, filterTaps(h, outH, mode));
  }
  const taps = mode === 'bilinear' ? linearTaps : cubicTaps;
  return twoAxis(x, n * c, h, w, outH, outW, taps(h, outH), taps(w, outW));
}

/** area_pixel_compute_scale without align_corners or a scale factor: input / output in float32. */
const axisScale = (input: number, output: number): number => f(input / output);

/** area_pixel_compute_source_index (align_corners False), in float32; linear clamps at 0, cubic does not. */
function sourceIndex(scale: number, dst: number, cubic: boolean): number {
  const v = f(f(scale * f(dst + 0.5)) - 0.5);
  return !cubic && v < 0 ? 0 : v;
}

/** guard_index_and_lambda: floor index (capped at the last input) and the float32 fraction in [0, 1]. */
function guard(real: number, size: number): [number, number] {
  const index = Math.min(Math.floor(real), size - 1);
  const lambda = Math.min(Math.max(f(real - index), 0), 1);
  return [index, lambda];
}

function linearTaps(input: number, output: number): AxisTaps {
  const scale = axisScale(input, output);
  const index = new Int32Array(output * 2);
  const weight = new Float32Array(output * 2);
  for (let i = 0; i < output; i++) {
    const [i0, lambda] = guard(sourceIndex(scale, i, false), input);
    index[2 * i] = i0;
    index[2 * i + 1] = i0 < input - 1 ? i0 + 1 : i0;
    weight[2 * i] = f(1 - lambda);
    weight[2 * i + 1] = lambda;
  }
  return { index, weight, taps: 2 };
}

// upsample_bicubic2d's cubic convolution (A = -0.75), in float32.
const cubic1 = (x: number, a: number): number => f(f(f(f(f(f(a + 2) * x) - f(a + 3)) * x) * x) + 1);
const cubic2 = (x: number, a: number): number => f(f(f(f(f(f(a * x) - f(5 * a)) * x) + f(8 * a)) * x) - f(4 * a));

function cubicTaps(input: number, output: number): AxisTaps {
  const scale = axisScale(input, output);
  const a = -0.75;
  const index = new Int32Array(output * 4);
  const weight = new Float32Array(output * 4);
  for (let i = 0; i < output; i++) {
    const [i0, t] = guard(sourceIndex(scale, i, true), input);
    const coeffs = [cubic2(f(t + 1), a), cubic1(t, a), cubic1(f(1 - t), a), cubic2(f(f(1 - t) + 1), a)];
    for (let j = 0; j < 4; j++) {
      index[4 * i + j] = Math.max(Math.min(i0 - 1 + j, input - 1), 0);
      weight[4 * i + j] = coeffs[j]!;
    }
  }
  return { index, weight, taps: 4 };
}

/** out[y][x] = Σ_h (Σ_w in · w_w) · w_h, as the generic kernel nests its taps (height outermost). */
function twoAxis(x: Float32Array, planes: number, h: number, w: number, outH: number, outW: number, th: AxisTaps, tw: AxisTaps): Float32Array {
  const out = new Float32Array(planes * outH * outW);
  for (let p = 0; p < planes; p++) {
    const src = p * h * w;
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        let acc = 0;
        for (let jh = 0; jh < th.taps; jh++) {
          const row = src + th.index[oy * th.taps + jh]! * w;
          let inner = 0;
          for (let jw = 0; jw < tw.taps; jw++) inner = f(inner + f(x[row + tw.index[ox * tw.taps + jw]!]! * tw.weight[ox * tw.taps + jw]!));
          acc = f(acc + f(inner * th.weight[oy * th.taps + jh]!));
        }
        out[(p * outH + oy) * outW + ox] = acc;
      }
    }
  }
  return out;
}

/** upsample_nearest2d / _upsample_nearest_exact2d: floor(dst · scale) or floor((dst + 0.5) · scale), scale in float32. */
function nearest(x: Float32Array, planes: number, h: number, w: number, outH: number, outW: number, exact: boolean): Float32Array {
  const pick = (input: number, output: number): Int32Array => {
    const scale = axisScale(input, output);
    return Int32Array.from({ length: output }, (_, i) => Math.min(Math.floor(exact ? f((i + 0.5) * scale) : f(i * scale)), input - 1));
  };
  const ys = pick(h, outH);
  const xs = pick(w, outW);
  const out = new Float32Array(planes * outH * outW);
  for (let p = 0; p < planes; p++) {
    for (let oy = 0; oy < outH; oy++) {
      const row = p * h * w + ys[oy]! * w;
      for (let ox = 0; ox < outW; ox++) out[(p * outH + oy) * outW + ox] = x[row + xs[ox]!]!;
    }
  }
  return out;
}

// ---- antialias: the separable kernel (_compute_weights_aa) ------------------------------------

const linearFilter = (x: number): number => {
  const v = Math.abs(x);
  return v < 1 ? f(1 - v) : 0;
};
const cubicFilter = (x: number): number => {
  const v = Math.abs(x);
  if (v < 1) return cubic1(v, -0.5);
  if (v < 2) return cubic2(v, -0.5);
  return 0;
};

/**
 * Each output index's window and normalised weights: centre scale · (i + 0.5), support 1 (linear)
 * or 2 (cubic) widened by the scale when shrinking; the window's float arithmetic as the kernel's
 * (float32 centre and weights, the index bounds truncated from double).
 */
function filterTaps(input: number, output: number, mode: 'bilinear' | 'bicubic'): AxisTaps {
  const scale = axisScale(input, output);
  const interp = mode === 'bilinear' ? 2 : 4;
  const filter = mode === 'bilinear' ? linearFilter : cubicFilter;
  const support = f(scale >= 1 ? interp * 0.5 * scale : interp * 0.5);
  const taps = Math.ceil(support) * 2 + 1;
  const invscale = scale >= 1 ? f(1 / scale) : 1;
  const index = new Int32Array(output * taps);
  const weight = new Float32Array(output * taps);
  for (let i = 0; i < output; i++) {
    const center = f(scale * (i + 0.5));
    const xmin = Math.max(Math.trunc(f(center - support) + 0.5), 0);
    const xsize = Math.min(Math.max(Math.min(Math.trunc(f(center + support) + 0.5), input) - xmin, 0), taps);
    let total = 0;
    const ws: number[] = [];
    for (let j = 0; j < xsize; j++) {
      const w = filter(f((f(j + xmin - center) + 0.5) * invscale));
      ws.push(w);
      total = f(total + w);
    }
    for (let j = 0; j < taps; j++) {
      // Past the window: weight 0 on a valid index, as the kernel pads its weights.
      index[i * taps + j] = j < xsize ? xmin + j : xmin;
      weight[i * taps + j] = j < xsize && total !== 0 ? f(ws[j]! / total) : j < xsize ? ws[j]! : 0;
    }
  }
  return { index, weight, taps };
}

/** One pass along the contiguous axis: rows of `width` → rows of `outWidth`. */
function separablePass(x: Float32Array, rows: number, width: number, outWidth: number, t: AxisTaps): Float32Array {
  const out = new Float32Array(rows * outWidth);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outWidth; o++) out[r * outWidth + o] = tapSum(x, r * width, 1, t, o);
  }
  return out;
}

/** The pass along the height: each plane's columns resampled from `h` rows to `outH`. */
function transposePass(x: Float32Array, planes: number, h: number, w: number, outH: number, t: AxisTaps): Float32Array {
  const out = new Float32Array(planes * outH * w);
  for (let p = 0; p < planes; p++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < w; ox++) out[(p * outH + oy) * w + ox] = tapSum(x, p * h * w + ox, w, t, oy);
    }
  }
  return out;
}

/** Σ_j src[(index_j) · stride] · weight_j from the first tap on, in float32. */
function tapSum(x: Float32Array, base: number, stride: number, t: AxisTaps, o: number): number {
  let acc = 0;
  for (let j = 0; j < t.taps; j++) {
    const wt = t.weight[o * t.taps + j]!;
    acc = j === 0 ? f(x[base + t.index[o * t.taps]! * stride]! * wt) : f(acc + f(x[base + t.index[o * t.taps + j]! * stride]! * wt));
  }
  return acc;
}
