/**
 * Every schedule in one typed table. A schedule is a function of the model, the step count and
 * the sampler's declared traits (sampler-table.ts) that returns everything a run needs from it:
 * the sigmas, the timesteps the network sees, how the first noise is scaled and how the result
 * becomes the latents the VAE decodes.
 *
 * Only two schedules read the traits beyond the start/end convention, and they say so:
 * - `normal` is diffusers' own set_timesteps and init_noise_sigma, and diffusers has one per
 *   scheduler class: the sampler's declared class (`diffusers`) is its input.
 * - `karras` and `lu_lambdas` on a sampler that is exactly DPMSolverMultistep, UniPC, DEIS or
 *   DPMSolverSinglestep follow that class's use_karras_sigmas / use_lu_lambdas: the network sees
 *   round(sigma_to_t), and sampling starts from unit-variance x_vp (as ComfyUI also does).
 * Every other schedule is k-diffusion's convention: noise * sigmas[0] for k-family samplers,
 * unit-variance x_vp for VP ones.
 */
import { DIFFUSERS_CLASSES, type DiffusersClass } from './diffusers-classes.js';
import { diffusersTimesteps, normalSigmas } from './diffusers-timesteps.js';
import type { SamplerTraits } from './sampler-traits.js';
import {
  AYS_NOISE_LEVELS,
  alignYourStepsA1111Sigmas,
  alignYourStepsSigmas,
  beta,
  ddimUniform,
  exponentialSigmas,
  karrasSigmas,
  luLambdaSigmas,
  klOptimalA1111Sigmas,
  klOptimalSigmas,
  linearQuadraticSigmas,
  polyexponentialSigmas,
  sgmUniform,
  simple,
  uniform,
  withZero,
} from './schedules.js';
import type { DiscreteSchedule, ScheduleResult } from './types.js';
import { lcmTimesteps } from './vp-lcm.js';

export type Schedule = (model: DiscreteSchedule, steps: number, sampler: SamplerTraits) => ScheduleResult;

/** The sigma function behind a schedule. */
type Sigmas = (model: DiscreteSchedule, steps: number) => Float64Array;

/**
 * The two ends of a run: `sqrtStart` multiplies unit noise by sqrt(sigma_0² + 1) instead of
 * sigma_0; `vpEnd` turns the sampler's sigma-space output into diffusers' x_vp.
 */
function ends(sigmas: Float64Array, sqrtStart: boolean, vpEnd: boolean): Pick<ScheduleResult, 'initNoiseScale' | 'finalScale'> {
  const first = sigmas[0];
  const last = sigmas[sigmas.length - 1];
  return {
    initNoiseScale: sqrtStart ? Math.sqrt(first * first + 1) : first,
    finalScale: vpEnd ? 1 / Math.sqrt(1 + last * last) : 1,
  };
}

/** k-diffusion's convention for any sigma function. */
function kSchedule(fn: Sigmas): Schedule {
  return (model, steps, sampler) => {
    const sigmas = fn(model, steps);
    const vp = sampler.family === 'vp';
    return { sigmas, ...ends(sigmas, vp || sampler.comfyStart === true, vp) };
  };
}

/**
 * A sigma kind diffusers' DPM-Solver family offers as a config flag: its rounded timesteps where the
 * sampler is that family and the model's sigmas are diffusers'. Spelled as A1111 or ComfyUI spell it
 * (their LDM noise table), it is k-diffusion's run instead, as theirs: noise times sigma_max, the
 * network fed the fractional timestep of each sigma.
 */
function dpmSolverKind(fn: Sigmas): Schedule {
  const plain = kSchedule(fn);
  return (model, steps, sampler) => {
    const cls = DIFFUSERS_CLASSES[sampler.diffusers];
    if (!sampler.exact || !('roundsSigmaTimesteps' in cls) || model.noiseTable !== 'diffusers') return plain(model, steps, sampler);
    const sigmas = fn(model, steps);
    // DEIS repeats its last sigma (a last step of length 0); the others end at final_sigmas_type's.
    if ('endsAtSigmaMin' in cls && cls.endsAtSigmaMin) sigmas[steps] = sigmas[steps - 1];
    else if (model.finalSigmas === 'sigma_min') sigmas[steps] = model.sigmas[0];
    // The class's own list, so its step arithmetic applies (diffusers' grid).
    return { sigmas, timestepOf: (sigma) => Math.round(model.sigmaToT(sigma)), ...ends(sigmas, true, true), grid: { inferenceSteps: steps } };
  };
}

/**
 * diffusers' own schedule for the sampler's class: its set_timesteps under the model's
 * timestep_spacing (and final_sigmas_type), the network fed those very timesteps, and its
 * init_noise_sigma (sigma_max for the Euler family, sqrt(sigma_max² + 1) with leading spacing,
 * unit-variance x_vp for the VP schedulers).
 */
const normal: Schedule = (model, steps, sampler) => {
  const cls: DiffusersClass = DIFFUSERS_CLASSES[sampler.diffusers];
  const sigmas = normalSigmas(model, steps, cls.timesteps);
  if (cls.endsAtSigmaMin) sigmas[steps] = model.sigmas[0];
  // diffusers feeds the network its own timesteps, which for fractional `linspace` timesteps are
  // not quite sigma_to_t of the linearly interpolated sigma.
  const own = new Map<number, number>();
  diffusersTimesteps(model, steps, cls.timesteps).forEach((t, i) => own.set(sigmas[i], t));
  const unit = sampler.family === 'vp' || cls.init === 'unit';
  const sqrtStart = unit || sampler.comfyStart === true || model.timestepSpacing === 'leading';
  return {
    sigmas,
    timestepOf: (sigma) => own.get(sigma) ?? model.sigmaToT(sigma),
    ...ends(sigmas, sqrtStart, unit),
    grid: { inferenceSteps: steps },
  };
};

/**
 * The schedules by id. `normal` is diffusers' (above); `uniform` is k-diffusion's default
 * get_sigmas, which ComfyUI calls "normal" and A1111 "Uniform" (and A1111's "Normal" computes the
 * same). karras and exponential span the model's whole sigma range as k-diffusion, A1111 and
 * ComfyUI do; `lu_lambdas` is DPMSolverMultistep's use_lu_lambdas (uniform in log-SNR, numpy
 * float64, so within an ulp of `exponential`). `lcm` is LCMScheduler's timesteps for any sampler.
 * Where ComfyUI and A1111 compute the same name differently, the plain id is ComfyUI's (as `beta`)
 * and `<id>_a1111` is A1111's: kl_optimal (A1111 stops at sigma_min, no 0) and align_your_steps
 * (A1111 rounds the table and appends 0 after sigma_min). The AYS tables are SD 1.x's (and
 * SDXL's under its own id), fixed noise levels whatever the model's own sigma range.
 */
export const SCHEDULES = {
  normal,
  karras: dpmSolverKind((model, steps) => karrasSigmas(steps, model.sigmaMin, model.sigmaMax)),
  exponential: kSchedule((model, steps) => exponentialSigmas(steps, model.sigmaMin, model.sigmaMax)),
  lu_lambdas: dpmSolverKind((model, steps) => luLambdaSigmas(steps, model.sigmaMin, model.sigmaMax)),
  uniform: kSchedule(uniform),
  sgm_uniform: kSchedule(sgmUniform),
  simple: kSchedule(simple),
  ddim_uniform: kSchedule(ddimUniform),
  beta: kSchedule((model, steps) => beta(model, steps)),
  kl_optimal: kSchedule((model, steps) => klOptimalSigmas(steps, model.sigmaMin, model.sigmaMax)),
  kl_optimal_a1111: kSchedule((model, steps) => klOptimalA1111Sigmas(steps, model.sigmaMin, model.sigmaMax)),
  align_your_steps: kSchedule((_model, steps) => alignYourStepsSigmas(AYS_NOISE_LEVELS.sd1, steps)),
  align_your_steps_sdxl: kSchedule((_model, steps) => alignYourStepsSigmas(AYS_NOISE_LEVELS.sdxl, steps)),
  align_your_steps_a1111: kSchedule((_model, steps) => alignYourStepsA1111Sigmas(AYS_NOISE_LEVELS.sd1A1111, steps)),
  linear_quadratic: kSchedule((model, steps) => linearQuadraticSigmas(steps, model.sigmaMax)),
  polyexponential: kSchedule((model, steps) => polyexponentialSigmas(steps, model.sigmaMin, model.sigmaMax)),
  lcm: kSchedule((model, steps) => withZero(lcmTimesteps(model, steps).map((t) => model.sigmas[t]))),
} as const satisfies Record<string, Schedule>;

export type ScheduleId = keyof typeof SCHEDULES;

export const SCHEDULE_IDS = Object.keys(SCHEDULES) as ScheduleId[];
