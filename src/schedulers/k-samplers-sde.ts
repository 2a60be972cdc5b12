/**
 * k-diffusion's DPM-Solver++ SDE samplers (k_diffusion/sampling.py, v0.1.1). The noise comes from
 * options.noise, called with the same (sigma, sigmaNext) intervals and in the same order as
 * k-diffusion calls its noise_sampler: the pipeline passes k-diffusion's default Brownian tree
 * (src/rng/brownian-tree.ts) or a plain stream (diffusers' DPMSolverMultistep SDE).
 */
import { addNoise, addScaled, ancestralStep, combine, firstOrderLast, report, toD } from './k-samplers.js';
import type { Latents, Sampler } from './types.js';

const f32 = Math.fround;

/** DPM-Solver++ (stochastic), r = 1/2; eta defaults to 1. Two noise draws per step. */
export const dpmppSde: Sampler = async (denoise, x, sigmas, options) => {
  const eta = options.eta ?? 1;
  const r = 1 / 2;
  for (let i = 0; i < sigmas.length - 1; i++) {
    const sigma = sigmas[i];
    const denoised = await denoise(x, sigma);
    if (sigmas[i + 1] === 0) {
      x = addScaled(x, toD(x, sigma, denoised), -sigma);
    } else {
      // Times are lambda = -log(sigma); s is the intermediate point r of the way.
      const t = -Math.log(sigma);
      const tNext = -Math.log(sigmas[i + 1]);
      const h = tNext - t;
      const sigmaS = Math.exp(-(t + h * r));
      const fac = 1 / (2 * r);

      // The noise sampler's query points as k-diffusion computes them, in float32 tensors: a
      // Brownian tree rounds times to 1e-6, so its noise depends on their last bits.
      const tQuery = f32(-f32(Math.log(f32(sigma))));
      const tNextQuery = f32(-f32(Math.log(f32(sigmas[i + 1]))));
      const sQuery = f32(tQuery + f32(f32(tNextQuery - tQuery) * r));
      const [from, mid, to] = [tQuery, sQuery, tNextQuery].map((v) => f32(Math.exp(-v)));

      const step1 = ancestralStep(sigma, sigmaS, eta);
      const s1 = -Math.log(step1.down);
      let x2 = combine(step1.down / sigma, x, -Math.expm1(t - s1), denoised);
      x2 = addNoise(x2, options, step1.up, from, mid);
      const denoised2 = await denoise(x2, sigmaS);

      const step2 = ancestralStep(sigma, sigmas[i + 1], eta);
      const t2 = -Math.log(step2.down);
      const blended = combine(1 - fac, denoised, fac, denoised2);
      x = combine(step2.down / sigma, x, -Math.expm1(t - t2), blended);
      x = addNoise(x, options, step2.up, from, to);
    }
    report(options, i, sigmas, x, denoised);
  }
  return x;
};

export type SolverType = 'midpoint' | 'heun';

/** DPM-Solver++(2M) SDE; eta defaults to 1. */
export function dpmpp2mSde(solverType: SolverType): Sampler {
  return async (denoise, x, sigmas, options) => {
    const eta = options.eta ?? 1;
    let oldDenoised: Latents | undefined;
    let hLast = 0;
    for (let i = 0; i < sigmas.length - 1; i++) {
      const denoised = await denoise(x, sigmas[i]);
      if (sigmas[i + 1] === 0) {
        x = Float32Array.from(denoised);
      } else {
        const h = Math.log(sigmas[i]) - Math.log(sigmas[i + 1]);
        const etaH = eta * h;
        const decay = -Math.expm1(-h - etaH);
        x = combine((sigmas[i + 1] / sigmas[i]) * Math.exp(-etaH), x, decay, denoised);
        if (oldDenoised && !firstOrderLast(denoise, sigmas, i)) {
          const r = hLast / h;
          const weight = solverType === 'heun' ? (decay / (-h - etaH) + 1) / r : (0.5 * decay) / r;
          const next = new Float32Array(x.length);
          for (let k = 0; k < x.length; k++) next[k] = x[k] + weight * Math.fround(denoised[k] - oldDenoised[k]);
          x = next;
        }
        if (eta) {
          x = addNoise(x, options, sigmas[i + 1] * Math.sqrt(-Math.expm1(-2 * etaH)), sigmas[i], sigmas[i + 1]);
        }
        hLast = h;
      }
      oldDenoised = denoised;
      report(options, i, sigmas, x, denoised);
    }
    return x;
  };
}

/** DPM-Solver++(3M) SDE; eta defaults to 1. */
export const dpmpp3mSde: Sampler = async (denoise, x, sigmas, options) => {
  const eta = options.eta ?? 1;
  let denoised1: Latents | undefined;
  let denoised2: Latents | undefined;
  let h1: number | undefined;
  let h2: number | undefined;
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = await denoise(x, sigmas[i]);
    if (sigmas[i + 1] === 0) {
      x = Float32Array.from(denoised);
    } else {
      const h = Math.log(sigmas[i]) - Math.log(sigmas[i + 1]);
      const hEta = h * (eta + 1);
      x = combine(Math.exp(-hEta), x, -Math.expm1(-hEta), denoised);
      const phi2 = Math.expm1(-hEta) / hEta + 1;
      const next = new Float32Array(x.length);
      if (h2 !== undefined && denoised1 && denoised2) {
        const r0 = h1! / h;
        const r1 = h2 / h;
        const phi3 = phi2 / hEta - 0.5;
        for (let k = 0; k < x.length; k++) {
          const d10 = (denoised[k] - denoised1[k]) / r0;
          const d11 = (denoised1[k] - denoised2[k]) / r1;
          const d1 = d10 + ((d10 - d11) * r0) / (r0 + r1);
          const d2 = (d10 - d11) / (r0 + r1);
          next[k] = x[k] + phi2 * d1 - phi3 * d2;
        }
        x = next;
      } else if (h1 !== undefined && denoised1) {
        const r = h1 / h;
        for (let k = 0; k < x.length; k++) next[k] = x[k] + (phi2 * (denoised[k] - denoised1[k])) / r;
        x = next;
      }
      if (eta) {
        x = addNoise(x, options, sigmas[i + 1] * Math.sqrt(-Math.expm1(-2 * h * eta)), sigmas[i], sigmas[i + 1]);
      }
      h2 = h1;
      h1 = h;
    }
    denoised2 = denoised1;
    denoised1 = denoised;
    report(options, i, sigmas, x, denoised);
  }
  return x;
};
