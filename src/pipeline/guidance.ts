/**
 * Classifier-free guidance on the model output, as diffusers computes it in float32:
 * uncond + scale * (cond - uncond), then optionally guidance rescale (Lin et al. 2023,
 * diffusers' rescale_noise_cfg), which matches the per-sample standard deviation of the
 * guided prediction to the conditional one.
 */
export function applyGuidance(
  uncond: Float32Array,
  cond: Float32Array,
  scale: number,
  rescale: number,
  batch: number,
): Float32Array {
  const s = Math.fround(scale);
  const out = new Float32Array(cond.length);
  for (let i = 0; i < out.length; i++) {
    out[i] = uncond[i]! + Math.fround(s * Math.fround(cond[i]! - uncond[i]!));
  }
  if (rescale > 0) rescaleGuidance(out, cond, rescale, batch);
  return out;
}

function rescaleGuidance(guided: Float32Array, cond: Float32Array, rescale: number, batch: number): void {
  const n = guided.length / batch;
  for (let b = 0; b < batch; b++) {
    const g = guided.subarray(b * n, (b + 1) * n);
    const factor = std(cond.subarray(b * n, (b + 1) * n)) / std(g);
    for (let i = 0; i < n; i++) {
      const rescaled = g[i]! * factor;
      g[i] = rescale * rescaled + (1 - rescale) * g[i]!;
    }
  }
}

/** Unbiased standard deviation, as torch.std's default. */
function std(values: Float32Array): number {
  let mean = 0;
  for (const v of values) mean += v;
  mean /= values.length;
  let sq = 0;
  for (const v of values) sq += (v - mean) ** 2;
  return Math.sqrt(sq / (values.length - 1));
}
