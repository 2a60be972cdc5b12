/**
 * diffusers' scheduler classes as diffuse reads them: which scheduler_config.json keys each
 * accepts and its own default for each, how its set_timesteps spaces the timesteps and how it
 * scales the first noise. A key a class does not accept takes NEUTRAL (it means nothing to that
 * class: DEIS and PNDM have no rescale_betas_zero_snr, so a zero-SNR config runs them on the
 * plain betas, as diffusers does).
 *
 * diffusers fills a key the file leaves out from the class being built, never from another class:
 * `Cls.from_config(pipe.scheduler.config)` drops the keys the first class only defaulted
 * (configuration_utils' `_use_default_values`). So a run's settings are the file's keys over the
 * defaults of the class that runs, which is what resolveConfig computes.
 */
import type { TimestepSpacing } from './types.js';

/** The scheduler_config.json keys the sampling core reads, resolved for one class. */
export interface ClassConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: string;
  trained_betas: number[] | null;
  prediction_type: string;
  timestep_spacing: string;
  steps_offset: number;
  set_alpha_to_one: boolean;
  rescale_betas_zero_snr: boolean;
  clip_sample: boolean;
  clip_sample_range: number;
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  sample_max_value: number;
  final_sigmas_type: string;
  original_inference_steps: number;
  lower_order_final: boolean;
}

/** Values for keys a class does not accept: what the class then does. */
const NEUTRAL: ClassConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
  set_alpha_to_one: true,
  rescale_betas_zero_snr: false,
  clip_sample: false,
  clip_sample_range: 1,
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1,
  final_sigmas_type: 'zero',
  original_inference_steps: 50,
  lower_order_final: true,
};

/**
 * Which set_timesteps a class runs: `euler` (EulerDiscrete and the k-diffusion ports: linspace
 * left fractional), `ddim` (DDIM, DDPM, PNDM: linspace rounded), `dpmsolver` (DPMSolverMultistep,
 * UniPC, DEIS, DPMSolverSinglestep: n + 1 points, the last dropped), `lcm` (LCM, TCD: the
 * distillation's skipping schedule).
 */
export type TimestepRule = 'euler' | 'ddim' | 'dpmsolver' | 'lcm';

export interface DiffusersClass {
  /** The keys the class's __init__ takes (of those diffuse reads), with its defaults. */
  readonly defaults: Partial<ClassConfig>;
  readonly timesteps: TimestepRule;
  /**
   * init_noise_sigma: `sigma` for the Euler family (sigma_max, or sqrt(sigma_max² + 1) with
   * leading spacing: its latents are sigma-space), `unit` for the VP schedulers (1: x_vp).
   */
  readonly init: 'sigma' | 'unit';
  /**
   * With use_karras_sigmas (and use_lu_lambdas) the network sees round(sigma_to_t(sigma)), as
   * DPMSolverMultistep, DPMSolverSinglestep, UniPC and DEIS compute it (KDPM2 rounds too but
   * interpolates its midpoints; diffuse keeps k-diffusion's DPM2 there).
   */
  readonly roundsSigmaTimesteps?: true;
  /** Its own list always ends above 0, whatever final_sigmas_type says: DEIS (at sigma_min; with use_karras_sigmas, at its last sigma again). */
  readonly endsAtSigmaMin?: true;
}

const EULER_BETAS = { beta_start: 0.0001, beta_end: 0.02, beta_schedule: 'linear' } as const;
const K_BETAS = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'linear' } as const;
const LCM_BETAS = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear' } as const;
const COMMON = { num_train_timesteps: 1000, trained_betas: null, prediction_type: 'epsilon' } as const;
const SPACED = (spacing: TimestepSpacing) => ({ timestep_spacing: spacing, steps_offset: 0 });
const THRESHOLDING = { thresholding: false, dynamic_thresholding_ratio: 0.995, sample_max_value: 1 } as const;
const CLIPPING = (clip: boolean) => ({ clip_sample: clip, clip_sample_range: 1 });

/** diffusers 0.32's __init__ defaults, class by class. */
export const DIFFUSERS_CLASSES = {
  DDIMScheduler: {
    defaults: { ...COMMON, ...EULER_BETAS, ...SPACED('leading'), ...CLIPPING(true), ...THRESHOLDING, set_alpha_to_one: true, rescale_betas_zero_snr: false },
    timesteps: 'ddim',
    init: 'unit',
  },
  DDIMInverseScheduler: {
    defaults: { ...COMMON, ...EULER_BETAS, ...SPACED('leading'), ...CLIPPING(true), set_alpha_to_one: true, rescale_betas_zero_snr: false },
    timesteps: 'ddim',
    init: 'unit',
  },
  DDPMScheduler: {
    defaults: { ...COMMON, ...EULER_BETAS, ...SPACED('leading'), ...CLIPPING(true), ...THRESHOLDING, rescale_betas_zero_snr: false },
    timesteps: 'ddim',
    init: 'unit',
  },
  PNDMScheduler: {
    defaults: { ...COMMON, ...EULER_BETAS, ...SPACED('leading'), set_alpha_to_one: false },
    timesteps: 'ddim',
    init: 'unit',
  },
  EulerDiscreteScheduler: {
    defaults: { ...COMMON, ...EULER_BETAS, ...SPACED('linspace'), rescale_betas_zero_snr: false, final_sigmas_type: 'zero' },
    timesteps: 'euler',
    init: 'sigma',
  },
  EulerAncestralDiscreteScheduler: {
    defaults: { ...COMMON, ...EULER_BETAS, ...SPACED('linspace'), rescale_betas_zero_snr: false },
    timesteps: 'euler',
    init: 'sigma',
  },
  HeunDiscreteScheduler: { defaults: { ...COMMON, ...K_BETAS, ...SPACED('linspace') }, timesteps: 'euler', init: 'sigma' },
  KDPM2DiscreteScheduler: { defaults: { ...COMMON, ...K_BETAS, ...SPACED('linspace') }, timesteps: 'euler', init: 'sigma' },
  KDPM2AncestralDiscreteScheduler: { defaults: { ...COMMON, ...K_BETAS, ...SPACED('linspace') }, timesteps: 'euler', init: 'sigma' },
  LMSDiscreteScheduler: { defaults: { ...COMMON, ...EULER_BETAS, ...SPACED('linspace') }, timesteps: 'euler', init: 'sigma' },
  DPMSolverSDEScheduler: { defaults: { ...COMMON, ...K_BETAS, ...SPACED('linspace') }, timesteps: 'euler', init: 'sigma' },
  DPMSolverMultistepScheduler: {
    defaults: { ...COMMON, ...EULER_BETAS, ...SPACED('linspace'), ...THRESHOLDING, final_sigmas_type: 'zero', rescale_betas_zero_snr: false, lower_order_final: true },
    timesteps: 'dpmsolver',
    init: 'unit',
    roundsSigmaTimesteps: true,
  },
  // No timestep_spacing: its set_timesteps always spaces like DPMSolverMultistep's linspace.
  DPMSolverSinglestepScheduler: {
    defaults: { ...COMMON, ...EULER_BETAS, ...THRESHOLDING, final_sigmas_type: 'zero', lower_order_final: false },
    timesteps: 'dpmsolver',
    init: 'unit',
    roundsSigmaTimesteps: true,
  },
  UniPCMultistepScheduler: {
    defaults: { ...COMMON, ...EULER_BETAS, ...SPACED('linspace'), ...THRESHOLDING, final_sigmas_type: 'zero', rescale_betas_zero_snr: false },
    timesteps: 'dpmsolver',
    init: 'unit',
    roundsSigmaTimesteps: true,
  },
  DEISMultistepScheduler: {
    defaults: { ...COMMON, ...EULER_BETAS, ...SPACED('linspace'), ...THRESHOLDING, lower_order_final: true },
    timesteps: 'dpmsolver',
    init: 'unit',
    roundsSigmaTimesteps: true,
    endsAtSigmaMin: true,
  },
  LCMScheduler: {
    defaults: { ...COMMON, ...LCM_BETAS, ...SPACED('leading'), ...CLIPPING(false), ...THRESHOLDING, set_alpha_to_one: true, rescale_betas_zero_snr: false, original_inference_steps: 50 },
    timesteps: 'lcm',
    init: 'unit',
  },
  TCDScheduler: {
    defaults: { ...COMMON, ...LCM_BETAS, ...SPACED('leading'), ...CLIPPING(false), ...THRESHOLDING, set_alpha_to_one: true, rescale_betas_zero_snr: false, original_inference_steps: 50 },
    timesteps: 'lcm',
    init: 'unit',
  },
} as const satisfies Record<string, DiffusersClass>;

export type DiffusersClassId = keyof typeof DIFFUSERS_CLASSES;

/**
 * The class a config names (_class_name), for a model read without a sampler; configs that name
 * none, or a class diffuse does not know, read as DDIMScheduler (diffusers' base defaults).
 */
export function ownClass(config: Readonly<Record<string, unknown>>): DiffusersClassId {
  const name = config._class_name;
  return typeof name === 'string' && name in DIFFUSERS_CLASSES ? (name as DiffusersClassId) : 'DDIMScheduler';
}

/** The settings class `cls` runs with for this file: the file's keys the class takes, else its defaults. */
export function resolveConfig(config: Readonly<Record<string, unknown>>, cls: DiffusersClassId): ClassConfig {
  const defaults: Partial<ClassConfig> = DIFFUSERS_CLASSES[cls].defaults;
  const out: Record<string, unknown> = { ...NEUTRAL, ...defaults };
  for (const key of Object.keys(defaults)) {
    // JSON null is a value (trained_betas: null); only a missing key takes the default.
    if (config[key] !== undefined) out[key] = config[key];
  }
  return out as unknown as ClassConfig;
}
