/**
 * DDIM inversion, diffusers' DDIMInverseScheduler: the deterministic DDIM step run upwards, from a
 * picture's latents to the noise that DDIM (eta 0) maps back to them — what `diffuse invert`
 * needs. At each timestep t of its ascending list the network sees the latents of the level below
 * (t - num_train_timesteps // steps, or set_alpha_to_one's level before the first) labelled t, and
 * the step moves them up to t. clip_sample applies to the predicted x0 as in diffusers.
 *
 * Unlike the samplers, ddimInverse takes and returns diffusers' own latents: the clean latents in,
 * the x_vp at the last timestep out, which a DDIM run starts from as its initial noise.
 */
import { makeDenoiser, type NetFn } from './denoiser.js';
import { discreteSchedule, type SchedulerConfig } from './model.js';
import { numpyArangeDown } from './numpy.js';
import { roundHalfEven } from '../round-half-even.js';
import type { Denoiser, Sampler } from './types.js';
import { diffusersPrediction, diffusersStride, fromVp, isOnGrid, pointAtSigma, pointAtTimestep } from './vp-grid.js';
import { limitX0 } from './vp-x0-limit.js';

/**
 * sigmas: ascending, [the level below the first timestep, then each timestep's]; with diffusers'
 * grid on the denoiser the level below a timestep is t - stride, as diffusers computes it.
 */
export const ddimInverse: Sampler = async (denoise, x, sigmas, options) => {
  const { model } = denoise;
  const stride = diffusersStride(denoise);
  const steps = sigmas.length - 1;
  let xvp = Float64Array.from(x);
  for (let i = 0; i < steps; i++) {
    const to = pointAtSigma(model, sigmas[i + 1]);
    const below = stride !== undefined && isOnGrid(to) ? pointAtTimestep(model, Math.min(to.t - stride, model.numTrainTimesteps - 1)) : pointAtSigma(model, sigmas[i]);
    // The network sees x_vp itself at timestep t: the denoiser's c_in at sigma_t undoes fromVp.
    const xIn = fromVp(xvp, to.sigma);
    const denoised = await denoise(xIn, to.sigma);
    // Its output read with the lower level's alpha, as DDIMInverseScheduler.step does.
    const { x0: raw, eps } = diffusersPrediction(model, xvp, { ...to, alpha: below.alpha }, xIn, denoised);
    const x0 = limitX0(raw, model.x0Limit, denoise.batch);
    const cX0 = Math.sqrt(to.alpha);
    const cEps = Math.sqrt(1 - to.alpha);
    xvp = x0.map((v, k) => cX0 * v + cEps * eps[k]);
    options.onStep?.({ step: i, total: steps, sigma: sigmas[i + 1], x: Float32Array.from(xvp), denoised });
  }
  return Float32Array.from(xvp);
};

export interface InversionPlan {
  /** Ascending: the starting level, then the sigma of each timestep the inversion climbs to. */
  sigmas: Float64Array;
  /** Its timesteps, ascending. */
  timesteps: Float64Array;
  sampler: Sampler;
  /** The network as ddimInverse's denoiser: each timestep's own t, diffusers' stride. */
  denoiser(net: NetFn, batch?: number): Denoiser;
}

/** DDIMInverseScheduler.set_timesteps: leading (steps_offset added) or trailing; it refuses linspace. */
function inverseTimesteps(spacing: string, T: number, steps: number, offset: number): Float64Array {
  if (spacing === 'leading') return Float64Array.from({ length: steps }, (_, i) => i * Math.floor(T / steps) + offset);
  if (spacing === 'trailing') return numpyArangeDown(T, T / steps).reverse().map((t) => roundHalfEven(t) - 1);
  throw new Error(`DDIM inversion supports leading and trailing timestep_spacing, not "${spacing}"`);
}

/** The inversion of a model (its scheduler_config.json read as DDIMInverseScheduler reads it) in `steps` steps. */
export function planInversion(config: SchedulerConfig, steps: number): InversionPlan {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`steps must be a positive integer, got ${steps}`);
  const model = discreteSchedule(config, { class: 'DDIMInverseScheduler' });
  const timesteps = inverseTimesteps(model.timestepSpacing, model.numTrainTimesteps, steps, model.stepsOffset);
  const start = pointAtTimestep(model, timesteps[0] - Math.floor(model.numTrainTimesteps / steps));
  const startSigma = Math.sqrt((1 - start.alpha) / start.alpha);
  const sigmas = Float64Array.from([startSigma, ...Array.from(timesteps, (t) => model.sigmas[t])]);
  const own = new Map(Array.from(timesteps, (t) => [model.sigmas[t], t] as const));
  return {
    sigmas,
    timesteps,
    sampler: ddimInverse,
    denoiser: (net, batch) =>
      makeDenoiser(model, net, { timestepOf: (sigma) => own.get(sigma) ?? model.sigmaToT(sigma), grid: { inferenceSteps: steps }, ...(batch ? { batch } : {}) }),
  };
}

