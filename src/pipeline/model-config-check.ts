import { ModelLoadError } from '../errors.js';
import { discreteSchedule } from '../schedulers/index.js';

/**
 * Every value of a model folder's config files that the pipeline reads, checked for type and range
 * when the folder is read, so a broken or hostile file is refused in one line naming the file and
 * the key, instead of running into an all-black picture, NaN or ONNX Runtime's own words.
 * A key that is absent takes the pipeline's default and is not checked here.
 */
type Check = (value: unknown) => string | undefined;

const int = (min: number, max: number): Check => (v) =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? undefined : `must be a whole number from ${min} to ${max}`;
const num = (min: number, max: number, open = false): Check => (v) =>
  typeof v === 'number' && Number.isFinite(v) && (open ? v > min : v >= min) && v <= max ? undefined : `must be a number ${open ? 'above' : 'from'} ${min}${open ? ' and at most' : ' to'} ${max}`;
const bool: Check = (v) => (typeof v === 'boolean' ? undefined : 'must be true or false');
const oneOf = (...choices: string[]): Check => (v) => (typeof v === 'string' && choices.includes(v) ? undefined : `must be one of ${choices.join(', ')}`);
const orNull = (check: Check): Check => (v) => (v === null ? undefined : check(v));
const list = (item: Check, min: number, max: number): Check => (v) => {
  if (!Array.isArray(v) || v.length < min || v.length > max) return `must be a list of ${min} to ${max} values`;
  const bad = v.findIndex((x) => item(x) !== undefined);
  return bad === -1 ? undefined : `[${bad}] ${item(v[bad])}`;
};

/** scheduler_config.json: the keys diffusers' scheduler classes take that diffuse reads (ClassConfig). */
export const SCHEDULER_KEYS: Record<string, Check> = {
  num_train_timesteps: int(2, 100_000),
  beta_start: num(0, 1, true),
  beta_end: num(0, 1, true),
  beta_schedule: oneOf('linear', 'scaled_linear', 'squaredcos_cap_v2'),
  trained_betas: orNull(list(num(0, 1, true), 2, 100_000)),
  prediction_type: oneOf('epsilon', 'v_prediction', 'sample'),
  timestep_spacing: oneOf('leading', 'trailing', 'linspace'),
  steps_offset: int(0, 1000),
  set_alpha_to_one: bool,
  rescale_betas_zero_snr: bool,
  clip_sample: bool,
  clip_sample_range: num(0, 1e6, true),
  thresholding: bool,
  dynamic_thresholding_ratio: num(0, 1, true),
  sample_max_value: num(0, 1e6, true),
  final_sigmas_type: oneOf('zero', 'sigma_min'),
  original_inference_steps: int(1, 100_000),
  lower_order_final: bool,
  _class_name: (v) => (typeof v === 'string' ? undefined : 'must be a class name'),
};

/** The VAE's config.json (encoder and decoder). */
export const VAE_KEYS: Record<string, Check> = {
  scaling_factor: num(0, 1000, true),
  block_out_channels: list(int(1, 65_536), 1, 8),
  latent_channels: int(1, 64),
  sample_size: int(8, 8192),
};

/** The UNet's config.json. */
export const UNET_KEYS: Record<string, Check> = {
  sample_size: int(1, 1024),
  out_channels: int(1, 64),
  in_channels: int(1, 64),
  layers_per_block: int(1, 16),
};

/** The text encoder's config.json. */
export const TEXT_ENCODER_KEYS: Record<string, Check> = {
  hidden_size: int(1, 16_384),
};

/** A side: a whole number of pixels, or transformers' size dict ({shortest_edge} or {height, width}). */
const side: Check = (v) => {
  const pixels = int(1, 8192);
  if (typeof v === 'number') return pixels(v);
  if (!v || typeof v !== 'object' || Array.isArray(v)) return 'must be a number of pixels or {"shortest_edge": n} / {"height": h, "width": w}';
  const o = v as Record<string, unknown>;
  const keys = 'shortest_edge' in o ? ['shortest_edge'] : ['height', 'width'];
  for (const k of keys) {
    const problem = pixels(o[k]);
    if (problem) return `${k} ${problem}`;
  }
  return undefined;
};

/** feature_extractor/preprocessor_config.json of a CLIP image processor (the safety checker's). */
export const CLIP_PROCESSOR_KEYS: Record<string, Check> = {
  size: side,
  crop_size: side,
  resample: oneOfNumbers(1, 2, 3),
  do_resize: bool,
  do_center_crop: bool,
  do_rescale: bool,
  do_normalize: bool,
  rescale_factor: num(0, 1, true),
  image_mean: list(num(-1e3, 1e3), 3, 3),
  image_std: list(num(0, 1e3, true), 3, 3),
};

function oneOfNumbers(...choices: number[]): Check {
  return (v) => (typeof v === 'number' && choices.includes(v) ? undefined : `must be one of ${choices.join(', ')}`);
}

/** Refuses the first key of `config` (read from `path`) that fails its check. */
export function checkConfigKeys(path: string, config: Record<string, unknown>, keys: Record<string, Check>): void {
  for (const [key, check] of Object.entries(keys)) {
    if (!(key in config) || config[key] === undefined) continue;
    const problem = check(config[key]);
    if (problem) throw new ModelLoadError(`${path}: ${key} ${problem} (got ${shortJson(config[key])}); fix the file or re-download the model`);
  }
}

const shortJson = (v: unknown): string => {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
};

/**
 * The scheduler config's keys, then the schedule they make: betas that are each fine can still
 * make alphas_cumprod underflow to 0 (an infinite sigma), or trained_betas can disagree with
 * num_train_timesteps.
 */
export function checkSchedulerConfig(path: string, config: Record<string, unknown>): void {
  checkConfigKeys(path, config, SCHEDULER_KEYS);
  const betas = config.trained_betas;
  const n = config.num_train_timesteps;
  if (Array.isArray(betas) && typeof n === 'number' && betas.length !== n) {
    throw new ModelLoadError(`${path}: trained_betas has ${betas.length} values but num_train_timesteps is ${n}; fix the file or re-download the model`);
  }
  if (typeof config.beta_start === 'number' && typeof config.beta_end === 'number' && config.beta_start > config.beta_end) {
    throw new ModelLoadError(`${path}: beta_start (${config.beta_start}) is above beta_end (${config.beta_end}); fix the file or re-download the model`);
  }
  let schedule;
  try {
    schedule = discreteSchedule(config);
  } catch (err) {
    throw new ModelLoadError(`${path}: ${(err as Error).message}`, { cause: err });
  }
  // Zero terminal SNR makes the last sigma large on purpose (clamped to 4096); every other must be finite.
  const bad = schedule.sigmas.findIndex((s) => !(Number.isFinite(s) && s > 0));
  if (bad !== -1) {
    throw new ModelLoadError(`${path}: these betas make sigma ${bad} ${schedule.sigmas[bad]} (alphas_cumprod underflows); fix the file or re-download the model`);
  }
}
