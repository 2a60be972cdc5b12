import type { DiffusersClassId } from './diffusers-classes.js';

/** What a schedule may know about the sampler it feeds. */
export interface SamplerTraits {
  /**
   * `k`: sigma-space latents, started from noise * sigmas[0] as k-diffusion does; `vp`: a diffusers
   * variance-preserving scheduler, started from unit-variance x_vp and returning what diffusers
   * decodes (vp-grid.ts).
   */
  readonly family: 'k' | 'vp';
  /**
   * The diffusers scheduler class whose set_timesteps and init_noise_sigma are this sampler's
   * `normal` schedule, and whose defaults fill the keys a scheduler_config.json leaves out.
   */
  readonly diffusers: DiffusersClassId;
  /**
   * The sampler is that class's algorithm, so diffusers' handling of other sigma kinds applies too
   * (DPMSolverMultistep's use_karras_sigmas: rounded timesteps, unit-variance start). False: diffusers
   * has no such sampler and the class only lends its timesteps.
   */
  readonly exact: boolean;
  /** ComfyUI's own sampler: txt2img starts from noise * sqrt(sigma_max² + 1) (ComfyUI's full-denoise noise_scaling) on every schedule. */
  readonly comfyStart?: true;
}
