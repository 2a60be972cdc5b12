/**
 * The sampling core: noise schedules, k-diffusion and diffusers samplers, and their names.
 *
 * Use with any epsilon / v-prediction network:
 *
 * ```ts
 * import { discreteSchedule, makeDenoiser, planSampling, resolveSampler } from './schedulers/index.js';
 *
 * const model = discreteSchedule(JSON.parse(schedulerConfigJson)); // diffusers scheduler_config.json
 * const { sampler, schedule } = resolveSampler('DPM++ 2M Karras'); // or ('dpmpp_2m', 'karras')
 * const plan = planSampling({ model, sampler, schedule, steps: 20 });
 * // net(xIn, t, sigma): the UNet on the scaled latents (classifier-free guidance inside), returning
 * // epsilon or v as the config's prediction_type says.
 * const denoise = makeDenoiser(model, net, { timestepOf: plan.timestepOf });
 * let x = plan.startLatents(unitNoise);              // unitNoise: Float32Array of N(0, 1)
 * const noise = () => rng.randn(x.length);          // ancestral / SDE noise, a continuing stream
 * x = await plan.sampler(denoise, x, plan.sigmas, { model, noise, inferenceSteps: plan.inferenceSteps });
 * const latents = x.map((v) => v * plan.finalScale); // what diffusers hands the VAE
 * ```
 */
export { discreteSchedule, type SchedulerConfig } from './model.js';
export { SCHEDULES, type TimestepRule } from './schedules.js';
export { makeDenoiser, type DenoiserOptions, type NetFn } from './denoiser.js';
export {
  SAMPLERS,
  SAMPLER_SPECS,
  modelCalls,
  UnknownSamplerError,
  a1111Name,
  resolveSampler,
  samplerNames,
  type ResolvedSampler,
  type SamplerId,
  type SamplerSpec,
} from './names.js';
export { planSampling, type PlanRequest, type SamplingPlan } from './plan.js';
export type * from './types.js';
