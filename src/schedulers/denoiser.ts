import type { Denoiser, DiffusersGrid, DiscreteSchedule, Latents } from './types.js';

/**
 * The network as the sampling core sees it: the model input (x scaled by c_in, so the
 * variance-preserving latents the network was trained on), the timestep and the sigma; it returns
 * the raw prediction (epsilon, v or x0 per the model's prediction type). Classifier-free guidance,
 * and guidance rescale (which needs both predictions), happen inside it.
 */
export type NetFn = (xIn: Float32Array, t: number, sigma: number) => Promise<Float32Array>;

export interface DenoiserOptions {
  /**
   * The timestep the network sees at a sigma. Defaults to the model's log-sigma interpolation
   * (k-diffusion); a plan passes diffusers' own timesteps for the `normal` schedule.
   */
  timestepOf?: (sigma: number) => number;
  /** diffusers' grid when the sigmas are a scheduler's own timesteps (a plan sets it). */
  grid?: DiffusersGrid;
  /** Images in the latents, default 1. */
  batch?: number;
}

/** A denoiser from a function of (x, sigma), carrying a model and, when given, a grid and batch size. */
export function denoiserOf(
  model: DiscreteSchedule,
  fn: (x: Latents, sigma: number) => Promise<Latents>,
  extra: Pick<DenoiserOptions, 'grid' | 'batch'> = {},
): Denoiser {
  return Object.assign(fn, { model, ...(extra.grid ? { grid: extra.grid } : {}), ...(extra.batch ? { batch: extra.batch } : {}) });
}

/** Another function of (x, sigma) with the model, grid and batch size of `inner` (a wrapper around it, for instance). */
export function wrapDenoiser(inner: Denoiser, fn: (x: Latents, sigma: number) => Promise<Latents>): Denoiser {
  return denoiserOf(inner.model, fn, { ...(inner.grid ? { grid: inner.grid } : {}), ...(inner.batch ? { batch: inner.batch } : {}) });
}

/**
 * Wraps a network into a k-diffusion denoiser (x, sigma) -> x0 estimate, like k-diffusion's
 * DiscreteEpsDDPMDenoiser / DiscreteVDDPMDenoiser. Latents stay float32; scalars are float64.
 */
export function makeDenoiser(model: DiscreteSchedule, net: NetFn, opts: DenoiserOptions = {}): Denoiser {
  const timestepOf = opts.timestepOf ?? model.sigmaToT;
  return denoiserOf(model, async (x: Latents, sigma: number): Promise<Latents> => {
    // diffusers' scale_model_input: x / sqrt(sigma² + 1) in float32 (at sigma 4096, zero-SNR, sigma² + 1 rounds to sigma²).
    const f32 = Math.fround;
    const s = f32(sigma);
    const s2p1 = f32(f32(s * s) + 1);
    const norm = f32(Math.sqrt(s2p1));
    const xIn = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) xIn[i] = x[i] / norm;
    const out = await net(xIn, timestepOf(sigma), sigma);
    if (out.length !== x.length) throw new Error(`network returned ${out.length} values for ${x.length} latents`);
    const denoised = new Float32Array(x.length);
    switch (model.predictionType) {
      case 'epsilon':
        for (let i = 0; i < x.length; i++) denoised[i] = x[i] - f32(s * out[i]);
        break;
      case 'v_prediction': {
        // x0 = v * c_out + x / (sigma² + 1) with c_out = -sigma / sqrt(sigma² + 1), float32 op by op as
        // diffusers' Euler writes it: at a zero-SNR sigma (~4096) the two terms cancel to O(1).
        const cOut = f32(-s / norm);
        for (let i = 0; i < x.length; i++) denoised[i] = f32(out[i] * cOut) + f32(x[i] / s2p1);
        break;
      }
      case 'sample':
        denoised.set(out);
        break;
    }
    return denoised;
  }, opts);
}
