/**
 * diffusers' LCMScheduler: its timestep selection and its consistency step (boundary-condition
 * scalings, then fresh noise to the next timestep).
 */
import type { DiscreteSchedule, Sampler } from './types.js';
import { diffusersPrediction, fromVp, pointAtSigma, toVp, vpResult } from './vp-grid.js';

/** LCMScheduler's timestep_scaling default: c_skip/c_out see t * 10. */
const TIMESTEP_SCALING = 10;
/** sigma_data of the consistency boundary condition. */
const SIGMA_DATA = 0.5;

/**
 * LCMScheduler.set_timesteps(steps) (TCDScheduler's is the same): of the distillation's skipping
 * schedule k - 1, 2k - 1, ..., N - 1 (k = N // original_inference_steps), descending, take
 * indices floor(linspace(0, original_inference_steps, steps, endpoint=False)). 4 steps: 999, 759, 499, 259.
 */
export function lcmTimesteps(model: DiscreteSchedule, steps: number, originalSteps = model.originalInferenceSteps): number[] {
  if (steps > originalSteps) {
    throw new Error(`LCM runs at most ${originalSteps} steps (original_inference_steps), got ${steps}`);
  }
  const k = Math.floor(model.numTrainTimesteps / originalSteps);
  const descending = Array.from({ length: originalSteps }, (_, i) => (originalSteps - i) * k - 1);
  const spacing = originalSteps / steps; // numpy's linspace step, multiplied as numpy does
  return Array.from({ length: steps }, (_, i) => descending[Math.floor(i * spacing)]);
}

/**
 * LCMScheduler.step: denoised = c_out(t) * x0 + c_skip(t) * x_vp, then, except after the last
 * step, x_vp = sqrt(a_next) * denoised + sqrt(1 - a_next) * noise (one draw per step). The last
 * step returns denoised itself, which is what the pipeline decodes.
 */
export const lcm: Sampler = async (denoise, x, sigmas, options) => {
  const { model } = denoise;
  const steps = sigmas.length - 1;
  let xvp = toVp(x, sigmas[0]);
  for (let i = 0; i < steps; i++) {
    const here = pointAtSigma(model, sigmas[i]);
    const xIn = fromVp(xvp, here.sigma);
    const denoised = await denoise(xIn, here.sigma);
    const { x0 } = diffusersPrediction(model, xvp, here, xIn, denoised);
    const scaled = here.t * TIMESTEP_SCALING;
    const cSkip = SIGMA_DATA ** 2 / (scaled * scaled + SIGMA_DATA ** 2);
    const cOut = scaled / Math.sqrt(scaled * scaled + SIGMA_DATA ** 2);
    const consistent = x0.map((v, k) => cOut * v + cSkip * xvp[k]);
    if (sigmas[i + 1] > 0) {
      const aNext = pointAtSigma(model, sigmas[i + 1]).alpha;
      const noise = options.noise(sigmas[i], sigmas[i + 1]);
      const cConsistent = Math.sqrt(aNext);
      const cNoise = Math.sqrt(1 - aNext);
      xvp = consistent.map((v, k) => cConsistent * v + cNoise * noise[k]);
    } else {
      xvp = consistent;
    }
    options.onStep?.({ step: i, total: steps, sigma: sigmas[i], x: vpResult(xvp, sigmas[i + 1]), denoised });
  }
  return vpResult(xvp, sigmas[steps]);
};
