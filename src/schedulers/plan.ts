/**
 * The glue between a generic pipeline and the sampling core: which sigmas to walk, what to
 * multiply the initial noise by, which timestep the network sees, and how to hand the result to
 * the VAE, for a (sampler, schedule) pair. Where diffusers and k-diffusion disagree, `normal`
 * follows diffusers (its scheduler for that sampler) and the k-schedules follow k-diffusion.
 */
import { SAMPLERS, SAMPLER_SPECS, UnknownSamplerError, type SamplerId, type SamplerSpec } from './names.js';
import { SCHEDULES, diffusersTimesteps, normalSigmas, spacingFor } from './schedules.js';
import type { DiscreteSchedule, Latents, Sampler } from './types.js';

export interface PlanRequest {
  model: DiscreteSchedule;
  /** A sampler id (see resolveSampler for other spellings). */
  sampler: string;
  /** A schedule id from SCHEDULES. */
  schedule: string;
  steps: number;
  /** img2img strength in (0, 1]; 1 or absent starts from pure noise. */
  strength?: number;
  /** diffusers' cut of the schedule for a strength (default), or A1111's (one step more). */
  strengthMode?: 'diffusers' | 'a1111';
  /** Run the schedule for steps + 1 and drop the next-to-last sigma (A1111/ComfyUI DPM2). */
  discardPenultimateSigma?: boolean;
}

export interface SamplingPlan {
  sampler: Sampler;
  /** Descending sigmas the sampler walks, ending in 0. */
  sigmas: Float64Array;
  /** What diffusers (`normal`) or k-diffusion (k-schedules) multiplies unit noise by for txt2img. */
  initNoiseScale: number;
  /** Converts the sampler's output (sigma space at sigmas[last]) to the latents diffusers decodes. */
  finalScale: number;
  /** The timestep the network sees at a sigma: diffusers' own for `normal`, else log-sigma interpolation. */
  timestepOf: (sigma: number) => number;
  /** The first step of the full schedule this plan runs from (img2img), 0 for txt2img. */
  startStep: number;
  /** For SamplerOptions.truncatedFrom: set when `normal` cuts the schedule (diffusers img2img). */
  truncatedFrom?: { sigmas: Float64Array; start: number };
  /** Pass as SamplerOptions.inferenceSteps: set for `normal` (diffusers' step count, img2img included). */
  inferenceSteps?: number;
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
function pndmCut(full: Float64Array, sampler: string, normal: boolean, cut: number): { startStep: number; sigmas: Float64Array } {
  if (sampler !== 'pndm' || !normal || cut === 0) return { startStep: cut, sigmas: full.slice(cut) };
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
  const { model, steps } = request;
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`steps must be a positive integer, got ${steps}`);
  if (!(request.sampler in SAMPLER_SPECS) || !SAMPLERS[request.sampler]) {
    throw new UnknownSamplerError('sampler', request.sampler, Object.keys(SAMPLERS));
  }
  const schedule = SCHEDULES[request.schedule];
  if (!schedule) throw new UnknownSamplerError('schedule', request.schedule, Object.keys(SCHEDULES));
  const spec = SAMPLER_SPECS[request.sampler as SamplerId] as SamplerSpec;
  const isNormal = request.schedule === 'normal';

  const scheduleSteps = request.discardPenultimateSigma ? steps + 1 : steps;
  let full =
    isNormal && spec.normalSchedule
      ? SCHEDULES[spec.normalSchedule](model, scheduleSteps)
      : isNormal
        ? normalSigmas(model, scheduleSteps, spec.timestepRule)
        : schedule(model, scheduleSteps);
  if (request.discardPenultimateSigma) full = dropPenultimate(full);

  // diffusers feeds the network its own timesteps, which for fractional `linspace` timesteps are
  // not quite sigma_to_t of the linearly interpolated sigma.
  const ownTimesteps = new Map<number, number>();
  if (isNormal && !spec.normalSchedule && !request.discardPenultimateSigma) {
    diffusersTimesteps(model, steps, spec.timestepRule).forEach((t, i) => ownTimesteps.set(full[i], t));
  }
  const diffusersKarras = request.schedule === 'karras' && spec.diffusersKarras === 'vp-rounded';
  const timestepOf = diffusersKarras
    ? (sigma: number) => Math.round(model.sigmaToT(sigma))
    : (sigma: number) => ownTimesteps.get(sigma) ?? model.sigmaToT(sigma);

  const a1111Cut = request.strengthMode === 'a1111' && request.strength !== undefined;
  const { startStep, sigmas } = a1111Cut
    ? { startStep: a1111StartStep(steps, request.strength!), sigmas: full.slice(a1111StartStep(steps, request.strength!)) }
    : pndmCut(full, request.sampler, isNormal, startStepFor(steps, request.strength));
  const sigmaMax = sigmas[0];
  const sigmaLast = sigmas[sigmas.length - 1];
  const vpStart = spec.family === 'vp' || (isNormal && spec.diffusersInit === 'vp') || diffusersKarras;
  const eulerLeading = isNormal && spacingFor(model, spec.timestepRule) === 'leading';
  const initNoiseScale = vpStart || eulerLeading || spec.comfyStart ? Math.sqrt(sigmaMax * sigmaMax + 1) : sigmaMax;
  const finalScale = vpStart ? 1 / Math.sqrt(1 + sigmaLast * sigmaLast) : 1;

  const startLatents = (noise: Latents, init?: Latents): Latents => {
    const out = new Float32Array(noise.length);
    if (init) {
      for (let i = 0; i < out.length; i++) out[i] = init[i] + noise[i] * sigmaMax;
    } else {
      for (let i = 0; i < out.length; i++) out[i] = noise[i] * initNoiseScale;
    }
    return out;
  };

  return {
    sampler: SAMPLERS[request.sampler],
    sigmas,
    initNoiseScale,
    finalScale,
    timestepOf,
    startStep,
    ...(isNormal && startStep > 0 && !a1111Cut ? { truncatedFrom: { sigmas: full, start: startStep } } : {}),
    inferenceSteps: isNormal ? steps : undefined,
    startLatents,
  };
}
