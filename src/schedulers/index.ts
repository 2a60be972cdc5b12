/**
 * The sampling core: noise schedules, k-diffusion and diffusers samplers, and their names.
 *
 * Use with any epsilon / v-prediction network:
 *
 * ```ts
 * import { discreteSchedule, planSampling, resolveSampler } from './schedulers/index.js';
 *
 * const model = discreteSchedule(JSON.parse(schedulerConfigJson)); // diffusers scheduler_config.json
 * const { sampler, schedule, noiseTable } = resolveSampler('DPM++ 2M Karras'); // or ('dpmpp_2m', 'karras')
 * const plan = planSampling({ model, sampler, schedule, noiseTable, steps: 20 });
 * // net(xIn, t, sigma): the UNet on the scaled latents (classifier-free guidance inside), returning
 * // epsilon or v as the config's prediction_type says.
 * const denoise = plan.denoiser(net);               // carries plan.model and diffusers' grid
 * let x = plan.startLatents(unitNoise);              // unitNoise: Float32Array of N(0, 1)
 * const noise = () => rng.randn(x.length);          // ancestral / SDE noise, a continuing stream
 * x = await plan.sampler(denoise, x, plan.sigmas, { noise });
 * const latents = x.map((v) => v * plan.finalScale); // what the reference hands the VAE
 * ```
 */
export { discreteSchedule, type ModelOptions, type SchedulerConfig } from './model.js';
export { DIFFUSERS_CLASSES, type DiffusersClassId } from './diffusers-classes.js';
export { SCHEDULES, SCHEDULE_IDS, type Schedule, type ScheduleId } from './schedule-table.js';
export { SAMPLERS, SAMPLER_IDS, type SamplerEntry, type SamplerId } from './sampler-table.js';
export type { SamplerTraits } from './sampler-traits.js';
export { denoiserOf, makeDenoiser, wrapDenoiser, type DenoiserOptions, type NetFn } from './denoiser.js';
export { modelCalls, UnknownSamplerError, a1111Name, resolveSampler, samplerNames, type ResolvedSampler } from './names.js';
export { planSampling, type PlanRequest, type SamplingPlan } from './plan.js';
export { ddimInverse, planInversion, type InversionPlan } from './inversion.js';
export type * from './types.js';
