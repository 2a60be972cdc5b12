import type { DiscreteSchedule, PredictionType, TimestepSpacing } from './types.js';

/** The fields of a diffusers scheduler_config.json this module reads; others are ignored. */
export interface SchedulerConfig {
  _class_name?: string;
  num_train_timesteps?: number;
  beta_start?: number;
  beta_end?: number;
  beta_schedule?: string;
  trained_betas?: number[] | null;
  prediction_type?: string;
  timestep_spacing?: string;
  steps_offset?: number;
  set_alpha_to_one?: boolean;
  rescale_betas_zero_snr?: boolean;
  [key: string]: unknown;
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
function betasOf(config: SchedulerConfig, n: number): Float64Array {
  if (config.trained_betas) return Float64Array.from(config.trained_betas, f32);
  const schedule = config.beta_schedule ?? 'linear';
  const start = config.beta_start ?? 0.0001;
  const end = config.beta_end ?? 0.02;
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

function spacingOf(config: SchedulerConfig): TimestepSpacing | undefined {
  const spacing = config.timestep_spacing;
  if (spacing !== undefined && spacing !== 'leading' && spacing !== 'trailing' && spacing !== 'linspace') {
    throw new Error(`unsupported timestep_spacing "${spacing}" (leading, trailing, linspace)`);
  }
  return spacing;
}

function predictionTypeOf(config: SchedulerConfig): PredictionType {
  const type = config.prediction_type ?? 'epsilon';
  if (type !== 'epsilon' && type !== 'v_prediction' && type !== 'sample') {
    throw new Error(`unsupported prediction_type "${type}" (epsilon, v_prediction, sample)`);
  }
  return type;
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

/** The model's training noise schedule from a diffusers scheduler_config.json object. */
export function discreteSchedule(config: SchedulerConfig): DiscreteSchedule {
  const n = config.num_train_timesteps ?? 1000;
  let betas = betasOf(config, n);
  if (config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
  const alphasCumprod = cumprod32(betas.map((b) => f32(1 - b)));
  // Zero terminal SNR makes the last sigma infinite; diffusers clamps alpha_cumprod there to 2**-24.
  if (config.rescale_betas_zero_snr) alphasCumprod[n - 1] = 2 ** -24;
  const sigmas = alphasCumprod.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
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
    numTrainTimesteps: n,
    predictionType: predictionTypeOf(config),
    alphasCumprod,
    sigmas,
    sigmaMin: sigmas[0],
    sigmaMax: sigmas[n - 1],
    sigmaToT,
    tToSigma,
    finalAlphaCumprod: (config.set_alpha_to_one ?? true) ? 1 : alphasCumprod[0],
    timestepSpacing: spacingOf(config),
    stepsOffset: config.steps_offset ?? 0,
  };
}
