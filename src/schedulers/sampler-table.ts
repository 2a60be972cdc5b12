/**
 * Every sampler in one typed table: its function, the traits schedules read, and its names.
 * The sampler and the schedule are independent axes (ComfyUI's KSampler): a schedule reads only
 * the traits declared here (schedule-table.ts), never a sampler id.
 */
import { dpmpp2s } from './dpm-singlestep.js';
import { dpmAdaptive, dpmFast } from './k-samplers-dpm-solver.js';
import { dpm2, dpm2Ancestral, dpmpp2m, dpmpp2sAncestral, euler, eulerAncestral, heun, lms } from './k-samplers.js';
import { dpmpp2mSde, dpmpp3mSde, dpmppSde } from './k-samplers-sde.js';
import { restart } from './restart.js';
import type { SamplerTraits } from './sampler-traits.js';
import type { ScheduleId } from './schedule-table.js';
import type { Sampler } from './types.js';
import { comfyUniPcBh1, comfyUniPcBh2 } from './vp-comfy-unipc.js';
import { ddim, ddpm } from './vp-ddim.js';
import { deis } from './vp-deis.js';
import { lcm } from './vp-lcm.js';
import { pndm, pndmPrk } from './vp-pndm.js';
import { tcd } from './vp-tcd.js';
import { unipc } from './vp-unipc.js';


export interface SamplerEntry extends SamplerTraits {
  readonly fn: Sampler;
  /** The display name written to the infotext (A1111's "Sampler:"). */
  readonly label: string;
  /** AUTOMATIC1111 has a sampler by that name, so the label spelled exactly claims its semantics. */
  readonly a1111?: true;
  /** The schedule A1111 uses for this sampler under "Automatic". */
  readonly a1111Schedule: ScheduleId;
  /** A1111 (and ComfyUI) run this k-sampler on steps + 1 sigmas with the next-to-last dropped. */
  readonly discardPenultimateSigma?: 'a1111+comfyui' | 'a1111';
  /** Two model evaluations per step but the last (A1111's "second_order"). */
  readonly secondOrder?: true;
  /** k-diffusion draws this sampler's noise from a Brownian tree by default (A1111, ComfyUI do too). */
  readonly brownianNoise?: true;
  /** diffusers' own list for it repeats the second timestep (PNDM's PLMS warm-up), and img2img cuts that list (plan.ts). */
  readonly plmsList?: true;
}

export const SAMPLERS = {
  euler: { fn: euler, family: 'k', diffusers: 'EulerDiscreteScheduler', exact: true, label: 'Euler', a1111: true, a1111Schedule: 'uniform' },
  euler_a: { fn: eulerAncestral, family: 'k', diffusers: 'EulerAncestralDiscreteScheduler', exact: true, label: 'Euler a', a1111: true, a1111Schedule: 'uniform' },
  heun: { fn: heun, family: 'k', diffusers: 'HeunDiscreteScheduler', exact: true, label: 'Heun', a1111: true, a1111Schedule: 'uniform', secondOrder: true },
  dpm2: { fn: dpm2, family: 'k', diffusers: 'KDPM2DiscreteScheduler', exact: true, label: 'DPM2', a1111: true, a1111Schedule: 'karras', discardPenultimateSigma: 'a1111+comfyui', secondOrder: true },
  dpm2_a: { fn: dpm2Ancestral, family: 'k', diffusers: 'KDPM2AncestralDiscreteScheduler', exact: true, label: 'DPM2 a', a1111: true, a1111Schedule: 'karras', discardPenultimateSigma: 'a1111+comfyui', secondOrder: true },
  lms: { fn: lms, family: 'k', diffusers: 'LMSDiscreteScheduler', exact: true, label: 'LMS', a1111: true, a1111Schedule: 'uniform' },
  dpmpp_2s_a: { fn: dpmpp2sAncestral, family: 'k', diffusers: 'EulerDiscreteScheduler', exact: false, label: 'DPM++ 2S a', a1111: true, a1111Schedule: 'karras', secondOrder: true },
  dpmpp_2m: { fn: dpmpp2m, family: 'k', diffusers: 'DPMSolverMultistepScheduler', exact: true, label: 'DPM++ 2M', a1111: true, a1111Schedule: 'karras' },
  dpmpp_sde: { fn: dpmppSde, family: 'k', diffusers: 'DPMSolverSDEScheduler', exact: true, label: 'DPM++ SDE', a1111: true, a1111Schedule: 'karras', secondOrder: true, brownianNoise: true },
  // diffusers' DPMSolverMultistepScheduler with algorithm_type sde-dpmsolver++ (solver_type midpoint, heun).
  dpmpp_2m_sde: { fn: dpmpp2mSde('midpoint'), family: 'k', diffusers: 'DPMSolverMultistepScheduler', exact: true, label: 'DPM++ 2M SDE', a1111: true, a1111Schedule: 'exponential', brownianNoise: true },
  dpmpp_2m_sde_heun: { fn: dpmpp2mSde('heun'), family: 'k', diffusers: 'DPMSolverMultistepScheduler', exact: true, label: 'DPM++ 2M SDE Heun', a1111: true, a1111Schedule: 'exponential', brownianNoise: true },
  dpmpp_3m_sde: { fn: dpmpp3mSde, family: 'k', diffusers: 'DPMSolverMultistepScheduler', exact: false, label: 'DPM++ 3M SDE', a1111: true, a1111Schedule: 'exponential', discardPenultimateSigma: 'a1111', brownianNoise: true },
  ddim: { fn: ddim, family: 'vp', diffusers: 'DDIMScheduler', exact: true, label: 'DDIM', a1111: true, a1111Schedule: 'normal' },
  pndm: { fn: pndm, family: 'vp', diffusers: 'PNDMScheduler', exact: true, label: 'PLMS', a1111: true, a1111Schedule: 'normal', plmsList: true },
  // PNDMScheduler with skip_prk_steps=False.
  pndm_prk: { fn: pndmPrk, family: 'vp', diffusers: 'PNDMScheduler', exact: true, label: 'PNDM PRK', a1111Schedule: 'normal' },
  unipc: { fn: unipc, family: 'vp', diffusers: 'UniPCMultistepScheduler', exact: true, label: 'UniPC', a1111: true, a1111Schedule: 'normal' },
  deis: { fn: deis, family: 'vp', diffusers: 'DEISMultistepScheduler', exact: true, label: 'DEIS', a1111Schedule: 'normal' },
  lcm: { fn: lcm, family: 'vp', diffusers: 'LCMScheduler', exact: true, label: 'LCM', a1111: true, a1111Schedule: 'lcm' },
  ddpm: { fn: ddpm, family: 'vp', diffusers: 'DDPMScheduler', exact: true, label: 'DDPM', a1111Schedule: 'normal' },
  uni_pc: { fn: comfyUniPcBh1, family: 'k', diffusers: 'EulerDiscreteScheduler', exact: false, label: 'UniPC (ComfyUI)', a1111Schedule: 'uniform', comfyStart: true },
  uni_pc_bh2: { fn: comfyUniPcBh2, family: 'k', diffusers: 'EulerDiscreteScheduler', exact: false, label: 'UniPC bh2 (ComfyUI)', a1111Schedule: 'uniform', comfyStart: true },
  // diffusers' DPMSolverSinglestepScheduler (A1111's "DPM++ 2S a" is k-diffusion's ancestral one, above).
  dpmpp_2s: { fn: dpmpp2s, family: 'k', diffusers: 'DPMSolverSinglestepScheduler', exact: true, label: 'DPM++ 2S', a1111Schedule: 'normal' },
  // eta is TCD's gamma, default 0.3.
  tcd: { fn: tcd, family: 'vp', diffusers: 'TCDScheduler', exact: true, label: 'TCD', a1111Schedule: 'normal' },
  // k-diffusion's DPM-Solver over a sigma range; A1111 passes them its ancestral eta (1), k-diffusion and ComfyUI 0.
  dpm_fast: { fn: dpmFast, family: 'k', diffusers: 'EulerDiscreteScheduler', exact: false, label: 'DPM fast', a1111: true, a1111Schedule: 'uniform' },
  dpm_adaptive: { fn: dpmAdaptive, family: 'k', diffusers: 'EulerDiscreteScheduler', exact: false, label: 'DPM adaptive', a1111: true, a1111Schedule: 'uniform' },
  restart: { fn: restart, family: 'k', diffusers: 'EulerDiscreteScheduler', exact: false, label: 'Restart', a1111: true, a1111Schedule: 'karras', secondOrder: true },
} as const satisfies Record<string, SamplerEntry>;

export type SamplerId = keyof typeof SAMPLERS;

export const SAMPLER_IDS = Object.keys(SAMPLERS) as SamplerId[];

/** The entry of an id, typed as the interface (the table's literal types are narrower). */
export function samplerEntry(id: SamplerId): SamplerEntry {
  return SAMPLERS[id];
}
