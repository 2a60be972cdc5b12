/**
 * Sigma schedules, independent of the sampler (ComfyUI's two axes). Each returns descending
 * sigmas ending in 0, rounded to float32 because every reference hands its sampler float32
 * sigmas; the arithmetic mirrors the reference's (torch float32 or numpy float64) step by step.
 */
import { torchLinspace32 } from './model.js';
import type { DiscreteSchedule, Schedule, TimestepSpacing } from './types.js';
import { VP_SCHEDULES } from './vp-samplers.js';

const f32 = Math.fround;

/** numpy's round: half to even. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** np.linspace(start, stop, n) in float64: start + i * step, the last element exactly stop. */
function numpyLinspace(start: number, stop: number, n: number, endpoint = true): Float64Array {
  const out = new Float64Array(n);
  if (n === 1) {
    out[0] = start;
    return out;
  }
  const div = endpoint ? n - 1 : n;
  const step = (stop - start) / div;
  for (let i = 0; i < n; i++) out[i] = i * step + start;
  if (endpoint && n > 1) out[n - 1] = stop;
  return out;
}

/** np.arange(start, 0, -step) with a float step, as numpy sizes it: ceil(start / step) elements. */
function numpyArangeDown(start: number, step: number): Float64Array {
  const n = Math.ceil(start / step);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = start - i * step;
  return out;
}

/**
 * Which diffusers scheduler family's set_timesteps to follow: they space the same config
 * differently. `euler`: EulerDiscrete, EulerAncestral, Heun, KDPM2(+Ancestral), LMS, DPMSolverSDE
 * (linspace left fractional); `ddim`: DDIM, DDPM, PNDM (linspace rounded); `dpmsolver`:
 * DPMSolverMultistep, UniPC, DEIS (n + 1 points, the last dropped).
 */
export type TimestepRule = 'euler' | 'ddim' | 'dpmsolver';

/** The timestep_spacing a diffusers scheduler of this family defaults to when the config has none. */
export function spacingFor(model: DiscreteSchedule, rule: TimestepRule): TimestepSpacing {
  return model.timestepSpacing ?? (rule === 'ddim' ? 'leading' : 'linspace');
}

/** Descending inference timesteps as diffusers' set_timesteps computes them for a rule. */
export function diffusersTimesteps(model: DiscreteSchedule, steps: number, rule: TimestepRule = 'euler'): Float64Array {
  const T = model.numTrainTimesteps;
  const spacing = spacingFor(model, rule);
  if (spacing === 'trailing') {
    return numpyArangeDown(T, T / steps).map((t) => roundHalfEven(t) - 1);
  }
  if (rule === 'dpmsolver') {
    const ascending =
      spacing === 'linspace'
        ? numpyLinspace(0, T - 1, steps + 1).map(roundHalfEven)
        : numpyLinspace(0, steps, steps + 1).map((i) => i * Math.floor(T / (steps + 1)) + model.stepsOffset);
    return ascending.slice(1).reverse();
  }
  if (spacing === 'linspace') {
    const ts = numpyLinspace(0, T - 1, steps);
    return (rule === 'ddim' ? ts.map(roundHalfEven) : ts.map(f32)).reverse();
  }
  const ratio = Math.floor(T / steps);
  return Float64Array.from({ length: steps }, (_, i) => (steps - 1 - i) * ratio + model.stepsOffset);
}

/** np.interp over the training sigmas: diffusers interpolates sigma linearly, not in log-sigma. */
function interpSigma(model: DiscreteSchedule, t: number): number {
  const last = model.numTrainTimesteps - 1;
  if (t <= 0) return model.sigmas[0];
  if (t >= last) return model.sigmas[last];
  const low = Math.floor(t);
  const w = t - low;
  return w === 0 ? model.sigmas[low] : (model.sigmas[low + 1] - model.sigmas[low]) * w + model.sigmas[low];
}

function withZero(sigmas: ArrayLike<number>): Float64Array {
  const out = new Float64Array(sigmas.length + 1);
  for (let i = 0; i < sigmas.length; i++) out[i] = f32(sigmas[i]);
  return out;
}

/** diffusers' own schedule: the model's timesteps under its timestep_spacing, then a final 0. */
export function normalSigmas(model: DiscreteSchedule, steps: number, rule: TimestepRule = 'euler'): Float64Array {
  return withZero(diffusersTimesteps(model, steps, rule).map((t) => interpSigma(model, t)));
}

/** k-diffusion's DiscreteSchedule.t_to_sigma in float32 (log-sigma interpolation). */
function tToSigma32(model: DiscreteSchedule, t: number): number {
  const low = Math.floor(t);
  const high = Math.ceil(t);
  const w = f32(t - low);
  const logLow = f32(Math.log(model.sigmas[low]));
  const logHigh = f32(Math.log(model.sigmas[high]));
  return f32(Math.exp(f32(f32(f32(1 - w) * logLow) + f32(w * logHigh))));
}

/** k-diffusion get_sigmas_karras(n, sigma_min, sigma_max, rho=7), float32 tensor ops. */
export function karrasSigmas(n: number, sigmaMin: number, sigmaMax: number, rho = 7): Float64Array {
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  const span = f32(minInv - maxInv);
  return withZero(torchLinspace32(0, 1, n).map((r) => f32(f32(f32(maxInv) + f32(r * span)) ** rho)));
}

/** k-diffusion get_sigmas_exponential: uniform in log-sigma. */
export function exponentialSigmas(n: number, sigmaMin: number, sigmaMax: number): Float64Array {
  return withZero(torchLinspace32(Math.log(sigmaMax), Math.log(sigmaMin), n).map((v) => f32(Math.exp(v))));
}

/** k-diffusion DiscreteSchedule.get_sigmas(n) (A1111 "Uniform", ComfyUI "normal"): linspace in t. */
function uniform(model: DiscreteSchedule, steps: number): Float64Array {
  return withZero(torchLinspace32(model.numTrainTimesteps - 1, 0, steps).map((t) => tToSigma32(model, t)));
}

/** ComfyUI/A1111 sgm_uniform: steps + 1 points in t, the last (t = 0) dropped. */
function sgmUniform(model: DiscreteSchedule, steps: number): Float64Array {
  const ts = torchLinspace32(model.numTrainTimesteps - 1, 0, steps + 1).subarray(0, steps);
  return withZero(ts.map((t) => tToSigma32(model, t)));
}

/** ln Gamma(x) for x > 0 (Lanczos, g = 7, 9 terms; ~1e-15 relative). */
function lnGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lnGamma(1 - x);
  const z = x - 1;
  let sum = c[0];
  for (let i = 1; i < 9; i++) sum += c[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** Continued fraction of the incomplete beta function (modified Lentz), valid for x < (a+1)/(a+b+2). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let h = d;
  for (let m = 1; m <= 1000; m++) {
    for (const numerator of [
      (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m)),
      -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1)),
    ]) {
      d = 1 + numerator * d;
      d = 1 / (Math.abs(d) < tiny ? tiny : d);
      c = 1 + numerator / c;
      if (Math.abs(c) < tiny) c = tiny;
      h *= d * c;
    }
    if (Math.abs(d * c - 1) < 1e-16) break;
  }
  return h;
}

/** Regularized incomplete beta function I_x(a, b). */
export function betaCdf(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log1p(-x));
  return x < (a + 1) / (a + b + 2)
    ? (front * betaContinuedFraction(x, a, b)) / a
    : 1 - (front * betaContinuedFraction(1 - x, b, a)) / b;
}

/**
 * Inverse of I_x(a, b) (scipy.stats.beta.ppf). Bisection to the last bit: the CDF is monotone,
 * so this cannot diverge, and a schedule needs at most a few hundred quantiles.
 */
export function betaPpf(p: number, a: number, b: number): number {
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 100 && hi - lo > 0; i++) {
    const mid = 0.5 * (lo + hi);
    if (mid === lo || mid === hi) break;
    if (betaCdf(mid, a, b) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/** ComfyUI simple_scheduler: every (len/steps)-th training sigma from the top. */
function simple(model: DiscreteSchedule, steps: number): Float64Array {
  const n = model.sigmas.length;
  const stride = n / steps;
  return withZero(Array.from({ length: steps }, (_, x) => model.sigmas[n - 1 - Math.trunc(x * stride)]));
}

/**
 * ComfyUI ddim_scheduler: training sigmas 1, 1 + stride, ... with stride len // steps, so it can
 * yield more steps than asked when steps does not divide the training range.
 */
function ddimUniform(model: DiscreteSchedule, steps: number): Float64Array {
  const n = model.sigmas.length;
  const stride = Math.max(Math.floor(n / steps), 1);
  const picked: number[] = [];
  for (let x = 1; x < n; x += stride) picked.push(model.sigmas[x]);
  return withZero(picked.reverse());
}

/**
 * ComfyUI beta_scheduler (arXiv:2407.12173, alpha = beta = 0.6): Beta quantiles of
 * 1 - linspace(0, 1, steps, endpoint=False) pick training timesteps; repeats are dropped.
 */
function beta(model: DiscreteSchedule, steps: number, alpha = 0.6, betaParam = 0.6): Float64Array {
  const total = model.sigmas.length - 1;
  const picked: number[] = [];
  let last = -1;
  for (const u of numpyLinspace(0, 1, steps, false)) {
    const t = roundHalfEven(betaPpf(1 - u, alpha, betaParam) * total);
    if (t !== last) picked.push(model.sigmas[t]);
    last = t;
  }
  return withZero(picked);
}

/**
 * The schedules by name. `normal` is diffusers' (the model's own spaced timesteps);
 * `uniform` is k-diffusion's default get_sigmas, which ComfyUI calls "normal" and A1111 "Uniform"
 * (and A1111's "Normal" computes the same). karras and exponential span the model's whole sigma
 * range as k-diffusion, A1111 and ComfyUI do. `lcm` (LCMScheduler's timesteps) comes from vp-samplers.ts.
 */
export const SCHEDULES: Record<string, Schedule> = {
  normal: (model, steps) => normalSigmas(model, steps),
  karras: (model, steps) => karrasSigmas(steps, model.sigmaMin, model.sigmaMax),
  exponential: (model, steps) => exponentialSigmas(steps, model.sigmaMin, model.sigmaMax),
  uniform,
  sgm_uniform: sgmUniform,
  simple,
  ddim_uniform: ddimUniform,
  beta: (model, steps) => beta(model, steps),
  ...VP_SCHEDULES,
};
