/**
 * Sampler and schedule names: our ids (k-diffusion/ComfyUI style), their aliases, and
 * AUTOMATIC1111's display names in both the old combined form ("DPM++ 2M Karras") and the
 * ≥1.9 form ("Sampler: DPM++ 2M" + "Schedule type: Karras"); and which noise table a spelling
 * claims (resolveSampler).
 */
import { SAMPLERS, SAMPLER_IDS, samplerEntry, type SamplerId } from './sampler-table.js';
import { SCHEDULES, type ScheduleId } from './schedule-table.js';
import type { NoiseTable } from './types.js';

/**
 * ComfyUI's sampler ids where they differ from ours (its *_gpu variants differ only in where the
 * Brownian tree lives). ComfyUI's `uni_pc` is its own id, not an alias of `unipc` (diffusers'):
 * another variant (bh1, order 3, stops at sigma 0.001).
 */
const COMFY_ALIASES: Record<string, SamplerId> = {
  euler_ancestral: 'euler_a',
  dpm_2: 'dpm2',
  dpm_2_ancestral: 'dpm2_a',
  dpmpp_2s_ancestral: 'dpmpp_2s_a',
  dpmpp_sde_gpu: 'dpmpp_sde',
  dpmpp_2m_sde_gpu: 'dpmpp_2m_sde',
  dpmpp_3m_sde_gpu: 'dpmpp_3m_sde',
};

/** ComfyUI's own samplers, under ids that are ComfyUI's too. */
const COMFY_IDS: ReadonlySet<SamplerId> = new Set(['uni_pc', 'uni_pc_bh2', 'dpm_fast', 'dpm_adaptive']);

/** A1111's k_* aliases. */
const A1111_ALIASES: Record<string, SamplerId> = {
  k_euler: 'euler',
  k_euler_a: 'euler_a',
  k_euler_ancestral: 'euler_a',
  k_heun: 'heun',
  k_dpm_2: 'dpm2',
  k_dpm_2_a: 'dpm2_a',
  k_lms: 'lms',
  k_dpmpp_2s_a: 'dpmpp_2s_a',
  k_dpmpp_2m: 'dpmpp_2m',
  k_dpmpp_sde: 'dpmpp_sde',
  k_dpmpp_2m_sde: 'dpmpp_2m_sde',
  k_dpmpp_2m_sde_heun: 'dpmpp_2m_sde_heun',
  k_dpmpp_3m_sde: 'dpmpp_3m_sde',
};

/** Other spellings: k-diffusion function names. Matching ignores case. */
const SAMPLER_ALIASES: Record<string, SamplerId> = {
  ...COMFY_ALIASES,
  ...A1111_ALIASES,
  dpm2_ancestral: 'dpm2_a',
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
const SCHEDULE_LABELS: Record<ScheduleId, string> = {
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
  lu_lambdas: 'Lu Lambdas',
};

/** Schedules only A1111 computes this way, and ones only ComfyUI has: their spellings claim that tool's noise table. */
const A1111_SCHEDULES: ReadonlySet<ScheduleId> = new Set(['kl_optimal_a1111', 'align_your_steps_a1111']);
const COMFY_SCHEDULES: ReadonlySet<ScheduleId> = new Set(['simple', 'ddim_uniform', 'beta', 'kl_optimal', 'linear_quadratic', 'align_your_steps', 'align_your_steps_sdxl']);

const SCHEDULE_ALIASES: Record<string, ScheduleId> = { sgmuniform: 'sgm_uniform', ddim: 'ddim_uniform' };

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
  schedule: ScheduleId;
  /** Run the schedule for steps + 1 and drop its next-to-last sigma (A1111/ComfyUI DPM2). */
  discardPenultimateSigma: boolean;
  /**
   * The training sigmas the names claim (see resolveSampler): A1111's or ComfyUI's float64-beta
   * table, or diffusers' float32 one.
   */
  noiseTable: NoiseTable;
}

const normalize = (name: string) => name.trim().toLowerCase();

function samplerById(name: string): SamplerId | undefined {
  const key = normalize(name).replace(/[\s-]+/g, '_');
  if (key in SAMPLERS) return key as SamplerId;
  return SAMPLER_ALIASES[key];
}

function samplerByLabel(name: string): SamplerId | undefined {
  const key = normalize(name);
  return SAMPLER_IDS.find((id) => normalize(SAMPLERS[id].label) === key);
}

/** A schedule id from an A1111 label (exact spelling first), our id or a ComfyUI id; undefined for "Automatic". */
function scheduleByName(name: string): ScheduleId | undefined {
  const byLabel = (Object.keys(SCHEDULE_LABELS) as ScheduleId[]).find((id) => SCHEDULE_LABELS[id] === name.trim());
  if (byLabel) return byLabel;
  const key = normalize(name).replace(/[\s-]+/g, '_');
  if (key === 'automatic') return undefined;
  if (key in SCHEDULES) return key as ScheduleId;
  const alias = SCHEDULE_ALIASES[key.replace(/_/g, '')] ?? SCHEDULE_ALIASES[key];
  if (alias) return alias;
  throw new UnknownSamplerError('schedule', name, [...Object.keys(SCHEDULES), ...Object.values(SCHEDULE_LABELS), 'Automatic']);
}

/**
 * How many denoiser calls a run makes, the clock A1111 runs prompt editing on (its total_steps:
 * 2 * steps - 1 for second-order samplers).
 */
export function modelCalls(sampler: SamplerId, steps: number): number {
  return samplerEntry(sampler).secondOrder ? 2 * steps - 1 : steps;
}

/** Every name resolveSampler accepts, for help texts and errors. */
export function samplerNames(): string[] {
  const labels = Object.values(SCHEDULE_LABELS);
  const names = SAMPLER_IDS.map((id) => SAMPLERS[id].label);
  return [...SAMPLER_IDS, ...Object.keys(SAMPLER_ALIASES), ...names, ...names.flatMap((name) => labels.map((label) => `${name} ${label}`))];
}

/**
 * Which tool's training sigmas a spelling claims. A1111 and ComfyUI build SD's sigmas from
 * float64 betas, diffusers from float32 ones (noise-tables.ts): a run that names A1111's or
 * ComfyUI's sampler or schedule gets that tool's table, in this order:
 * 1. `normal` is diffusers' spacing, which neither tool has: diffusers' table (this is also how an
 *    infotext's "Schedule type: Normal" reads back);
 * 2. a sampler written as A1111 writes it ("DPM++ 2M", "Euler a", k_* aliases) for a sampler A1111
 *    has: A1111's;
 * 3. a sampler written as only ComfyUI writes it (euler_ancestral, dpm_2, *_gpu, uni_pc): ComfyUI's;
 * 4. a schedule only A1111 computes so (kl_optimal_a1111, align_your_steps_a1111): A1111's;
 *    one only ComfyUI has (simple, ddim_uniform, beta, kl_optimal, linear_quadratic, align_your_steps): ComfyUI's;
 * 5. anything else (our ids, which ComfyUI shares, with karras, exponential, uniform, ...): diffusers'.
 */
function noiseTableOf(sampler: SamplerId, schedule: ScheduleId, spelling: 'a1111' | 'comfyui' | 'ours'): NoiseTable {
  if (schedule === 'normal') return 'diffusers';
  if (spelling === 'a1111' && samplerEntry(sampler).a1111) return 'a1111';
  if (spelling === 'comfyui') return 'comfyui';
  if (A1111_SCHEDULES.has(schedule)) return 'a1111';
  if (COMFY_SCHEDULES.has(schedule)) return 'comfyui';
  return 'diffusers';
}

function spellingOf(name: string): 'a1111' | 'comfyui' | 'ours' {
  const key = normalize(name).replace(/[\s-]+/g, '_');
  if (key in A1111_ALIASES) return 'a1111';
  return key in COMFY_ALIASES || COMFY_IDS.has(key as SamplerId) ? 'comfyui' : 'ours';
}

/**
 * Resolves a sampler name and optional schedule name.
 * - Our ids and aliases, any case ("euler_a", "dpmpp_2m_sde_gpu"): the schedule defaults to
 *   `normal` (diffusers' own spacing).
 * - A1111 display names (spelled exactly as A1111 does, or any case when no id matches),
 *   optionally with a schedule suffix ("DPM++ 2M Karras"): the schedule is
 *   the suffix, else the `schedule` argument (A1111's "Schedule type"), else A1111's "Automatic"
 *   choice for that sampler (Karras for DPM++ 2M, Uniform for Euler, ...), as A1111 ≥1.9 reads it.
 * The spelling also picks the noise table (noiseTableOf).
 */
export function resolveSampler(name: string, schedule?: string): ResolvedSampler {
  // "Euler" is A1111's name and "euler" our id: an exact A1111 spelling means A1111's semantics.
  const exactLabel = SAMPLER_IDS.some((id) => SAMPLERS[id].label === name.trim());
  const byId = exactLabel ? undefined : samplerById(name);
  if (byId) {
    const scheduleId = (schedule && scheduleByName(schedule)) || 'normal';
    return {
      sampler: byId,
      schedule: scheduleId,
      // diffusers' KDPM2 keeps every sigma; ComfyUI's dpm_2 on a k-schedule drops one.
      discardPenultimateSigma: samplerEntry(byId).discardPenultimateSigma === 'a1111+comfyui' && scheduleId !== 'normal',
      noiseTable: noiseTableOf(byId, scheduleId, spellingOf(name)),
    };
  }
  let sampler = samplerByLabel(name);
  let scheduleId = schedule === undefined ? undefined : scheduleByName(schedule);
  if (!sampler) {
    for (const [id, label] of Object.entries(SCHEDULE_LABELS) as [ScheduleId, string][]) {
      const suffix = ` ${label.toLowerCase()}`;
      if (normalize(name).endsWith(suffix)) {
        sampler = samplerByLabel(normalize(name).slice(0, -suffix.length));
        if (sampler) {
          scheduleId = id;
          break;
        }
      }
    }
  }
  if (!sampler) throw new UnknownSamplerError('sampler', name, samplerNames());
  const entry = samplerEntry(sampler);
  const resolvedSchedule = scheduleId ?? entry.a1111Schedule;
  return {
    sampler,
    schedule: resolvedSchedule,
    discardPenultimateSigma: entry.discardPenultimateSigma !== undefined,
    noiseTable: noiseTableOf(sampler, resolvedSchedule, 'a1111'),
  };
}

/** A1111 ≥1.9 infotext fields for a (sampler, schedule) pair: "Sampler: X, Schedule type: Y". */
export function a1111Name(sampler: SamplerId, schedule: ScheduleId): { sampler: string; scheduleType: string } {
  if (!(sampler in SAMPLERS)) throw new UnknownSamplerError('sampler', sampler, SAMPLER_IDS);
  const label = SCHEDULE_LABELS[schedule];
  if (!label) throw new UnknownSamplerError('schedule', schedule, Object.keys(SCHEDULE_LABELS));
  return { sampler: SAMPLERS[sampler].label, scheduleType: label };
}
