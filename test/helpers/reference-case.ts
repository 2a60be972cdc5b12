import type { GenerationRequest } from '../../src/pipeline/types.js';
import type { SchedulerConfig } from '../../src/schedulers/index.js';

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
  scheduler: { class: string; overrides: Record<string, unknown>; config: SchedulerConfig };
}

const SAMPLERS: Record<string, string> = {
  DDIMScheduler: 'ddim',
  EulerDiscreteScheduler: 'euler',
  EulerAncestralDiscreteScheduler: 'euler_a',
  DPMSolverMultistepScheduler: 'dpmpp_2m',
  PNDMScheduler: 'pndm',
  UniPCMultistepScheduler: 'unipc',
  LMSDiscreteScheduler: 'lms',
};

/** The request that reproduces a case from the seed alone (one generator for the batch, as diffusers). */
export function referenceRequest(c: ReferenceCase, extra: Partial<GenerationRequest> = {}): GenerationRequest {
  const sampler = SAMPLERS[c.scheduler.class];
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
    schedule: c.scheduler.overrides.use_karras_sigmas ? 'karras' : 'normal',
    width: c.width,
    height: c.height,
    batchSize: c.num_images_per_prompt ?? 1,
    ...extra,
  };
}
