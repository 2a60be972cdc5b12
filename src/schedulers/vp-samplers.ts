/**
 * Samplers that diffusers defines on discrete timesteps (DDIM, PNDM, UniPC, DEIS, LCM, DDPM),
 * expressed in sigma space. Fed the sigmas of diffusers' own timesteps (the `normal` schedule;
 * `lcm` for LCM) and started from unit noise * sqrt(1 + sigma_0²), they reproduce diffusers'
 * loops; ending at sigma 0 they return the latents diffusers decodes (see vp-grid.ts).
 * Options: `eta` is DDIM's (default 0); `sNoise` is ignored, diffusers has no such knob.
 */
import type { Sampler, Schedule } from './types.js';
import { comfyUniPcBh1, comfyUniPcBh2 } from './vp-comfy-unipc.js';
import { ddim, ddpm } from './vp-ddim.js';
import { deis } from './vp-deis.js';
import { lcm, lcmSchedule } from './vp-lcm.js';
import { pndm, pndmPrk } from './vp-pndm.js';
import { unipc } from './vp-unipc.js';

export const VP_SAMPLERS: Record<string, Sampler> = {
  ddim,
  pndm,
  pndm_prk: pndmPrk,
  unipc,
  deis,
  lcm,
  ddpm,
};

/** Schedules defined by a VP scheduler's own set_timesteps. */
export const VP_SCHEDULES: Record<string, Schedule> = {
  lcm: lcmSchedule,
};

/**
 * ComfyUI's uni_pc ports: sigma-space samplers on any schedule that return ordinary sigma-space
 * latents (at sigma 0.001 for a walk ending at 0, which ComfyUI decodes as is), i.e. k-family
 * samplers, unlike VP_SAMPLERS.
 */
export const COMFY_UNIPC_SAMPLERS: Record<string, Sampler> = {
  uni_pc: comfyUniPcBh1,
  uni_pc_bh2: comfyUniPcBh2,
};
