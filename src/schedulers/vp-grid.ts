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
import type { Denoiser, DiscreteSchedule, Latents } from './types.js';

/** A noise level as diffusers' VP schedulers index it. */
export interface VpPoint {
  /** Sigma-space noise level; 0 past the last timestep. */
  readonly sigma: number;
  /**
   * The alpha_cumprod diffusers' formulas use there: alphas_cumprod[t] on the grid (0 at a zero
   * terminal SNR), 1 / (1 + sigma²) off it. Latents convert with sigma itself (toVp, fromVp).
   */
  readonly alpha: number;
  /** Training timestep: an integer on the grid, fractional off it, -1 past the last timestep. */
  readonly t: number;
}

/** A sigma whose timestep is this close to an integer is that training timestep. */
const GRID_TOLERANCE = 1e-4;

/**
 * With rescale_betas_zero_snr the last alpha_cumprod is 0 (infinite sigma). The model keeps
 * diffusers' Euler/UniPC/DPM-Solver stand-in 2**-24 so sigma stays finite; DDIM, DDPM and LCM
 * compute with the true 0, so at that timestep their formulas get 0 back.
 */
const ZERO_SNR_STANDIN = 2 ** -24;

function diffusersAlpha(model: DiscreteSchedule, t: number): number {
  const alpha = model.alphasCumprod[t];
  return t === model.numTrainTimesteps - 1 && alpha === ZERO_SNR_STANDIN ? 0 : alpha;
}

/**
 * The point of a training timestep. Below 0 (diffusers' "previous timestep" of the last step)
 * DDIM and PNDM use final_alpha_cumprod.
 */
export function pointAtTimestep(model: DiscreteSchedule, t: number): VpPoint {
  if (t < 0) return { sigma: 0, alpha: model.finalAlphaCumprod, t: -1 };
  if (Number.isInteger(t)) return { sigma: model.sigmas[t], alpha: diffusersAlpha(model, t), t };
  const sigma = model.tToSigma(t);
  return { sigma, alpha: 1 / (1 + sigma * sigma), t };
}

/** The point of a sigma of the walk; sigma 0 is "after the last timestep" (finalAlphaCumprod). */
export function pointAtSigma(model: DiscreteSchedule, sigma: number): VpPoint {
  if (!(sigma > 0)) return { sigma: 0, alpha: model.finalAlphaCumprod, t: -1 };
  const t = model.sigmaToT(sigma);
  const rounded = Math.round(t);
  if (Math.abs(t - rounded) < GRID_TOLERANCE) return { sigma, alpha: diffusersAlpha(model, rounded), t: rounded };
  return { sigma, alpha: 1 / (1 + sigma * sigma), t };
}

export function isOnGrid(point: VpPoint): boolean {
  return point.t >= 0 && Number.isInteger(point.t);
}

/**
 * num_train_timesteps // num_inference_steps when the denoiser carries diffusers' grid: DDIM and
 * PNDM step by it rather than to the next sigma.
 */
export function diffusersStride(denoise: Denoiser): number | undefined {
  const steps = denoise.grid?.inferenceSteps;
  return steps ? Math.floor(denoise.model.numTrainTimesteps / steps) : undefined;
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

/**
 * x_vp = x / sqrt(1 + sigma²), the inverse of the denoiser's c_in, so the network sees exactly
 * the VP latents diffusers would hand it.
 */
export function toVp(x: ArrayLike<number>, sigma: number): Float64Array {
  const scale = 1 / Math.sqrt(1 + sigma * sigma);
  return Float64Array.from(x, (v) => v * scale);
}

/** Sigma-space latents at sigma of VP latents. */
export function fromVp(xvp: Float64Array, sigma: number): Latents {
  const scale = Math.sqrt(1 + sigma * sigma);
  return Float32Array.from(xvp, (v) => v * scale);
}

/**
 * The sampler result for VP latents that are diffusers' state after the last step: as they are
 * when the walk ends at 0 (what diffusers decodes), else in sigma space at the last sigma.
 */
export function vpResult(xvp: Float64Array, sigmaLast: number): Latents {
  return sigmaLast > 0 ? fromVp(xvp, sigmaLast) : Float32Array.from(xvp);
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

/** diffusers' pred_original_sample and pred_epsilon. */
export interface Prediction {
  x0: Float64Array;
  eps: Float64Array;
}

/**
 * pred_original_sample and pred_epsilon as DDIM/DDPM/LCM compute them: from the network's own
 * output, the VP latents and the point's alpha_cumprod. Algebraically the denoiser's x0 and
 * (x - x0) / sigma; computed this way it also holds at a zero terminal SNR (alpha 0), where
 * a v model gives x0 = -v and eps = x_vp.
 */
export function diffusersPrediction(
  model: DiscreteSchedule,
  xvp: Float64Array,
  at: VpPoint,
  x: Latents,
  denoised: Latents,
): Prediction {
  const a = Math.sqrt(at.alpha);
  const b = Math.sqrt(1 - at.alpha);
  if (model.predictionType === 'sample') {
    const x0 = Float64Array.from(denoised);
    return { x0, eps: xvp.map((v, k) => (v - a * x0[k]) / b) };
  }
  const out = networkOutput(model, x, at.sigma, denoised);
  if (model.predictionType === 'v_prediction') {
    return { x0: xvp.map((v, k) => a * v - b * out[k]), eps: xvp.map((v, k) => a * out[k] + b * v) };
  }
  return { x0: xvp.map((v, k) => (v - b * out[k]) / a), eps: out };
}
