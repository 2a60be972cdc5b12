/**
 * A model's training noise schedule from its diffusers scheduler_config.json, as one diffusers
 * scheduler class reads it (diffusers-classes.ts), with the sigmas of diffusers' float32 betas or
 * of the float64 betas AUTOMATIC1111 and ComfyUI compute (noise-tables.ts).
 */
import { type ClassConfig, type DiffusersClassId, ownClass, resolveConfig } from './diffusers-classes.js';
import { ldmTable } from './noise-tables.js';
import type { DiscreteSchedule, NoiseTable, PredictionType, TimestepSpacing, X0Limit } from './types.js';

/** A diffusers scheduler_config.json object; the keys diffuse reads are listed in ClassConfig. */
export type SchedulerConfig = Record<string, unknown>;

export interface ModelOptions {
  /** The diffusers class whose defaults fill the keys the file leaves out; default the file's _class_name. */
  class?: DiffusersClassId;
  /** Whose arithmetic makes the sigmas; default diffusers'. */
  table?: NoiseTable;
}

const f32 = Math.fround;

/**
 * torch.linspace in float32 on the CPU, bit for bit: a float32 step, then start + step * i
 * (fused, so rounded once) for the first half and end - step * (n - 1 - i) for the second.
 */
export function torchLinspace32(start: number, end: number, n: number): Float64Array {
  const out = new Float64Array(n);
  const a = f32(start);
  const b = f32(end);
  if (n === 1) {
    out[0] = a;
    return out;
  }
  const step = f32(f32(b - a) / (n - 1));
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < half ? f32(a + step * i) : f32(b - step * (n - 1 - i));
  return out;
}

/**
 * diffusers' betas, computed as diffusers computes them: float32 torch tensors. The precision
 * matters: float64 betas move sigma_max by ~1e-6 relative, far above the 1e-7 we want to agree to.
 */
function betasOf(config: ClassConfig, n: number): Float64Array {
  if (config.trained_betas) return Float64Array.from(config.trained_betas, f32);
  const { beta_schedule: schedule, beta_start: start, beta_end: end } = config;
  switch (schedule) {
    case 'linear':
      return torchLinspace32(start, end, n);
    case 'scaled_linear':
      return torchLinspace32(Math.sqrt(start), Math.sqrt(end), n).map((b) => f32(b * b));
    case 'squaredcos_cap_v2': {
      // betas_for_alpha_bar: Python floats, then one float32 tensor.
      const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
      const betas = new Float64Array(n);
      for (let i = 0; i < n; i++) betas[i] = f32(Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999));
      return betas;
    }
    default:
      throw new Error(`unsupported beta_schedule "${schedule}" (linear, scaled_linear, squaredcos_cap_v2)`);
  }
}

/** torch.cumprod of a float32 tensor on the CPU: accumulates in float64, stores float32. */
function cumprod32(values: Float64Array): Float64Array {
  const out = new Float64Array(values.length);
  let acc = 1;
  for (let i = 0; i < values.length; i++) {
    acc *= values[i];
    out[i] = f32(acc);
  }
  return out;
}

/** diffusers' rescale_zero_terminal_snr (arXiv:2305.08891, Algorithm 1), float32 op by op. */
function rescaleZeroTerminalSnr(betas: Float64Array): Float64Array {
  const sqrtBar = cumprod32(betas.map((b) => f32(1 - b))).map((a) => f32(Math.sqrt(a)));
  const first = sqrtBar[0];
  const last = sqrtBar[sqrtBar.length - 1];
  const scale = f32(first / f32(first - last));
  const bar = sqrtBar.map((s) => {
    const shifted = f32(f32(s - last) * scale);
    return f32(shifted * shifted);
  });
  const out = new Float64Array(betas.length);
  out[0] = f32(1 - bar[0]);
  for (let i = 1; i < bar.length; i++) out[i] = f32(1 - f32(bar[i] / bar[i - 1]));
  return out;
}

/** Index i with sorted[i] <= value < sorted[i + 1], or -1 below the range (sorted ascending). */
function lowerIndex(sorted: Float64Array, value: number): number {
  let lo = -1;
  let hi = sorted.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] <= value) lo = mid;
    else hi = mid;
  }
  return lo;
}

function predictionTypeOf(config: ClassConfig): PredictionType {
  const type = config.prediction_type;
  if (type !== 'epsilon' && type !== 'v_prediction' && type !== 'sample') {
    throw new Error(`unsupported prediction_type "${type}" (epsilon, v_prediction, sample)`);
  }
  return type;
}

function spacingOf(config: ClassConfig): TimestepSpacing {
  const spacing = config.timestep_spacing;
  if (spacing !== 'leading' && spacing !== 'trailing' && spacing !== 'linspace') {
    throw new Error(`unsupported timestep_spacing "${spacing}" (leading, trailing, linspace)`);
  }
  return spacing;
}

function finalSigmasOf(config: ClassConfig): 'zero' | 'sigma_min' {
  const type = config.final_sigmas_type;
  if (type !== 'zero' && type !== 'sigma_min') throw new Error(`unsupported final_sigmas_type "${type}" (zero, sigma_min)`);
  return type;
}

function x0LimitOf(config: ClassConfig): X0Limit {
  if (config.thresholding) return { kind: 'threshold', ratio: config.dynamic_thresholding_ratio, maxValue: config.sample_max_value };
  return config.clip_sample ? { kind: 'clip', range: config.clip_sample_range } : { kind: 'none' };
}

/** alphas_cumprod and sigmas as diffusers computes them: float32 torch ops throughout. */
function diffusersTable(config: ClassConfig): { alphasCumprod: Float64Array; sigmas: Float64Array } {
  const n = config.num_train_timesteps;
  let betas = betasOf(config, n);
  if (config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
  const alphasCumprod = cumprod32(betas.map((b) => f32(1 - b)));
  const sigmas = alphasCumprod.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
  if (config.rescale_betas_zero_snr) {
    // Zero terminal SNR makes the last sigma infinite; diffusers clamps alpha_cumprod there to 2**-24,
    // and torch's float32 pow(2**24 - 1, 0.5) gives 4096, one ulp above the correctly rounded root.
    alphasCumprod[n - 1] = 2 ** -24;
    sigmas[n - 1] = 4096;
  }
  return { alphasCumprod, sigmas };
}

/**
 * The model's training noise schedule: the file's keys over the defaults of `options.class` (its
 * own _class_name by default), sigmas from `options.table`. A table A1111 or ComfyUI cannot build
 * for this config (zero terminal SNR) falls back to diffusers'; `noiseTable` says which was used.
 */
export function discreteSchedule(config: SchedulerConfig, options: ModelOptions = {}): DiscreteSchedule {
  const schedulerClass = options.class ?? ownClass(config);
  const resolved = resolveConfig(config, schedulerClass);
  const n = resolved.num_train_timesteps;
  const ldm = options.table && options.table !== 'diffusers' ? ldmTable(resolved, options.table) : undefined;
  const { alphasCumprod, sigmas } = ldm ?? diffusersTable(resolved);
  const logSigmas = sigmas.map(Math.log);

  const sigmaToT = (sigma: number): number => {
    if (!(sigma > 0)) return 0;
    const logSigma = Math.log(sigma);
    const low = Math.min(Math.max(lowerIndex(logSigmas, logSigma), 0), n - 2);
    const w = Math.min(Math.max((logSigmas[low] - logSigma) / (logSigmas[low] - logSigmas[low + 1]), 0), 1);
    return (1 - w) * low + w * (low + 1);
  };

  const tToSigma = (t: number): number => {
    const tc = Math.min(Math.max(t, 0), n - 1);
    const low = Math.floor(tc);
    const high = Math.ceil(tc);
    const w = tc - low;
    return Math.exp((1 - w) * logSigmas[low] + w * logSigmas[high]);
  };

  return {
    config,
    schedulerClass,
    noiseTable: ldm ? options.table! : 'diffusers',
    numTrainTimesteps: n,
    predictionType: predictionTypeOf(resolved),
    alphasCumprod,
    sigmas,
    sigmaMin: sigmas[0],
    sigmaMax: sigmas[n - 1],
    sigmaToT,
    tToSigma,
    finalAlphaCumprod: resolved.set_alpha_to_one ? 1 : alphasCumprod[0],
    timestepSpacing: spacingOf(resolved),
    stepsOffset: resolved.steps_offset,
    finalSigmas: finalSigmasOf(resolved),
    x0Limit: x0LimitOf(resolved),
    originalInferenceSteps: resolved.original_inference_steps,
    lowerOrderFinal: resolved.lower_order_final,
  };
}
