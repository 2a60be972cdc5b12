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

/**
 * diffusers' bookkeeping for a walk over one of its schedulers' own timestep lists (the `normal`
 * schedule): what its step arithmetic needs beyond the sigmas.
 */
export interface DiffusersGrid {
  /** num_inference_steps: DDIM and PNDM step by num_train_timesteps // it, not to the next sigma. */
  readonly inferenceSteps: number;
  /**
   * img2img: the whole schedule the walk was cut from and the index of its first sigma there.
   * diffusers keys some state to the absolute step (LMS's order and coefficients, the singlestep
   * DPM-Solver's order list) and cuts PNDM's list with its repeated timestep (vp-pndm.ts).
   */
  readonly cut?: { readonly sigmas: Float64Array; readonly start: number };
}

/**
 * Predicts x0 from noisy latents x at noise level sigma (sigma > 0). Like k-diffusion's `model`
 * argument, it also carries the model's training schedule, and for a diffusers scheduler's own
 * timesteps the grid its step arithmetic needs; samplers read them from here.
 */
export interface Denoiser {
  (x: Latents, sigma: number): Promise<Latents>;
  readonly model: DiscreteSchedule;
  readonly grid?: DiffusersGrid;
  /** Images in the latents (default 1), for the steps that work per image (dynamic thresholding). */
  readonly batch?: number;
}

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

/** What every sampler understands; anything particular to one sampler is a parameter of its factory. */
export interface SamplerOptions {
  /** Source of fresh noise for ancestral and SDE samplers. */
  noise: NoiseSource;
  /** Ancestral/DDIM/TCD eta; each sampler documents its default. */
  eta?: number;
  /** Noise multiplier for ancestral/SDE samplers (k-diffusion's s_noise), default 1. */
  sNoise?: number;
  onStep?: (info: StepInfo) => void;
}

/** sigmas: descending, length steps + 1, usually ending in 0. */
export type Sampler = (
  denoise: Denoiser,
  x: Latents,
  sigmas: Float64Array,
  options: SamplerOptions,
) => Promise<Latents>;

/** Where a model's sigmas come from: diffusers' float32 betas, or the float64 LDM betas A1111 and ComfyUI use. */
export type NoiseTable = 'diffusers' | 'a1111' | 'comfyui';

/**
 * What diffusers' DDIM and DDPM do to the predicted x0 before stepping (clip_sample,
 * thresholding): nothing, a clamp to [-range, range], or dynamic thresholding (Imagen) at a
 * quantile of |x0| per image, clamped to [1, maxValue].
 */
export type X0Limit =
  | { readonly kind: 'none' }
  | { readonly kind: 'clip'; readonly range: number }
  | { readonly kind: 'threshold'; readonly ratio: number; readonly maxValue: number };

/**
 * The training-time noise schedule of a model (diffusers' scheduler_config.json, read as one
 * diffusers scheduler class reads it): alphas_cumprod over num_train_timesteps, conversions
 * between sigma and timestep, and the settings of that class the sampling core uses.
 */
export interface DiscreteSchedule {
  /** The scheduler_config.json object this was made from, keys as the file has them. */
  readonly config: Readonly<Record<string, unknown>>;
  /** The diffusers scheduler class whose defaults fill the keys the file leaves out. */
  readonly schedulerClass: string;
  /** Whose arithmetic made the sigmas (see model.ts). */
  readonly noiseTable: NoiseTable;
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
   * set_alpha_to_one, else alphas_cumprod[0].
   */
  readonly finalAlphaCumprod: number;
  /** The class's timestep_spacing (the file's, else the class default). */
  readonly timestepSpacing: TimestepSpacing;
  /** The config's steps_offset, added to `leading` timesteps. */
  readonly stepsOffset: number;
  /** final_sigmas_type: where the class's own schedule ends, 0 or the smallest training sigma. */
  readonly finalSigmas: 'zero' | 'sigma_min';
  /** DDIM/DDPM: what happens to the predicted x0. */
  readonly x0Limit: X0Limit;
  /** LCM/TCD: the distillation's step count (original_inference_steps). */
  readonly originalInferenceSteps: number;
  /** DPMSolverSinglestep: lower_order_final (the others' steps lower their order at the end anyway). */
  readonly lowerOrderFinal: boolean;
}

/**
 * What a schedule gives a run, in one place: the sigmas to walk, the timestep the network sees,
 * how the starting noise is scaled and how the result becomes the latents the VAE decodes.
 */
export interface ScheduleResult {
  /** Descending sigmas, ending in 0 (or where the schedule stops). */
  sigmas: Float64Array;
  /** The timestep the network sees at a sigma; absent, the model's log-sigma interpolation (k-diffusion). */
  timestepOf?: (sigma: number) => number;
  /** What txt2img multiplies unit noise by. */
  initNoiseScale: number;
  /** Converts the sampler's output at the last sigma to the latents the reference decodes. */
  finalScale: number;
  /** Set when the sigmas are a diffusers scheduler's own timesteps (see DiffusersGrid). */
  grid?: { inferenceSteps: number };
}
