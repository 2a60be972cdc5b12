/**
 * What diffusers' DDIM, DDPM and DDIMInverse schedulers do to the predicted x0 before stepping:
 * clip_sample's clamp, or thresholding's dynamic threshold (Imagen, arXiv:2205.11487): per image,
 * s = the `ratio` quantile of |x0| clamped to [1, maxValue], then x0 clamped to [-s, s] and
 * divided by s. The quantile is torch.quantile's, whose rank and interpolation weight are float32.
 */
import type { X0Limit } from './types.js';

const f32 = Math.fround;

/** torch.quantile(values, q) of one image in float32: linear between the neighbouring order statistics (lerp). */
function quantile32(values: Float64Array, q: number): number {
  const sorted = Float32Array.from(values).sort();
  const rank = f32(f32(q) * (sorted.length - 1));
  const below = Math.floor(rank);
  const weight = f32(rank - below);
  const a = sorted[below];
  const b = sorted[Math.min(below + 1, sorted.length - 1)];
  // at::lerp: from the nearer end, so a weight of 1 gives b exactly.
  return weight < 0.5 ? f32(a + f32(weight * f32(b - a))) : f32(b - f32(f32(b - a) * f32(1 - weight)));
}

/** x0 after the model's X0Limit; `batch` images of equal size. Returns x0 itself when there is nothing to do. */
export function limitX0(x0: Float64Array, limit: X0Limit, batch = 1): Float64Array {
  if (limit.kind === 'none') return x0;
  if (limit.kind === 'clip') return x0.map((v) => Math.min(Math.max(v, -limit.range), limit.range));
  const size = x0.length / batch;
  const out = new Float64Array(x0.length);
  for (let b = 0; b < batch; b++) {
    const image = x0.subarray(b * size, (b + 1) * size);
    const s = Math.min(Math.max(quantile32(image.map(Math.abs), limit.ratio), 1), limit.maxValue);
    for (let i = 0; i < size; i++) out[b * size + i] = f32(Math.min(Math.max(image[i], -s), s)) / s;
  }
  return out;
}
