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
}

/** A denoiser from a function of (x, sigma), carrying a model and grid. */
export function denoiserOf(model: DiscreteSchedule, fn: (x: Latents, sigma: number) => Promise<Latents>, grid?: DiffusersGrid): Denoiser {
  return Object.assign(fn, grid ? { model, grid } : { model });
}

/** Another function of (x, sigma) with the model and grid of `inner` (a wrapper around it, for instance). */
export function wrapDenoiser(inner: Denoiser, fn: (x: Latents, sigma: number) => Promise<Latents>): Denoiser {
  return denoiserOf(inner.model, fn, inner.grid);
}

/**
 * Wraps a network into a k-diffusion denoiser (x, sigma) -> x0 estimate, like k-diffusion's
 * DiscreteEpsDDPMDenoiser / DiscreteVDDPMDenoiser. Latents stay float32; scalars are float64.
 */
export function makeDenoiser(model: DiscreteSchedule, net: NetFn, opts: DenoiserOptions = {}): Denoiser {
  const timestepOf = opts.timestepOf ?? model.sigmaToT;
  return denoiserOf(model, async (x: Latents, sigma: number): Promise<Latents> => {
    const cIn = 1 / Math.sqrt(sigma * sigma + 1);
    const xIn = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) xIn[i] = x[i] * cIn;
    const out = await net(xIn, timestepOf(sigma), sigma);
    if (out.length !== x.length) throw new Error(`network returned ${out.length} values for ${x.length} latents`);
    const denoised = new Float32Array(x.length);
    switch (model.predictionType) {
      case 'epsilon':
        for (let i = 0; i < x.length; i++) denoised[i] = x[i] - sigma * out[i];
        break;
      case 'v_prediction': {
        // x0 = c_skip * x + c_out * v with c_skip = 1/(sigma²+1), c_out = -sigma/sqrt(sigma²+1).
        const cSkip = 1 / (sigma * sigma + 1);
        const cOut = -sigma * cIn;
        for (let i = 0; i < x.length; i++) denoised[i] = out[i] * cOut + x[i] * cSkip;
        break;
      }
      case 'sample':
        denoised.set(out);
        break;
    }
    return denoised;
  }, opts.grid);
}
