/**
 * diffusers' DDIMScheduler and DDPMScheduler steps, run on diffusers' VP latents between
 * sigma-space denoiser calls, with the config's clip_sample or thresholding (vp-x0-limit.ts).
 */
import type { Sampler } from './types.js';
import { ddimTarget, diffusersPrediction, diffusersStride, fromVp, pointAtSigma, toVp, vpResult } from './vp-grid.js';
import { limitX0 } from './vp-x0-limit.js';

/**
 * DDIMScheduler.step: x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev - std²) eps + std * noise with
 * std = eta * sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)). eta defaults to 0 (diffusers'
 * default); with eta > 0 each step draws one noise tensor, the last step included.
 */
export const ddim: Sampler = async (denoise, x, sigmas, options) => {
  const { model } = denoise;
  const eta = options.eta ?? 0;
  const stride = diffusersStride(denoise);
  const steps = sigmas.length - 1;
  let xvp = toVp(x, sigmas[0]);
  for (let i = 0; i < steps; i++) {
    const here = pointAtSigma(model, sigmas[i]);
    const aT = here.alpha;
    const aPrev = ddimTarget(model, sigmas, i, stride).alpha;
    const xIn = fromVp(xvp, here.sigma);
    const denoised = await denoise(xIn, here.sigma);
    const { x0: raw, eps } = diffusersPrediction(model, xvp, here, xIn, denoised);
    // The limit reaches x0 only: the direction term keeps the network's own epsilon.
    const x0 = limitX0(raw, model.x0Limit, denoise.batch);
    const std = eta * Math.sqrt(((1 - aPrev) / (1 - aT)) * (1 - aT / aPrev));
    const cX0 = Math.sqrt(aPrev);
    const cEps = Math.sqrt(1 - aPrev - std * std);
    const noise = eta > 0 ? options.noise(sigmas[i], sigmas[i + 1]) : undefined;
    xvp = x0.map((v, k) => cX0 * v + cEps * eps[k] + (noise ? std * noise[k] : 0));
    options.onStep?.({ step: i, total: steps, sigma: sigmas[i], x: vpResult(xvp, sigmas[i + 1]), denoised });
  }
  return vpResult(xvp, sigmas[steps]);
};

/**
 * DDPMScheduler.step with variance_type fixed_small: the posterior mean of x_prev given x0 and x_t
 * plus sqrt(posterior variance) * noise, drawn whenever the current timestep is above 0 (so the
 * last step of a leading schedule, t = 1, still draws, adding ~1e-10 * noise). After the last
 * timestep diffusers uses alpha_prev = 1, not final_alpha_cumprod.
 */
export const ddpm: Sampler = async (denoise, x, sigmas, options) => {
  const { model } = denoise;
  const steps = sigmas.length - 1;
  let xvp = toVp(x, sigmas[0]);
  for (let i = 0; i < steps; i++) {
    const here = pointAtSigma(model, sigmas[i]);
    const aT = here.alpha;
    const aPrev = sigmas[i + 1] > 0 ? pointAtSigma(model, sigmas[i + 1]).alpha : 1;
    const xIn = fromVp(xvp, here.sigma);
    const denoised = await denoise(xIn, here.sigma);
    const x0 = limitX0(diffusersPrediction(model, xvp, here, xIn, denoised).x0, model.x0Limit, denoise.batch);
    const stepAlpha = aT / aPrev;
    const stepBeta = 1 - stepAlpha;
    const cX0 = (Math.sqrt(aPrev) * stepBeta) / (1 - aT);
    const cX = (Math.sqrt(stepAlpha) * (1 - aPrev)) / (1 - aT);
    const noise = here.t > 0 ? options.noise(sigmas[i], sigmas[i + 1]) : undefined;
    const std = Math.sqrt(Math.max(((1 - aPrev) / (1 - aT)) * stepBeta, 1e-20));
    xvp = x0.map((v, k) => cX0 * v + cX * xvp[k] + (noise ? std * noise[k] : 0));
    options.onStep?.({ step: i, total: steps, sigma: sigmas[i], x: vpResult(xvp, sigmas[i + 1]), denoised });
  }
  return vpResult(xvp, sigmas[steps]);
};
