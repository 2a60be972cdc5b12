import type { GenerationRequest } from '../../src/pipeline/types.js';
import type { SamplerId, SchedulerConfig } from '../../src/schedulers/index.js';

/** The fields every diffusers pipeline reference case records (tools/fixtures_refs_*.py). */
export interface ReferenceCase {
  name: string;
  prompt: string;
  negative_prompt: string | null;
  guidance_scale: number;
  num_inference_steps: number;
  num_images_per_prompt?: number;
  width: number;
  height: number;
  seed: number;
  scheduler: { class: string; overrides?: Record<string, unknown>; config: SchedulerConfig };
}

const SAMPLERS: Record<string, SamplerId> = {
  DDIMScheduler: 'ddim',
  EulerDiscreteScheduler: 'euler',
  EulerAncestralDiscreteScheduler: 'euler_a',
  DPMSolverMultistepScheduler: 'dpmpp_2m',
  PNDMScheduler: 'pndm',
  UniPCMultistepScheduler: 'unipc',
  LMSDiscreteScheduler: 'lms',
  HeunDiscreteScheduler: 'heun',
  KDPM2DiscreteScheduler: 'dpm2',
  KDPM2AncestralDiscreteScheduler: 'dpm2_a',
  DEISMultistepScheduler: 'deis',
  DDPMScheduler: 'ddpm',
};

/** The sampler a scheduler class is, or with DPMSolverMultistep's SDE algorithm, becomes. */
function samplerFor(c: ReferenceCase): SamplerId | undefined {
  const sde = c.scheduler.overrides?.algorithm_type === 'sde-dpmsolver++';
  return sde && c.scheduler.class === 'DPMSolverMultistepScheduler' ? 'dpmpp_2m_sde' : SAMPLERS[c.scheduler.class];
}

/**
 * The request that reproduces a case from the seed alone (one generator for the batch, as diffusers;
 * SDE samplers draw their step noise from it too, as DPMSolverMultistep's SDE: `sdeNoise: 'plain'`).
 */
export function referenceRequest(c: ReferenceCase, extra: Partial<GenerationRequest> = {}): GenerationRequest {
  const sampler = samplerFor(c);
  if (!sampler) throw new Error(`no sampler for ${c.scheduler.class}`);
  return {
    prompt: c.prompt,
    negativePrompt: c.negative_prompt ?? '',
    steps: c.num_inference_steps,
    cfgScale: c.guidance_scale,
    cfgRescale: 0,
    seed: c.seed,
    rng: 'cpu',
    seedMode: 'diffusers',
    sampler,
    sdeNoise: 'plain',
    schedule: c.scheduler.overrides?.use_karras_sigmas ? 'karras' : 'normal',
    width: c.width,
    height: c.height,
    batchSize: c.num_images_per_prompt ?? 1,
    ...extra,
  };
}
