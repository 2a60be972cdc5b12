/**
 * diffusers' TCDScheduler (Trajectory Consistency Distillation, arXiv:2402.19159): LCM's
 * timesteps, and a step that predicts x0 and epsilon at t, goes back down to
 * s = floor((1 - gamma) * t_prev) along them, then (gamma > 0, all but the last step) re-noises
 * from s up to t_prev with fresh noise. gamma is the sampler's eta, default 0.3 (TCDScheduler.step's;
 * diffusers' pipelines pass their own eta, 0, unless told). Past the last timestep TCD steps to
 * timestep 0 (alphas_cumprod[0]), not to final_alpha_cumprod; the result is its latents there.
 */
import type { Sampler } from './types.js';
import { diffusersPrediction, fromVp, pointAtSigma, pointAtTimestep, toVp, vpResult } from './vp-grid.js';

export const tcd: Sampler = async (denoise, x, sigmas, options) => {
  const { model } = denoise;
  const gamma = options.eta ?? 0.3;
  const steps = sigmas.length - 1;
  let xvp = toVp(x, sigmas[0]);
  for (let i = 0; i < steps; i++) {
    const here = pointAtSigma(model, sigmas[i]);
    const prev = sigmas[i + 1] > 0 ? pointAtSigma(model, sigmas[i + 1]) : pointAtTimestep(model, 0);
    // torch: (1 - eta) * prev_timestep is a float32 tensor op, then floored.
    const s = pointAtTimestep(model, Math.floor(Math.fround(Math.fround(1 - gamma) * prev.t)));
    const xIn = fromVp(xvp, here.sigma);
    const denoised = await denoise(xIn, here.sigma);
    const { x0, eps } = diffusersPrediction(model, xvp, here, xIn, denoised);
    const cX0 = Math.sqrt(s.alpha);
    const cEps = Math.sqrt(1 - s.alpha);
    const noised = x0.map((v, k) => cX0 * v + cEps * eps[k]);
    if (gamma > 0 && i < steps - 1) {
      const noise = options.noise(sigmas[i], sigmas[i + 1]);
      const ratio = prev.alpha / s.alpha;
      const cNoised = Math.sqrt(ratio);
      const cNoise = Math.sqrt(1 - ratio);
      xvp = noised.map((v, k) => cNoised * v + cNoise * noise[k]);
    } else {
      xvp = noised;
    }
    options.onStep?.({ step: i, total: steps, sigma: sigmas[i], x: vpResult(xvp, sigmas[i + 1]), denoised });
  }
  return vpResult(xvp, sigmas[steps]);
};
