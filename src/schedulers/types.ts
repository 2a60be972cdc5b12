/**
 * The sampling core speaks k-diffusion's language: latents live in "sigma space"
 * (x = x0 + sigma * eps, the variance-exploding form), a denoiser maps (x, sigma) to its
 * estimate of x0, and a sampler is a pure function of a denoiser, the starting latents,
 * a sigma schedule and a noise source. Variance-preserving schedulers from diffusers
 * (DDIM, PNDM, UniPC, ...) are the same integrators written in another coordinate system,
 * so they are expressed here in sigma space too; tests compare with both references.
 *
 * Nothing in this folder imports onnxruntime or anything outside src/schedulers.
 */

/** Latent tensor data, flat, in NCHW order. Shapes are carried by the caller. */
export type Latents = Float32Array;

/** Predicts x0 from noisy latents x at noise level sigma (sigma > 0). */
export type Denoiser = (x: Latents, sigma: number) => Promise<Latents>;

/**
 * A stream of standard normal noise the size of the latents. Successive calls continue the
 * stream, which is what makes ancestral/SDE runs reproducible against the references.
 * Samplers pass the sigma interval the noise is for, so a source keyed on it (k-diffusion's
 * Brownian-tree noise sampler) fits too; a plain stream ignores the arguments.
 */
export type NoiseSource = (sigma?: number, sigmaNext?: number) => Latents;

export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';

/** How diffusers spreads inference timesteps over the training range (scheduler_config.json). */
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';

export interface StepInfo {
  /** Index of the step just finished, 0-based. */
  step: number;
  total: number;
  sigma: number;
  /** Latents after the step. */
  x: Latents;
  /** The denoiser's last x0 estimate. */
  denoised: Latents;
}

export interface SamplerOptions {
  /** Source of fresh noise for ancestral and SDE samplers. */
  noise: NoiseSource;
  /** The model's discrete noise schedule (some samplers need timesteps or alphas). */
  model: DiscreteSchedule;
  /** Ancestral/DDIM eta; each sampler documents its default. */
  eta?: number;
  /** Noise multiplier for ancestral/SDE samplers (k-diffusion's s_noise), default 1. */
  sNoise?: number;
  /**
   * diffusers' num_inference_steps when sigmas are (a suffix of) its `normal` timesteps; DDIM and
   * PNDM use it to step like diffusers (t - N // steps). SamplingPlan.inferenceSteps carries it.
   */
  inferenceSteps?: number;
  /**
   * img2img under `normal`: the whole schedule the sigmas were cut from and where the cut is.
   * diffusers' LMS keys its order and coefficients to the absolute step, so its first img2img
   * steps use high-order weights over the skipped sigmas; k-diffusion restarts at order 1.
   */
  truncatedFrom?: { sigmas: Float64Array; start: number };
  onStep?: (info: StepInfo) => void;
}

/** sigmas: descending, length steps + 1, usually ending in 0. */
export type Sampler = (
  denoise: Denoiser,
  x: Latents,
  sigmas: Float64Array,
  options: SamplerOptions,
) => Promise<Latents>;

/**
 * The training-time noise schedule of a model (diffusers' scheduler_config.json):
 * alphas_cumprod over num_train_timesteps and conversions between sigma and timestep.
 */
export interface DiscreteSchedule {
  readonly numTrainTimesteps: number;
  readonly predictionType: PredictionType;
  /** Float64, length numTrainTimesteps. */
  readonly alphasCumprod: Float64Array;
  /** sqrt((1 - a) / a) for each training timestep, ascending with t. */
  readonly sigmas: Float64Array;
  readonly sigmaMin: number;
  readonly sigmaMax: number;
  /** Continuous timestep for a sigma, by interpolation in log-sigma (k-diffusion's sigma_to_t). */
  sigmaToT(sigma: number): number;
  /** Sigma at a (possibly fractional) timestep, by interpolation in log-sigma. */
  tToSigma(t: number): number;
  /**
   * alpha_cumprod a DDIM-style step lands on after the last timestep: 1 with the config's
   * set_alpha_to_one, else alphas_cumprod[0] (Stable Diffusion's configs say false).
   */
  readonly finalAlphaCumprod: number;
  /**
   * The config's timestep_spacing, used by the `normal` schedule. Undefined when the config does
   * not set it: each diffusers scheduler class then applies its own default (diffusers does not
   * carry a default of the config's _class_name over to another scheduler class).
   */
  readonly timestepSpacing?: TimestepSpacing;
  /** The config's steps_offset, added to `leading` timesteps. */
  readonly stepsOffset: number;
}

/** A schedule turns a model and a step count into the sigmas a sampler walks. */
export type Schedule = (model: DiscreteSchedule, steps: number) => Float64Array;
