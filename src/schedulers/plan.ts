/**
 * The glue between a generic pipeline and the sampling core, for a (sampler, schedule) pair: the
 * model as the sampler's class reads it, the schedule's result (sigmas, timesteps, start and end
 * scales), an img2img cut of it, and the denoiser that carries all that to the sampler.
 */
import { makeDenoiser, type NetFn } from './denoiser.js';
import { discreteSchedule } from './model.js';
import { SAMPLERS, samplerEntry, type SamplerId } from './sampler-table.js';
import { SCHEDULES, type ScheduleId } from './schedule-table.js';
import type { Denoiser, DiscreteSchedule, Latents, NoiseTable, Sampler } from './types.js';
import { UnknownSamplerError } from './names.js';

export interface PlanRequest {
  /** The model as loaded (its scheduler_config.json); the plan reads it again as the sampler's class. */
  model: DiscreteSchedule;
  sampler: SamplerId;
  schedule: ScheduleId;
  steps: number;
  /** img2img strength in (0, 1]; 1 or absent starts from pure noise. */
  strength?: number;
  /**
   * diffusers' cut of the schedule for a strength (default), A1111's (one step more), or A1111's with
   * "fix steps" (its hires pass): `steps` steps walked at the end of a schedule of
   * int(steps / min(strength, 0.999)).
   */
  strengthMode?: 'diffusers' | 'a1111' | 'a1111-fixed';
  /** Run the schedule for steps + 1 and drop the next-to-last sigma (A1111/ComfyUI DPM2). */
  discardPenultimateSigma?: boolean;
  /** Whose training sigmas to use (resolveSampler's choice); default diffusers'. */
  noiseTable?: NoiseTable;
}

export interface SamplingPlan {
  sampler: Sampler;
  /** The training schedule the run uses: the sampler's class's reading of the config, in the chosen table. */
  model: DiscreteSchedule;
  /** Descending sigmas the sampler walks. */
  sigmas: Float64Array;
  /** What unit noise is multiplied by for txt2img. */
  initNoiseScale: number;
  /** Converts the sampler's output (at sigmas[last]) to the latents the reference decodes. */
  finalScale: number;
  /** The timestep the network sees at a sigma. */
  timestepOf: (sigma: number) => number;
  /** The first step of the full schedule this plan runs from (img2img), 0 for txt2img. */
  startStep: number;
  /**
   * How many network calls walking `sigmas` takes: diffusers' len(scheduler.timesteps) after an
   * img2img cut (second-order samplers call twice per step but once on the last; PNDM's uncut list
   * repeats its warm-up entry), the clock ControlNet's guidance start and end are read on.
   */
  calls: number;
  /**
   * The network wrapped as the denoiser this plan's sampler expects (model, timesteps, diffusers'
   * grid), for latents holding `batch` images (default 1).
   */
  denoiser(net: NetFn, batch?: number): Denoiser;
  /**
   * Starting latents in sigma space: unit noise times initNoiseScale, or with an img2img init
   * (the encoded image) that image noised to sigmas[0] (diffusers' add_noise, x0 + sigma * noise
   * in sigma space; it does this even at strength 1).
   */
  startLatents(noise: Latents, init?: Latents): Latents;
}

function dropPenultimate(sigmas: Float64Array): Float64Array {
  const out = new Float64Array(sigmas.length - 1);
  out.set(sigmas.subarray(0, sigmas.length - 2));
  out[out.length - 1] = sigmas[sigmas.length - 1];
  return out;
}

/**
 * diffusers cuts PNDM's timestep list, which repeats its second entry for the Heun warm-up
 * (751, 501, 501, 251, 1), at the same index as the others: from the third entry on that keeps
 * one more timestep than our list of distinct ones, and the PLMS warm-up starts over there
 * (751, 501 | 501, 251, 1 runs 501, 251, 1). A cut after the first entry keeps the repeat
 * (501, 501, 251, 1), which we walk as it is: the warm-up then evaluates twice at 501 and
 * corrects from one stride above it (vp-pndm.ts), as diffusers' counter does.
 */
function pndmCut(full: Float64Array, cut: number): { startStep: number; sigmas: Float64Array } {
  if (cut === 0) return { startStep: cut, sigmas: full.slice(cut) };
  if (cut >= 2) return { startStep: cut - 1, sigmas: full.slice(cut - 1) };
  if (full.length <= 2) return { startStep: cut, sigmas: full.slice(cut) }; // one step, all cut
  const sigmas = new Float64Array(full.length);
  sigmas[0] = full[1];
  sigmas.set(full.subarray(1), 1);
  return { startStep: 1, sigmas };
}

/**
 * AUTOMATIC1111's img2img (setup_img2img_steps without "fix steps"): t_enc = int(min(strength,
 * 0.999) × steps) and the sampler walks sigmas[steps - t_enc - 1:], t_enc + 1 steps — one more
 * than diffusers for the same numbers, and never the whole schedule.
 */
function a1111StartStep(steps: number, strength: number): number {
  return steps - Math.floor(Math.min(strength, 0.999) * steps) - 1;
}

/** diffusers' img2img: init_timestep = min(int(steps * strength), steps), t_start = steps - init_timestep. */
function startStepFor(steps: number, strength: number | undefined): number {
  if (strength === undefined || strength >= 1) return 0;
  const initTimestep = Math.min(Math.floor(steps * strength), steps);
  return Math.max(steps - initTimestep, 0);
}

export function planSampling(request: PlanRequest): SamplingPlan {
  const { steps } = request;
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`steps must be a positive integer, got ${steps}`);
  if (!(request.sampler in SAMPLERS)) throw new UnknownSamplerError('sampler', request.sampler, Object.keys(SAMPLERS));
  if (!(request.schedule in SCHEDULES)) throw new UnknownSamplerError('schedule', request.schedule, Object.keys(SCHEDULES));
  const entry = samplerEntry(request.sampler);
  const model = discreteSchedule(request.model.config, { class: entry.diffusers, ...(request.noiseTable ? { table: request.noiseTable } : {}) });

  const fixedCut = request.strengthMode === 'a1111-fixed' && request.strength !== undefined;
  // setup_img2img_steps with steps given: t_enc = steps - 1, the sampler walks sigmas[total - t_enc - 1:].
  const total = fixedCut ? Math.trunc(steps / Math.min(request.strength!, 0.999)) : steps;
  const scheduleSteps = request.discardPenultimateSigma ? total + 1 : total;
  const result = SCHEDULES[request.schedule](model, scheduleSteps, entry);
  const full = request.discardPenultimateSigma ? dropPenultimate(result.sigmas) : result.sigmas;

  const a1111Cut = (request.strengthMode === 'a1111' && request.strength !== undefined) || fixedCut;
  const start = fixedCut ? total - steps : a1111Cut ? a1111StartStep(steps, request.strength!) : startStepFor(steps, request.strength);
  const { startStep, sigmas } =
    entry.plmsList && result.grid && !a1111Cut ? pndmCut(full, start) : { startStep: start, sigmas: full.slice(start) };
  const sigmaMax = sigmas[0];
  const timestepOf = result.timestepOf ?? model.sigmaToT;
  const grid = result.grid && { ...result.grid, ...(startStep > 0 && !a1111Cut ? { cut: { sigmas: full, start: startStep } } : {}) };

  const startLatents = (noise: Latents, init?: Latents): Latents => {
    const out = new Float32Array(noise.length);
    if (init) {
      for (let i = 0; i < out.length; i++) out[i] = init[i] + noise[i] * sigmaMax;
    } else {
      for (let i = 0; i < out.length; i++) out[i] = noise[i] * result.initNoiseScale;
    }
    return out;
  };

  return {
    sampler: entry.fn,
    model,
    sigmas,
    initNoiseScale: result.initNoiseScale,
    finalScale: result.finalScale,
    timestepOf,
    startStep,
    calls: (entry.secondOrder ? 2 * (sigmas.length - 1) - 1 : sigmas.length - 1) + (entry.plmsList && startStep === 0 ? 1 : 0),
    denoiser: (net, batch) => makeDenoiser(model, net, { timestepOf, ...(grid ? { grid } : {}), ...(batch ? { batch } : {}) }),
    startLatents,
  };
}

