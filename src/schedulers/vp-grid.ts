/**
 * Shared ground for the diffusers VP schedulers (DDIM, PNDM, DDPM, LCM, ...): where a sigma sits
 * on the model's training timesteps, the alpha_cumprod diffusers uses there, and the conversions
 * between sigma-space latents (x = x0 + sigma * eps) and diffusers' VP latents
 * (x_vp = sqrt(alpha) * x0 + sqrt(1 - alpha) * eps = sqrt(alpha) * x).
 *
 * Convention for results: when the walk ends at sigma 0, a VP sampler returns the latents diffusers
 * hands the VAE (its last prev_sample), whatever alpha the scheduler lands on (finalAlphaCumprod
 * for DDIM/PNDM, alphas_cumprod[0] for DEIS, 1 for UniPC/LCM/DDPM). Ending above 0, it returns
 * ordinary sigma-space latents at the last sigma.
 */
import type { DiscreteSchedule, Latents, SamplerOptions } from './types.js';

/** A noise level as diffusers' VP schedulers index it. */
export interface VpPoint {
  /** Sigma-space noise level; 0 past the last timestep. */
  readonly sigma: number;
  /** alpha_cumprod there: x_vp = sqrt(alpha) * x. */
  readonly alpha: number;
  /** Training timestep: an integer on the grid, fractional off it, -1 past the last timestep. */
  readonly t: number;
}

/** A sigma whose timestep is this close to an integer is that training timestep. */
const GRID_TOLERANCE = 1e-4;

/**
 * The point of a training timestep. Below 0 (diffusers' "previous timestep" of the last step)
 * DDIM and PNDM use final_alpha_cumprod.
 */
export function pointAtTimestep(model: DiscreteSchedule, t: number): VpPoint {
  if (t < 0) return { sigma: 0, alpha: model.finalAlphaCumprod, t: -1 };
  if (Number.isInteger(t)) return { sigma: model.sigmas[t], alpha: model.alphasCumprod[t], t };
  const sigma = model.tToSigma(t);
  return { sigma, alpha: 1 / (1 + sigma * sigma), t };
}

/** The point of a sigma of the walk; sigma 0 is "after the last timestep" (finalAlphaCumprod). */
export function pointAtSigma(model: DiscreteSchedule, sigma: number): VpPoint {
  if (!(sigma > 0)) return { sigma: 0, alpha: model.finalAlphaCumprod, t: -1 };
  const t = model.sigmaToT(sigma);
  const rounded = Math.round(t);
  if (Math.abs(t - rounded) < GRID_TOLERANCE) return { sigma, alpha: model.alphasCumprod[rounded], t: rounded };
  return { sigma, alpha: 1 / (1 + sigma * sigma), t };
}

export function isOnGrid(point: VpPoint): boolean {
  return point.t >= 0 && Number.isInteger(point.t);
}

/**
 * num_train_timesteps // num_inference_steps when the caller tells us diffusers' step count
 * (see the inferenceSteps need in notes): DDIM and PNDM step by it rather than to the next sigma.
 */
export function diffusersStride(options: SamplerOptions): number | undefined {
  const steps = (options as SamplerOptions & { inferenceSteps?: number }).inferenceSteps;
  return steps ? Math.floor(options.model.numTrainTimesteps / steps) : undefined;
}

/**
 * Where a DDIM/PNDM step from sigmas[i] lands: diffusers' t - stride on the grid when the stride is
 * known, else the next sigma (identical for leading spacing and step counts dividing the range).
 */
export function ddimTarget(model: DiscreteSchedule, sigmas: Float64Array, i: number, stride: number | undefined): VpPoint {
  const from = pointAtSigma(model, sigmas[i]);
  if (stride !== undefined && isOnGrid(from)) return pointAtTimestep(model, from.t - stride);
  return pointAtSigma(model, sigmas[i + 1]);
}

/** x_vp = sqrt(alpha) * x. */
export function toVp(x: ArrayLike<number>, alpha: number): Float64Array {
  const scale = Math.sqrt(alpha);
  return Float64Array.from(x, (v) => v * scale);
}

/** Sigma-space latents of VP latents carrying alpha. */
export function fromVp(xvp: Float64Array, alpha: number): Latents {
  const scale = 1 / Math.sqrt(alpha);
  return Float32Array.from(xvp, (v) => v * scale);
}

/**
 * The sampler result for VP latents that are diffusers' state after the last step: as they are
 * when the walk ends at 0 (what diffusers decodes), else in sigma space at the last sigma.
 */
export function vpResult(xvp: Float64Array, model: DiscreteSchedule, sigmaLast: number): Latents {
  return sigmaLast > 0 ? fromVp(xvp, pointAtSigma(model, sigmaLast).alpha) : Float32Array.from(xvp);
}

/**
 * What the network itself returned for a denoiser result: v for v-prediction models, else epsilon
 * (diffusers' PNDM rejects x0-prediction models; eps is the natural stand-in). Exact inverses of
 * makeDenoiser's conversions, in sigma terms. PNDM needs the raw outputs because diffusers
 * combines them across steps before converting, which for v differs from combining eps.
 */
export function networkOutput(model: DiscreteSchedule, x: Latents, sigma: number, x0: Latents): Float64Array {
  const out = new Float64Array(x.length);
  if (model.predictionType === 'v_prediction') {
    const cSkip = 1 / (sigma * sigma + 1);
    const inv = Math.sqrt(sigma * sigma + 1) / sigma;
    for (let i = 0; i < x.length; i++) out[i] = (x[i] * cSkip - x0[i]) * inv;
  } else {
    for (let i = 0; i < x.length; i++) out[i] = (x[i] - x0[i]) / sigma;
  }
  return out;
}
