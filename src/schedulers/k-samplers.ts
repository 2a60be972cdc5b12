/**
 * k-diffusion's deterministic and ancestral samplers (k_diffusion/sampling.py, v0.1.1), one small
 * function each. Latents are float32 arrays as in the reference; the per-element arithmetic runs
 * in float64 and is stored to float32 where the reference stores a tensor.
 */
import { lmsCoefficients } from './k-samplers-lms.js';
import type { Denoiser, Latents, Sampler, SamplerOptions } from './types.js';

/**
 * (x - denoised) / sigma: the Karras ODE derivative, a float32 op at a time as torch computes it
 * (at sigmas in the thousands, zero-SNR models, x - denoised cancels and the roundings show).
 */
export function toD(x: Latents, sigma: number, denoised: Latents): Latents {
  const d = new Float32Array(x.length);
  const s = Math.fround(sigma);
  for (let i = 0; i < x.length; i++) d[i] = Math.fround(x[i] - denoised[i]) / s;
  return d;
}

/** x + d * dt, float32 op by op (dt is the float32 difference of two sigmas in the references). */
export function addScaled(x: Latents, d: Latents, dt: number): Latents {
  const out = new Float32Array(x.length);
  const step = Math.fround(dt);
  for (let i = 0; i < x.length; i++) out[i] = x[i] + Math.fround(d[i] * step);
  return out;
}

/** x + noise() * scale, drawing noise only when the scale is not zero (as the references do). */
export function addNoise(x: Latents, options: SamplerOptions, scale: number, sigma: number, sigmaNext: number): Latents {
  const noise = options.noise(sigma, sigmaNext);
  const s = scale * (options.sNoise ?? 1);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] + noise[i] * s;
  return out;
}

/**
 * The noise level to step down to and the noise to add back for an ancestral step
 * (k-diffusion get_ancestral_step).
 */
export function ancestralStep(sigmaFrom: number, sigmaTo: number, eta = 1): { down: number; up: number } {
  if (!eta) return { down: sigmaTo, up: 0 };
  const up = Math.min(sigmaTo, eta * Math.sqrt((sigmaTo ** 2 * (sigmaFrom ** 2 - sigmaTo ** 2)) / sigmaFrom ** 2));
  return { down: Math.sqrt(sigmaTo ** 2 - up ** 2), up };
}

/** Reports a finished step to options.onStep. */
export function report(options: SamplerOptions, step: number, sigmas: Float64Array, x: Latents, denoised: Latents): void {
  options.onStep?.({ step, total: sigmas.length - 1, sigma: sigmas[step], x, denoised });
}

export const euler: Sampler = async (denoise, x, sigmas, options) => {
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = await denoise(x, sigmas[i]);
    x = addScaled(x, toD(x, sigmas[i], denoised), sigmas[i + 1] - sigmas[i]);
    report(options, i, sigmas, x, denoised);
  }
  return x;
};

/** Euler ancestral; eta defaults to 1. */
export const eulerAncestral: Sampler = async (denoise, x, sigmas, options) => {
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = await denoise(x, sigmas[i]);
    const { down, up } = ancestralStep(sigmas[i], sigmas[i + 1], options.eta ?? 1);
    x = addScaled(x, toD(x, sigmas[i], denoised), down - sigmas[i]);
    if (sigmas[i + 1] > 0) x = addNoise(x, options, up, sigmas[i], sigmas[i + 1]);
    report(options, i, sigmas, x, denoised);
  }
  return x;
};

/** One Heun step from sigma to sigmaNext (an Euler step onto 0); also the denoised estimate at sigma. */
export async function heunStep(denoise: Denoiser, x: Latents, sigma: number, sigmaNext: number): Promise<{ x: Latents; denoised: Latents }> {
  const denoised = await denoise(x, sigma);
  const d = toD(x, sigma, denoised);
  const dt = sigmaNext - sigma;
  if (sigmaNext === 0) return { x: addScaled(x, d, dt), denoised };
  const x2 = addScaled(x, d, dt);
  const d2 = toD(x2, sigmaNext, await denoise(x2, sigmaNext));
  const next = new Float32Array(x.length);
  for (let k = 0; k < x.length; k++) next[k] = x[k] + Math.fround((d[k] + d2[k]) / 2) * dt;
  return { x: next, denoised };
}

export const heun: Sampler = async (denoise, x, sigmas, options) => {
  for (let i = 0; i < sigmas.length - 1; i++) {
    const step = await heunStep(denoise, x, sigmas[i], sigmas[i + 1]);
    x = step.x;
    report(options, i, sigmas, x, step.denoised);
  }
  return x;
};

/** The geometric mean of two sigmas: k-diffusion's log-space lerp at 0.5. */
function logMidpoint(a: number, b: number): number {
  return Math.exp(Math.log(a) + 0.5 * (Math.log(b) - Math.log(a)));
}

/** DPM-Solver-2 step from sigma to sigmaTo with the derivative d at sigma (midpoint in log-sigma). */
async function dpm2Step(denoise: Denoiser, x: Latents, d: Latents, sigma: number, sigmaTo: number): Promise<Latents> {
  const sigmaMid = logMidpoint(sigma, sigmaTo);
  const x2 = addScaled(x, d, sigmaMid - sigma);
  const d2 = toD(x2, sigmaMid, await denoise(x2, sigmaMid));
  return addScaled(x, d2, sigmaTo - sigma);
}

export const dpm2: Sampler = async (denoise, x, sigmas, options) => {
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = await denoise(x, sigmas[i]);
    const d = toD(x, sigmas[i], denoised);
    x =
      sigmas[i + 1] === 0
        ? addScaled(x, d, sigmas[i + 1] - sigmas[i])
        : await dpm2Step(denoise, x, d, sigmas[i], sigmas[i + 1]);
    report(options, i, sigmas, x, denoised);
  }
  return x;
};

/** DPM2 ancestral; eta defaults to 1. Noise is drawn only after a DPM-Solver-2 step, as in k-diffusion. */
export const dpm2Ancestral: Sampler = async (denoise, x, sigmas, options) => {
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = await denoise(x, sigmas[i]);
    const { down, up } = ancestralStep(sigmas[i], sigmas[i + 1], options.eta ?? 1);
    const d = toD(x, sigmas[i], denoised);
    if (down === 0) {
      x = addScaled(x, d, down - sigmas[i]);
    } else {
      x = await dpm2Step(denoise, x, d, sigmas[i], down);
      x = addNoise(x, options, up, sigmas[i], sigmas[i + 1]);
    }
    report(options, i, sigmas, x, denoised);
  }
  return x;
};

/** Linear multistep, order 4 (k-diffusion sample_lms). */
export const lms: Sampler = async (denoise, x, sigmas, options) => {
  const order = 4;
  const ds: Latents[] = [];
  // diffusers' img2img keeps LMS's order and weights keyed to the whole schedule's steps.
  const full = denoise.grid?.cut?.sigmas ?? sigmas;
  const start = denoise.grid?.cut?.start ?? 0;
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = await denoise(x, sigmas[i]);
    ds.push(toD(x, sigmas[i], denoised));
    if (ds.length > order) ds.shift();
    // With fewer derivatives than the order (diffusers img2img), the newest ones take the weights.
    const coeffs = lmsCoefficients(full, start + i, Math.min(start + i + 1, order)).slice(0, ds.length);
    const next = new Float32Array(x.length);
    for (let k = 0; k < x.length; k++) {
      let sum = 0;
      for (let j = 0; j < coeffs.length; j++) sum += coeffs[j] * ds[ds.length - 1 - j][k];
      next[k] = x[k] + sum;
    }
    x = next;
    report(options, i, sigmas, x, denoised);
  }
  return x;
};

/** a * x + b * y */
export function combine(a: number, x: Latents, b: number, y: Latents): Latents {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = a * x[i] + b * y[i];
  return out;
}

/** DPM-Solver++(2S) ancestral; eta defaults to 1. */
export const dpmpp2sAncestral: Sampler = async (denoise, x, sigmas, options) => {
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = await denoise(x, sigmas[i]);
    const { down, up } = ancestralStep(sigmas[i], sigmas[i + 1], options.eta ?? 1);
    if (down === 0) {
      x = addScaled(x, toD(x, sigmas[i], denoised), down - sigmas[i]);
    } else {
      // In lambda = -log(sigma): a half step to s, then the full step with the midpoint's x0.
      const h = Math.log(sigmas[i]) - Math.log(down);
      const sigmaS = Math.exp(-(-Math.log(sigmas[i]) + h / 2));
      const x2 = combine(sigmaS / sigmas[i], x, -Math.expm1(-h / 2), denoised);
      const denoised2 = await denoise(x2, sigmaS);
      x = combine(down / sigmas[i], x, -Math.expm1(-h), denoised2);
    }
    if (sigmas[i + 1] > 0) x = addNoise(x, options, up, sigmas[i], sigmas[i + 1]);
    report(options, i, sigmas, x, denoised);
  }
  return x;
};

/**
 * diffusers' DPMSolverMultistep lower_order_final: on its own list (the denoiser carries the grid)
 * under 15 steps the last step is first order. It matters only when that step stops above 0
 * (final_sigmas_type sigma_min); a step onto 0 lands on the x0 estimate either way.
 */
export function firstOrderLast(denoise: Denoiser, sigmas: Float64Array, i: number): boolean {
  const steps = (denoise.grid?.cut?.sigmas ?? sigmas).length - 1;
  return i === sigmas.length - 2 && denoise.grid !== undefined && denoise.model.lowerOrderFinal && steps < 15;
}

/** DPM-Solver++(2M). */
export const dpmpp2m: Sampler = async (denoise, x, sigmas, options) => {
  let oldDenoised: Latents | undefined;
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = await denoise(x, sigmas[i]);
    if (sigmas[i + 1] === 0) {
      // sigma_next / sigma = 0 and -expm1(-inf) = 1: the step lands on the x0 estimate.
      x = Float32Array.from(denoised);
    } else {
      const h = Math.log(sigmas[i]) - Math.log(sigmas[i + 1]);
      let target = denoised;
      if (oldDenoised && !firstOrderLast(denoise, sigmas, i)) {
        const r = (Math.log(sigmas[i - 1]) - Math.log(sigmas[i])) / h;
        target = combine(1 + 1 / (2 * r), denoised, -1 / (2 * r), oldDenoised);
      }
      x = combine(sigmas[i + 1] / sigmas[i], x, -Math.expm1(-h), target);
    }
    oldDenoised = denoised;
    report(options, i, sigmas, x, denoised);
  }
  return x;
};
