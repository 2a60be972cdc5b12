/**
 * The sigma functions of k-diffusion, ComfyUI and A1111, independent of the sampler (ComfyUI's
 * two axes). Each returns descending sigmas, ending in 0 unless the reference stops above it,
 * rounded to float32 because every reference hands its sampler float32 sigmas; the arithmetic
 * mirrors the reference's (torch float32 or numpy float64) step by step. schedule-table.ts names them.
 */
import { torchLinspace32 } from './model.js';
import { numpyInterp, numpyLinspace } from './numpy.js';
import { roundHalfEven } from '../round-half-even.js';
import type { DiscreteSchedule } from './types.js';

const f32 = Math.fround;

/** Sigmas rounded to float32 as the references hand them to their samplers, then a final 0. */
export function withZero(sigmas: ArrayLike<number>): Float64Array {
  const out = new Float64Array(sigmas.length + 1);
  for (let i = 0; i < sigmas.length; i++) out[i] = f32(sigmas[i]);
  return out;
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

/**
 * diffusers' use_lu_lambdas (DPMSolverMultistep, Lu et al.'s uniform log-SNR steps): numpy float64
 * from the float32 logs of the model's extreme sigmas; with rho 1 it is `exponential` computed
 * another way.
 */
export function luLambdaSigmas(n: number, sigmaMin: number, sigmaMax: number): Float64Array {
  const lambdaMin = f32(Math.log(sigmaMin));
  const lambdaMax = f32(Math.log(sigmaMax));
  return withZero(numpyLinspace(0, 1, n).map((r) => Math.exp(lambdaMax + r * (lambdaMin - lambdaMax))));
}

/** k-diffusion DiscreteSchedule.get_sigmas(n) (A1111 "Uniform", ComfyUI "normal"): linspace in t. */
export function uniform(model: DiscreteSchedule, steps: number): Float64Array {
  return withZero(torchLinspace32(model.numTrainTimesteps - 1, 0, steps).map((t) => tToSigma32(model, t)));
}

/** ComfyUI/A1111 sgm_uniform: steps + 1 points in t, the last (t = 0) dropped. */
export function sgmUniform(model: DiscreteSchedule, steps: number): Float64Array {
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
export function simple(model: DiscreteSchedule, steps: number): Float64Array {
  const n = model.sigmas.length;
  const stride = n / steps;
  return withZero(Array.from({ length: steps }, (_, x) => model.sigmas[n - 1 - Math.trunc(x * stride)]));
}

/**
 * ComfyUI ddim_scheduler: training sigmas 1, 1 + stride, ... with stride len // steps, so it can
 * yield more steps than asked when steps does not divide the training range.
 */
export function ddimUniform(model: DiscreteSchedule, steps: number): Float64Array {
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
export function beta(model: DiscreteSchedule, steps: number, alpha = 0.6, betaParam = 0.6): Float64Array {
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

/** ComfyUI's kl_optimal_scheduler / A1111's kl_optimal: uniform in arctan(sigma), float32 tensor ops. */
function klOptimalRamp(fractions: ArrayLike<number>, atanMin: number, atanMax: number): Float64Array {
  return Float64Array.from(fractions, (w) => f32(Math.tan(f32(f32(w * atanMin) + f32(f32(1 - w) * atanMax)))));
}

/**
 * ComfyUI kl_optimal_scheduler (arXiv:2404.14507, via A1111 PR 15608): n sigmas from sigma_max
 * to sigma_min, then 0. ComfyUI divides by n - 1 and so returns [nan, 0] for one step; here one
 * step is [sigma_max, 0], what the formula means. tan near pi/2 magnifies its argument's error
 * ~sigma-fold, so the arctans are float32 exactly as torch holds them.
 */
export function klOptimalSigmas(n: number, sigmaMin: number, sigmaMax: number): Float64Array {
  const fractions = Float64Array.from({ length: n }, (_, i) => (n > 1 ? f32(i / (n - 1)) : 0));
  return withZero(klOptimalRamp(fractions, f32(Math.atan(sigmaMin)), f32(Math.atan(sigmaMax))));
}

/**
 * A1111's "KL Optimal": n + 1 sigmas from sigma_max down to sigma_min itself, no final 0, so
 * sampling stops at sigma_min (the image keeps that much noise); ComfyUI's ends in 0 instead.
 */
export function klOptimalA1111Sigmas(n: number, sigmaMin: number, sigmaMax: number): Float64Array {
  const fractions = Float64Array.from({ length: n + 1 }, (_, i) => f32(i / n));
  return klOptimalRamp(fractions, f32(Math.atan(f32(sigmaMin))), f32(Math.atan(f32(sigmaMax))));
}

/**
 * k-diffusion get_sigmas_polyexponential (A1111 "Polyexponential", rho = 1 as A1111 defaults):
 * log sigma is a power of a linear ramp; rho = 1 is exactly `exponential` up to float32 rounding order.
 */
export function polyexponentialSigmas(n: number, sigmaMin: number, sigmaMax: number, rho = 1): Float64Array {
  const span = f32(Math.log(sigmaMax) - Math.log(sigmaMin));
  const logMin = f32(Math.log(sigmaMin));
  return withZero(torchLinspace32(1, 0, n).map((r) => f32(Math.exp(f32(f32(f32(r ** rho) * span) + logMin)))));
}

/**
 * ComfyUI linear_quadratic_schedule (from Genmo's Mochi): sigma / sigma_max falls linearly to
 * threshold_noise over the first half of the steps, then quadratically to 0. Python floats,
 * then one float32 tensor times the model's float32 sigma_max.
 */
export function linearQuadraticSigmas(steps: number, sigmaMax: number, thresholdNoise = 0.025): Float64Array {
  let schedule: number[];
  if (steps === 1) {
    schedule = [1, 0];
  } else {
    const linearSteps = Math.floor(steps / 2);
    const stepDiff = linearSteps - thresholdNoise * steps;
    const quadraticSteps = steps - linearSteps;
    const quadraticCoef = stepDiff / (linearSteps * quadraticSteps ** 2);
    const linearCoef = thresholdNoise / linearSteps - (2 * stepDiff) / quadraticSteps ** 2;
    const constant = quadraticCoef * linearSteps ** 2;
    const rising = [
      ...Array.from({ length: linearSteps }, (_, i) => (i * thresholdNoise) / linearSteps),
      ...Array.from({ length: quadraticSteps }, (_, k) => {
        const i = linearSteps + k;
        return quadraticCoef * i ** 2 + linearCoef * i + constant;
      }),
      1,
    ];
    schedule = rising.map((x) => 1 - x);
  }
  const max = f32(sigmaMax);
  return Float64Array.from(schedule, (x) => f32(f32(x) * max));
}

/**
 * NVIDIA's Align Your Steps noise levels (research.nvidia.com/labs/toronto-ai/AlignYourSteps),
 * 10 steps, descending. ComfyUI's AlignYourStepsScheduler carries them to 10 decimals; A1111's
 * table is rounded to 3, and several of its SD 1.x values differ in the third decimal too
 * (3.861 vs 3.8637, 2.697 vs 2.6946, ...).
 */
export const AYS_NOISE_LEVELS = {
  sd1: [14.6146412293, 6.4745760956, 3.8636745985, 2.694615152, 1.8841921177, 1.3943805092, 0.9642583904, 0.6523686016, 0.3977456272, 0.1515232662, 0.0291671582],
  sdxl: [14.6146412293, 6.3184485287, 3.7681790315, 2.1811480769, 1.3405244945, 0.8620721141, 0.5550693289, 0.3798540708, 0.2332364134, 0.1114188177, 0.0291671582],
  sd1A1111: [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029],
} as const;

/** The AYS authors' loglinear_interp: a descending table resampled to `count` points, linear in log sigma. */
function logLinearInterp(levels: readonly number[], count: number): Float64Array {
  const xs = numpyLinspace(0, 1, levels.length);
  const logs = levels.map(Math.log).reverse();
  const out = numpyLinspace(0, 1, count).map((x) => Math.exp(numpyInterp(x, xs, logs)));
  return out.reverse();
}

/**
 * ComfyUI AlignYourStepsScheduler at full denoise: the table resampled to steps + 1 points, the
 * last (sigma_min) replaced by 0, so the final step jumps from the next level straight to 0.
 */
export function alignYourStepsSigmas(levels: readonly number[], steps: number): Float64Array {
  const sigmas = steps + 1 === levels.length ? Float64Array.from(levels) : logLinearInterp(levels, steps + 1);
  sigmas[steps] = 0;
  return sigmas.map(f32);
}

/**
 * A1111's "Align Your Steps": the table resampled to `steps` points (sigma_min kept as the last
 * one), then a 0 appended. One step therefore starts at sigma_min (0.029), as A1111 does.
 */
export function alignYourStepsA1111Sigmas(levels: readonly number[], steps: number): Float64Array {
  return withZero(steps === levels.length ? levels : logLinearInterp(levels, steps));
}
