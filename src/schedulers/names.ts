/**
 * Sampler and schedule names: our ids (k-diffusion/ComfyUI style), their aliases, and
 * AUTOMATIC1111's display names in both the old combined form ("DPM++ 2M Karras") and the
 * ≥1.9 form ("Sampler: DPM++ 2M" + "Schedule type: Karras").
 */
import { dpm2, dpm2Ancestral, dpmpp2m, dpmpp2sAncestral, euler, eulerAncestral, heun, lms } from './k-samplers.js';
import { dpmpp2mSde, dpmpp3mSde, dpmppSde } from './k-samplers-sde.js';
import { SCHEDULES, type TimestepRule } from './schedules.js';
import type { Sampler } from './types.js';
import { COMFY_UNIPC_SAMPLERS, VP_SAMPLERS } from './vp-samplers.js';

export interface SamplerSpec {
  /**
   * `k`: a k-diffusion sampler, started from noise * sigma_max as k-diffusion does;
   * `vp`: a diffusers variance-preserving scheduler, started from unit-variance x_vp.
   */
  family: 'k' | 'vp';
  /** The diffusers scheduler the `normal` schedule reproduces. */
  diffusers: string;
  /** Which set_timesteps that diffusers scheduler uses (see TimestepRule). */
  timestepRule: TimestepRule;
  /**
   * How that diffusers scheduler scales the initial noise: `euler` = init_noise_sigma of the
   * Euler family (sigma_max, or sqrt(sigma_max² + 1) with leading spacing); `vp` = unit x_vp.
   */
  diffusersInit: 'euler' | 'vp';
  /** AUTOMATIC1111's display name. */
  a1111: string;
  /** The schedule A1111 uses for this sampler under "Automatic". */
  a1111Schedule: string;
  /** A1111 and ComfyUI run this k-sampler on steps + 1 sigmas with the next-to-last dropped. */
  discardPenultimateSigma?: 'a1111+comfyui' | 'a1111';
  /** The schedule that stands for `normal` when the diffusers scheduler ignores timestep_spacing. */
  normalSchedule?: string;
  /**
   * diffusers' scheduler for this sampler also runs the k-diffusion Karras sigmas (SD's linspace
   * spacing), but from unit-variance x_vp and with the network's timesteps rounded to integers
   * (DPMSolverMultistep). With `karras`, diffuse follows it — as ComfyUI does too, which
   * scales the first noise by sqrt(sigma² + 1) and quantises timesteps.
   */
  diffusersKarras?: 'vp-rounded';
  /** Two model evaluations per step but the last (A1111's "second_order"). */
  secondOrder?: true;
  /**
   * ComfyUI's own sampler (no diffusers or A1111 equivalent): txt2img starts from noise times
   * sqrt(sigma_max² + 1), ComfyUI's noise_scaling at full denoise, on every schedule.
   */
  comfyStart?: true;
  /** k-diffusion draws this sampler's noise from a Brownian tree by default (A1111, ComfyUI do too). */
  brownianNoise?: true;
}

export const SAMPLER_SPECS = {
  euler: { family: 'k', diffusers: 'EulerDiscreteScheduler', timestepRule: 'euler', diffusersInit: 'euler', a1111: 'Euler', a1111Schedule: 'uniform' },
  euler_a: { family: 'k', diffusers: 'EulerAncestralDiscreteScheduler', timestepRule: 'euler', diffusersInit: 'euler', a1111: 'Euler a', a1111Schedule: 'uniform' },
  heun: { family: 'k', diffusers: 'HeunDiscreteScheduler', timestepRule: 'euler', diffusersInit: 'euler', a1111: 'Heun', a1111Schedule: 'uniform', secondOrder: true },
  dpm2: { family: 'k', diffusers: 'KDPM2DiscreteScheduler', timestepRule: 'euler', diffusersInit: 'euler', a1111: 'DPM2', a1111Schedule: 'karras', discardPenultimateSigma: 'a1111+comfyui', secondOrder: true },
  dpm2_a: { family: 'k', diffusers: 'KDPM2AncestralDiscreteScheduler', timestepRule: 'euler', diffusersInit: 'euler', a1111: 'DPM2 a', a1111Schedule: 'karras', discardPenultimateSigma: 'a1111+comfyui', secondOrder: true },
  lms: { family: 'k', diffusers: 'LMSDiscreteScheduler', timestepRule: 'euler', diffusersInit: 'euler', a1111: 'LMS', a1111Schedule: 'uniform' },
  dpmpp_2s_a: { family: 'k', diffusers: '(none)', timestepRule: 'euler', diffusersInit: 'euler', a1111: 'DPM++ 2S a', a1111Schedule: 'karras', secondOrder: true },
  dpmpp_2m: { family: 'k', diffusers: 'DPMSolverMultistepScheduler', timestepRule: 'dpmsolver', diffusersInit: 'vp', a1111: 'DPM++ 2M', a1111Schedule: 'karras', diffusersKarras: 'vp-rounded' },
  dpmpp_sde: { family: 'k', diffusers: 'DPMSolverSDEScheduler', timestepRule: 'euler', diffusersInit: 'euler', a1111: 'DPM++ SDE', a1111Schedule: 'karras', secondOrder: true, brownianNoise: true },
  dpmpp_2m_sde: { family: 'k', diffusers: 'DPMSolverMultistepScheduler(sde-dpmsolver++)', timestepRule: 'dpmsolver', diffusersInit: 'vp', a1111: 'DPM++ 2M SDE', a1111Schedule: 'exponential', diffusersKarras: 'vp-rounded', brownianNoise: true },
  dpmpp_2m_sde_heun: { family: 'k', diffusers: 'DPMSolverMultistepScheduler(sde-dpmsolver++, heun)', timestepRule: 'dpmsolver', diffusersInit: 'vp', a1111: 'DPM++ 2M SDE Heun', a1111Schedule: 'exponential', diffusersKarras: 'vp-rounded', brownianNoise: true },
  dpmpp_3m_sde: { family: 'k', diffusers: '(none)', timestepRule: 'dpmsolver', diffusersInit: 'vp', a1111: 'DPM++ 3M SDE', a1111Schedule: 'exponential', discardPenultimateSigma: 'a1111', brownianNoise: true },
  ddim: { family: 'vp', diffusers: 'DDIMScheduler', timestepRule: 'ddim', diffusersInit: 'vp', a1111: 'DDIM', a1111Schedule: 'normal' },
  pndm: { family: 'vp', diffusers: 'PNDMScheduler', timestepRule: 'ddim', diffusersInit: 'vp', a1111: 'PLMS', a1111Schedule: 'normal' },
  pndm_prk: { family: 'vp', diffusers: 'PNDMScheduler(skip_prk_steps=False)', timestepRule: 'ddim', diffusersInit: 'vp', a1111: 'PNDM PRK', a1111Schedule: 'normal' },
  unipc: { family: 'vp', diffusers: 'UniPCMultistepScheduler', timestepRule: 'dpmsolver', diffusersInit: 'vp', a1111: 'UniPC', a1111Schedule: 'normal' },
  deis: { family: 'vp', diffusers: 'DEISMultistepScheduler', timestepRule: 'dpmsolver', diffusersInit: 'vp', a1111: 'DEIS', a1111Schedule: 'normal' },
  lcm: { family: 'vp', diffusers: 'LCMScheduler', timestepRule: 'ddim', diffusersInit: 'vp', a1111: 'LCM', a1111Schedule: 'lcm', normalSchedule: 'lcm' },
  ddpm: { family: 'vp', diffusers: 'DDPMScheduler', timestepRule: 'ddim', diffusersInit: 'vp', a1111: 'DDPM', a1111Schedule: 'normal' },
  uni_pc: { family: 'k', diffusers: '(none)', timestepRule: 'euler', diffusersInit: 'euler', a1111: 'UniPC (ComfyUI)', a1111Schedule: 'uniform', comfyStart: true },
  uni_pc_bh2: { family: 'k', diffusers: '(none)', timestepRule: 'euler', diffusersInit: 'euler', a1111: 'UniPC bh2 (ComfyUI)', a1111Schedule: 'uniform', comfyStart: true },
} as const satisfies Record<string, SamplerSpec>;

export type SamplerId = keyof typeof SAMPLER_SPECS;

/** The sampler functions by id: the k-diffusion ones here, the VP ones from vp-samplers.ts. */
export const SAMPLERS: Record<string, Sampler> = {
  euler,
  euler_a: eulerAncestral,
  heun,
  dpm2,
  dpm2_a: dpm2Ancestral,
  lms,
  dpmpp_2s_a: dpmpp2sAncestral,
  dpmpp_2m: dpmpp2m,
  dpmpp_sde: dpmppSde,
  dpmpp_2m_sde: dpmpp2mSde('midpoint'),
  dpmpp_2m_sde_heun: dpmpp2mSde('heun'),
  dpmpp_3m_sde: dpmpp3mSde,
  ...VP_SAMPLERS,
  ...COMFY_UNIPC_SAMPLERS,
};

/**
 * Other spellings: k-diffusion function names, ComfyUI ids (its *_gpu variants differ only in
 * where the Brownian tree lives) and A1111's k_* aliases. Matching ignores case. ComfyUI's
 * `uni_pc` is its own id, not an alias of `unipc` (diffusers'): another variant (bh1, order 3,
 * stops at sigma 0.001).
 */
const SAMPLER_ALIASES: Record<string, SamplerId> = {
  euler_ancestral: 'euler_a',
  k_euler: 'euler',
  k_euler_a: 'euler_a',
  k_euler_ancestral: 'euler_a',
  k_heun: 'heun',
  dpm_2: 'dpm2',
  k_dpm_2: 'dpm2',
  dpm_2_ancestral: 'dpm2_a',
  dpm2_ancestral: 'dpm2_a',
  k_dpm_2_a: 'dpm2_a',
  k_lms: 'lms',
  dpmpp_2s_ancestral: 'dpmpp_2s_a',
  k_dpmpp_2s_a: 'dpmpp_2s_a',
  k_dpmpp_2m: 'dpmpp_2m',
  k_dpmpp_sde: 'dpmpp_sde',
  dpmpp_sde_gpu: 'dpmpp_sde',
  k_dpmpp_2m_sde: 'dpmpp_2m_sde',
  dpmpp_2m_sde_gpu: 'dpmpp_2m_sde',
  k_dpmpp_2m_sde_heun: 'dpmpp_2m_sde_heun',
  k_dpmpp_3m_sde: 'dpmpp_3m_sde',
  dpmpp_3m_sde_gpu: 'dpmpp_3m_sde',
  plms: 'pndm',
};

/**
 * A1111's "Schedule type" labels for our schedules. A1111's own "Normal" and "Uniform" both
 * compute k-diffusion's linspace-in-t sigmas (our `uniform`); we write "Normal" for diffusers'
 * spacing (our `normal`), which A1111 has no exact label for, and read it back the same way.
 * A1111's "Beta" spaces sigma, not timesteps; ours is ComfyUI's, so "Beta" is only approximate there.
 * "KL Optimal" and "Align Your Steps" are A1111's own computations (the `_a1111` ids): an exact
 * A1111 label means A1111's semantics, as for sampler names, while `kl_optimal` in any other
 * spelling is ComfyUI's. ComfyUI-only schedules get labels of the same style.
 */
const SCHEDULE_LABELS: Record<string, string> = {
  normal: 'Normal',
  uniform: 'Uniform',
  karras: 'Karras',
  exponential: 'Exponential',
  sgm_uniform: 'SGM Uniform',
  simple: 'Simple',
  ddim_uniform: 'DDIM',
  beta: 'Beta',
  lcm: 'LCM',
  kl_optimal_a1111: 'KL Optimal',
  kl_optimal: 'KL Optimal (ComfyUI)',
  align_your_steps_a1111: 'Align Your Steps',
  align_your_steps: 'Align Your Steps (ComfyUI)',
  align_your_steps_sdxl: 'Align Your Steps SDXL (ComfyUI)',
  polyexponential: 'Polyexponential',
  linear_quadratic: 'Linear Quadratic',
};

const SCHEDULE_ALIASES: Record<string, string> = { sgmuniform: 'sgm_uniform', ddim: 'ddim_uniform' };

/** An unknown sampler or schedule name; the CLI reports it as a usage error. */
export class UnknownSamplerError extends Error {
  constructor(
    readonly kind: 'sampler' | 'schedule',
    readonly input: string,
    readonly valid: readonly string[],
  ) {
    super(`unknown ${kind} "${input}"; valid ${kind}s: ${valid.join(', ')}`);
    this.name = 'UnknownSamplerError';
  }
}

export interface ResolvedSampler {
  sampler: SamplerId;
  schedule: string;
  /** Run the schedule for steps + 1 and drop its next-to-last sigma (A1111/ComfyUI DPM2). */
  discardPenultimateSigma: boolean;
}

const normalize = (name: string) => name.trim().toLowerCase();

function samplerById(name: string): SamplerId | undefined {
  const key = normalize(name).replace(/[\s-]+/g, '_');
  if (key in SAMPLER_SPECS) return key as SamplerId;
  return SAMPLER_ALIASES[key];
}

function samplerByA1111Name(name: string): SamplerId | undefined {
  const key = normalize(name);
  return (Object.keys(SAMPLER_SPECS) as SamplerId[]).find((id) => normalize(SAMPLER_SPECS[id].a1111) === key);
}

/** A schedule id from an A1111 label (exact spelling first), our id or a ComfyUI id; undefined for "Automatic". */
function scheduleByName(name: string): string | undefined {
  const byLabel = Object.keys(SCHEDULE_LABELS).find((id) => SCHEDULE_LABELS[id] === name.trim());
  if (byLabel) return byLabel;
  const key = normalize(name).replace(/[\s-]+/g, '_');
  if (key === 'automatic') return undefined;
  if (key in SCHEDULES) return key;
  const alias = SCHEDULE_ALIASES[key.replace(/_/g, '')] ?? SCHEDULE_ALIASES[key];
  if (alias) return alias;
  throw new UnknownSamplerError('schedule', name, [...Object.keys(SCHEDULES), ...Object.values(SCHEDULE_LABELS), 'Automatic']);
}

/**
 * How many denoiser calls a run makes, the clock A1111 runs prompt editing on (its total_steps:
 * 2 * steps - 1 for second-order samplers).
 */
export function modelCalls(sampler: string, steps: number): number {
  const spec = SAMPLER_SPECS[sampler as SamplerId] as SamplerSpec | undefined;
  return spec?.secondOrder ? 2 * steps - 1 : steps;
}

/** Every name resolveSampler accepts, for help texts and errors. */
export function samplerNames(): string[] {
  const labels = Object.values(SCHEDULE_LABELS);
  const a1111 = Object.values(SAMPLER_SPECS).map((s) => s.a1111);
  return [
    ...Object.keys(SAMPLER_SPECS),
    ...Object.keys(SAMPLER_ALIASES),
    ...a1111,
    ...a1111.flatMap((name) => labels.map((label) => `${name} ${label}`)),
  ];
}

/**
 * Resolves a sampler name and optional schedule name.
 * - Our ids and aliases, any case ("euler_a", "dpmpp_2m_sde_gpu"): the schedule defaults to
 *   `normal` (diffusers' own spacing).
 * - A1111 display names (spelled exactly as A1111 does, or any case when no id matches),
 *   optionally with a schedule suffix ("DPM++ 2M Karras"): the schedule is
 *   the suffix, else the `schedule` argument (A1111's "Schedule type"), else A1111's "Automatic"
 *   choice for that sampler (Karras for DPM++ 2M, Uniform for Euler, ...), as A1111 ≥1.9 reads it.
 */
export function resolveSampler(name: string, schedule?: string): ResolvedSampler {
  // "Euler" is A1111's name and "euler" our id: an exact A1111 spelling means A1111's semantics.
  const exactA1111 = Object.values(SAMPLER_SPECS).some((spec) => spec.a1111 === name.trim());
  const byId = exactA1111 ? undefined : samplerById(name);
  if (byId) {
    const scheduleId = (schedule && scheduleByName(schedule)) ?? 'normal';
    const spec = SAMPLER_SPECS[byId] as SamplerSpec;
    return {
      sampler: byId,
      schedule: scheduleId,
      // diffusers' KDPM2 keeps every sigma; ComfyUI's dpm_2 on a k-schedule drops one.
      discardPenultimateSigma: spec.discardPenultimateSigma === 'a1111+comfyui' && scheduleId !== 'normal',
    };
  }
  let sampler = samplerByA1111Name(name);
  let scheduleId = schedule === undefined ? undefined : scheduleByName(schedule);
  if (!sampler) {
    for (const [id, label] of Object.entries(SCHEDULE_LABELS)) {
      const suffix = ` ${label.toLowerCase()}`;
      if (normalize(name).endsWith(suffix)) {
        sampler = samplerByA1111Name(normalize(name).slice(0, -suffix.length));
        if (sampler) {
          scheduleId = id;
          break;
        }
      }
    }
  }
  if (!sampler) throw new UnknownSamplerError('sampler', name, samplerNames());
  const spec = SAMPLER_SPECS[sampler] as SamplerSpec;
  return {
    sampler,
    schedule: scheduleId ?? spec.a1111Schedule,
    discardPenultimateSigma: spec.discardPenultimateSigma !== undefined,
  };
}

/** A1111 ≥1.9 infotext fields for a (sampler, schedule) pair: "Sampler: X, Schedule type: Y". */
export function a1111Name(sampler: string, schedule: string): { sampler: string; scheduleType: string } {
  const id = samplerById(sampler);
  if (!id) throw new UnknownSamplerError('sampler', sampler, Object.keys(SAMPLER_SPECS));
  const label = SCHEDULE_LABELS[schedule];
  if (!label) throw new UnknownSamplerError('schedule', schedule, Object.keys(SCHEDULE_LABELS));
  return { sampler: SAMPLER_SPECS[id].a1111, scheduleType: label };
}
