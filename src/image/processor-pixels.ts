import type { Raster } from './raster.js';

/**
 * An RGB raster as transformers' image processors hand it to a vision model: planes [3, h, w],
 * each sample rescaled in float64 and stored as float32 (`rescale`), then normalised in float32
 * (`(x - mean) / std`), the arithmetic of transformers' rescale() and normalize() on numpy arrays.
 */
export function normalizedPlanes(
  image: Raster,
  rescale: number | undefined,
  norm: { mean: readonly number[]; std: readonly number[] } | undefined,
): Float32Array {
  const plane = image.width * image.height;
  const data = new Float32Array(3 * plane);
  const f = Math.fround;
  for (let c = 0; c < 3; c++) {
    const mean = norm ? f(norm.mean[c]!) : 0;
    const std = norm ? f(norm.std[c]!) : 1;
    for (let i = 0; i < plane; i++) {
      let v = image.data[i * image.channels + c]!;
      if (rescale !== undefined) v = f(v * rescale);
      if (norm) v = f(f(v - mean) / std);
      data[c * plane + i] = v;
    }
  }
  return data;
}
