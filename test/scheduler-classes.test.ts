/**
 * diffusers' scheduler classes against diffusers 0.32.2 itself (test/fixtures/samplers/classes.json.gz,
 * from tools/make_scheduler_class_refs.py): each class's own defaults for keys a config leaves out
 * (also through another class and from a config another class saved), every class's set_timesteps
 * under each timestep_spacing and its final_sigmas_type / use_karras_sigmas / use_lu_lambdas /
 * rescale_betas_zero_snr options, whole loops of the samplers and options diffuse adds
 * (DPM-Solver singlestep, TCD, clip_sample and thresholding, ...), and DDIM inversion.
 */
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import {
  DIFFUSERS_CLASSES,
  SAMPLERS,
  SAMPLER_IDS,
  SCHEDULES,
  discreteSchedule,
  planInversion,
  planSampling,
  type DiffusersClassId,
  type SamplerId,
  type ScheduleId,
  type SchedulerConfig,
} from '../src/schedulers/index.js';

interface TimestepRecord {
  timesteps?: number[] | null;
  sigmas?: number[];
  init_noise_sigma?: number;
  error?: string;
}
interface DefaultsCase extends TimestepRecord {
  class: DiffusersClassId;
  config: string;
  source: string;
  file: SchedulerConfig;
  resolved: Record<string, unknown>;
  alphas_cumprod: number[];
  final_alpha_cumprod?: number;
}
interface SpacingCase extends TimestepRecord {
  class: DiffusersClassId;
  variant: string;
  config: SchedulerConfig;
  steps: number;
}
interface LoopCase {
  label: string;
  class: DiffusersClassId;
  schedule: ScheduleId;
  config: SchedulerConfig;
  steps: number;
  eta: number | null;
  initLatents: number[];
  initNoiseSigma: number;
  unetTimesteps: number[];
  noise: number[][];
  final: number[];
}
interface Refs {
  probes: number[];
  defaults: DefaultsCase[];
  spacing: SpacingCase[];
  loops: LoopCase[];
  inversion: { clean: number[]; cases: { config: SchedulerConfig; steps: number; unetTimesteps: number[]; final: number[] }[] };
}

const refs = readJson<Refs>(join(FIXTURES, 'samplers/classes.json.gz'));
const f32 = Math.fround;

/** The sampler that is exactly this diffusers class (pndm: PLMS, as Stable Diffusion ships PNDMScheduler). */
function samplerOf(cls: DiffusersClassId): SamplerId {
  const id = SAMPLER_IDS.find((s) => SAMPLERS[s].diffusers === cls && SAMPLERS[s].exact);
  if (!id) throw new Error(`no sampler for ${cls}`);
  return id;
}

function maxRel(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string): number {
  assert.is(actual.length, expected.length, `${label}: length`);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = f32(expected[i]);
    worst = Math.max(worst, e === 0 ? Math.abs(actual[i]) : Math.abs(actual[i] - e) / Math.abs(e));
  }
  return worst;
}

/**
 * init_noise_sigma in diffuse's sigma space: the VP classes start from unit-variance x_vp, which is
 * sqrt(sigma_0² + 1) times unit noise in sigma space.
 */
function sigmaSpaceInit(cls: DiffusersClassId, initNoiseSigma: number, sigma0: number): number {
  return DIFFUSERS_CLASSES[cls].init === 'unit' ? initNoiseSigma * Math.sqrt(sigma0 * sigma0 + 1) : initNoiseSigma;
}

/**
 * Sigmas: float32 on both sides from the same float32 training sigmas; numpy's float64 interp and
 * torch's exp/pow leave at most a few ulps (4 float32 ulps here). Timesteps exactly.
 */
const SIGMA_TOL = 4 * 2 ** -23;
/** Zero terminal SNR's rescale cancels almost everything near the end: as in schedulers-schedules.test.ts. */
const ZSNR_TOL = 1e-5;
/** diffusers' use_karras_sigmas is numpy float64 then float32; diffuse's `karras` is k-diffusion's float32 torch (rho 7 amplifies ulps). */
const KARRAS_TOL = 1e-6;

function checkTimesteps(
  label: string,
  cls: DiffusersClassId,
  model: ReturnType<typeof discreteSchedule>,
  steps: number,
  ref: TimestepRecord,
  schedule: ScheduleId = 'normal',
  tol = SIGMA_TOL,
): void {
  const result = SCHEDULES[schedule](model, steps, SAMPLERS[samplerOf(cls)]);
  if (ref.sigmas) {
    // The reference dropped repeats (Heun's pairs); a 1-step linspace list is [sigma_min, sigma_min] on both sides.
    const walk = Array.from(result.sigmas).filter((v, i, all) => i === 0 || v !== all[i - 1]);
    const err = maxRel(walk, ref.sigmas, label);
    assert.ok(err <= tol, `${label}: sigmas ${err}`);
  }
  if (ref.timesteps) {
    const seen = Array.from(result.sigmas.subarray(0, steps), (s) => f32(result.timestepOf ? result.timestepOf(s) : model.sigmaToT(s)));
    assert.equal(seen, ref.timesteps.map(f32), `${label}: timesteps`);
  }
  if (ref.init_noise_sigma !== undefined) {
    const expected = sigmaSpaceInit(cls, ref.init_noise_sigma, result.sigmas[0]);
    const err = Math.abs(result.initNoiseScale - expected) / expected;
    assert.ok(err <= 1e-6, `${label}: init_noise_sigma ${result.initNoiseScale} vs ${expected}`);
  }
}

test("each class fills a config's missing keys with its own defaults, as diffusers' from_config does", () => {
  let checked = 0;
  for (const c of refs.defaults) {
    const label = `${c.class} from ${c.source} (${c.config})`;
    const model = discreteSchedule(c.file, { class: c.class });
    assert.equal(
      refs.probes.map((t) => model.alphasCumprod[t]),
      c.alphas_cumprod.map(f32),
      `${label}: alphas_cumprod`,
    );
    if (c.final_alpha_cumprod !== undefined) assert.is(model.finalAlphaCumprod, f32(c.final_alpha_cumprod), `${label}: final_alpha_cumprod`);
    const r = c.resolved;
    assert.is(model.predictionType, r.prediction_type, `${label}: prediction_type`);
    // A key the class does not take may ride along in its config (from_config keeps it hidden) but means nothing to it.
    const takes = (key: string) => key in r && key in DIFFUSERS_CLASSES[c.class].defaults;
    if (takes('timestep_spacing')) assert.is(model.timestepSpacing, r.timestep_spacing, `${label}: timestep_spacing`);
    if (takes('steps_offset')) assert.is(model.stepsOffset, r.steps_offset, `${label}: steps_offset`);
    if (takes('final_sigmas_type')) assert.is(model.finalSigmas, r.final_sigmas_type, `${label}: final_sigmas_type`);
    if (takes('original_inference_steps')) assert.is(model.originalInferenceSteps, r.original_inference_steps, label);
    if (takes('lower_order_final')) assert.is(model.lowerOrderFinal, r.lower_order_final, label);
    const limit = takes('thresholding') && r.thresholding ? 'threshold' : takes('clip_sample') && r.clip_sample ? 'clip' : 'none';
    assert.is(model.x0Limit.kind, limit, `${label}: clip_sample / thresholding`);
    if (c.error) continue;
    checkTimesteps(label, c.class, model, 10, c);
    checked++;
  }
  assert.ok(checked >= 16 * 4 * 3 - 4, `${checked} cases`);
});

test('every class spaces its timesteps as diffusers does, for every timestep_spacing and sigma option', () => {
  let checked = 0;
  for (const c of refs.spacing) {
    if (c.error) continue;
    // use_karras_sigmas / use_lu_lambdas are diffuse's `karras` / `lu_lambdas` schedules.
    const schedule: ScheduleId = c.variant === 'karras' ? 'karras' : c.variant === 'lu_lambdas' ? 'lu_lambdas' : 'normal';
    const model = discreteSchedule(c.config, { class: c.class });
    const tol = c.variant === 'zsnr' ? ZSNR_TOL : schedule === 'karras' ? KARRAS_TOL : SIGMA_TOL;
    checkTimesteps(`${c.class} ${c.variant} ${c.steps} steps`, c.class, model, c.steps, c, schedule, tol);
    checked++;
  }
  assert.ok(checked > 300, `${checked} cases`);
});

/** tools/make_vp_refs.py's stand-in UNet. */
function dummyUnet(calls: number[]) {
  return async (xIn: Float32Array, t: number) => {
    calls.push(t);
    return Float32Array.from(xIn, (v) => Math.tanh(0.5 * v + 0.1 * Math.sin(t / 100)));
  };
}

function relToMax(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / scale;
}

// Whole loops in float32 on both sides: ~1e-6 of the latents' scale; 1e-5 as for the other loops.
const LOOP_TOL = 1e-5;

test('whole loops match diffusers: plan (sigmas, start, timesteps), sampler, noise draws', async () => {
  const worst: Record<string, number> = {};
  for (const c of refs.loops) {
    const label = `${c.label} ${c.steps} steps`;
    const sampler = samplerOf(c.class);
    const plan = planSampling({ model: discreteSchedule(c.config), sampler, schedule: c.schedule, steps: c.steps });
    const init = sigmaSpaceInit(c.class, c.initNoiseSigma, plan.sigmas[0]);
    assert.ok(Math.abs(plan.initNoiseScale - init) <= 1e-6 * init, `${label}: init ${plan.initNoiseScale} vs ${init}`);
    const calls: number[] = [];
    let used = 0;
    const noise = () => {
      assert.ok(used < c.noise.length, `${label}: more noise draws than diffusers made`);
      return Float32Array.from(c.noise[used++]);
    };
    const x = await plan.sampler(plan.denoiser(dummyUnet(calls), c.initLatents.length / 64), plan.startLatents(Float32Array.from(c.initLatents)), plan.sigmas, {
      noise,
      ...(c.eta !== null ? { eta: c.eta } : {}),
    });
    // Midpoint timesteps (KDPM2) are interpolated in float32 by diffusers, float64 here: 2e-4 as for k-diffusion's.
    assert.is(calls.length, c.unetTimesteps.length, `${label}: UNet calls`);
    calls.forEach((t, k) => assert.ok(Math.abs(t - c.unetTimesteps[k]) <= 2e-4, `${label}: UNet timestep ${k}: ${t} vs ${c.unetTimesteps[k]}`));
    // diffusers' EulerAncestral also draws noise for the last step, scaled by sigma_up = 0; k-diffusion's
    // (diffuse's) skips it. Nothing draws after the loop, so the images are the same.
    const lastUnused = c.class === 'EulerAncestralDiscreteScheduler' ? 1 : 0;
    assert.is(used, c.noise.length - lastUnused, `${label}: noise draws`);
    const err = relToMax(x.map((v) => v * plan.finalScale), c.final);
    worst[c.label] = Math.max(worst[c.label] ?? 0, err);
    assert.ok(err <= LOOP_TOL, `${label}: relative error ${err}`);
  }
  console.log('  largest relative error per case:', Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', '));
});

test('DDIM inversion matches DDIMInverseScheduler: timesteps and inverted latents', async () => {
  let worstErr = 0;
  for (const c of refs.inversion.cases) {
    const plan = planInversion(c.config, c.steps);
    assert.equal(Array.from(plan.timesteps), c.unetTimesteps, 'timesteps');
    const calls: number[] = [];
    const x = await plan.sampler(plan.denoiser(dummyUnet(calls), 2), Float32Array.from(refs.inversion.clean), plan.sigmas, {
      noise: () => assert.unreachable('DDIM inversion draws no noise') as never,
    });
    assert.equal(calls, c.unetTimesteps, 'UNet timesteps');
    const err = relToMax(x, c.final);
    worstErr = Math.max(worstErr, err);
    assert.ok(err <= LOOP_TOL, `${JSON.stringify(c.config)} ${c.steps}: ${err}`);
  }
  console.log(`  inversion: largest relative error ${worstErr.toExponential(1)}`);
  assert.throws(() => planInversion({ timestep_spacing: 'linspace' }, 10), /leading and trailing/);
});

test.run();
