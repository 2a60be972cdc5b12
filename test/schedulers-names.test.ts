/**
 * Sampler/schedule names (ours, ComfyUI's, AUTOMATIC1111's) and the plan's bookkeeping. The
 * expected names are A1111's documented tables (modules/sd_samplers_kdiffusion.py samplers_k_diffusion
 * and modules/sd_schedulers.py in A1111 ≥1.9), not computed values.
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  SAMPLERS,
  SAMPLER_IDS,
  SCHEDULES,
  SCHEDULE_IDS,
  denoiserOf,
  UnknownSamplerError,
  a1111Name,
  discreteSchedule,
  planSampling,
  resolveSampler,
  type SchedulerConfig,
} from '../src/schedulers/index.js';

const sd15: SchedulerConfig = JSON.parse(
  readFileSync(new URL('../../test/fixtures/samplers/schedules.json', import.meta.url), 'utf8'),
).models.sd15.config;

const resolves = (name: string, schedule: string | undefined, sampler: string, expected: string, discard = false) => {
  const r = resolveSampler(name, schedule);
  assert.equal({ sampler: r.sampler, schedule: r.schedule, discardPenultimateSigma: r.discardPenultimateSigma }, { sampler, schedule: expected, discardPenultimateSigma: discard }, `${name} / ${schedule}`);
};

test('our ids and aliases default to diffusers-style `normal`', () => {
  resolves('euler_a', undefined, 'euler_a', 'normal');
  resolves('euler_ancestral', 'karras', 'euler_a', 'karras');
  resolves('EULER', 'Exponential', 'euler', 'exponential');
  resolves('dpmpp_2m_sde_gpu', 'karras', 'dpmpp_2m_sde', 'karras');
  resolves('plms', undefined, 'pndm', 'normal');
  resolves('dpm_2', undefined, 'dpm2', 'normal');
  // ComfyUI's dpm_2 drops the next-to-last sigma on its own schedules; diffusers' KDPM2 does not.
  resolves('dpm_2', 'karras', 'dpm2', 'karras', true);
  resolves('dpmpp_3m_sde', 'exponential', 'dpmpp_3m_sde', 'exponential');
});

test('A1111 names, old combined form and ≥1.9 form with "Schedule type"', () => {
  resolves('DPM++ 2M Karras', undefined, 'dpmpp_2m', 'karras');
  resolves('DPM++ 2M', 'Karras', 'dpmpp_2m', 'karras');
  resolves('DPM++ 2M', 'Automatic', 'dpmpp_2m', 'karras');
  resolves('DPM++ 2M', undefined, 'dpmpp_2m', 'karras');
  resolves('DPM++ SDE Karras', undefined, 'dpmpp_sde', 'karras');
  resolves('DPM++ 2M SDE Exponential', undefined, 'dpmpp_2m_sde', 'exponential');
  resolves('DPM++ 2M SDE', undefined, 'dpmpp_2m_sde', 'exponential');
  resolves('DPM++ 2M SDE Heun Karras', undefined, 'dpmpp_2m_sde_heun', 'karras');
  resolves('DPM++ 3M SDE', undefined, 'dpmpp_3m_sde', 'exponential', true);
  resolves('DPM2 a Karras', undefined, 'dpm2_a', 'karras', true);
  resolves('DPM++ 2S a', undefined, 'dpmpp_2s_a', 'karras');
  resolves('Euler a', undefined, 'euler_a', 'uniform');
  resolves('Euler', 'SGM Uniform', 'euler', 'sgm_uniform');
  resolves('Euler', 'SGMUniform', 'euler', 'sgm_uniform');
  resolves('LMS', undefined, 'lms', 'uniform');
  resolves('LMS Karras', undefined, 'lms', 'karras');
  resolves('Heun', 'Uniform', 'heun', 'uniform');
  resolves('DDIM', undefined, 'ddim', 'normal');
  resolves('DDIM', 'DDIM', 'ddim', 'ddim_uniform');
  resolves('PLMS', undefined, 'pndm', 'normal');
  resolves('UniPC', undefined, 'unipc', 'normal');
  resolves('LCM', undefined, 'lcm', 'lcm');
});

test('unknown names raise UnknownSamplerError listing the valid ones', () => {
  try {
    resolveSampler('Euler b');
    assert.unreachable();
  } catch (err) {
    assert.instance(err, UnknownSamplerError);
    const e = err as UnknownSamplerError;
    assert.is(e.kind, 'sampler');
    assert.ok(e.valid.includes('euler_a') && e.valid.includes('DPM++ 2M Karras'));
    assert.match(e.message, 'unknown sampler "Euler b"');
  }
  assert.throws(() => resolveSampler('euler', 'vp'), (e: unknown) => e instanceof UnknownSamplerError && e.kind === 'schedule');
});

test('a1111Name writes the ≥1.9 form and reads back to the same pair', () => {
  assert.equal(a1111Name('dpmpp_2m', 'karras'), { sampler: 'DPM++ 2M', scheduleType: 'Karras' });
  assert.equal(a1111Name('euler_a', 'normal'), { sampler: 'Euler a', scheduleType: 'Normal' });
  assert.equal(a1111Name('dpmpp_2m_sde', 'exponential'), { sampler: 'DPM++ 2M SDE', scheduleType: 'Exponential' });
  for (const sampler of SAMPLER_IDS) {
    for (const schedule of SCHEDULE_IDS) {
      const named = a1111Name(sampler, schedule);
      const back = resolveSampler(named.sampler, named.scheduleType);
      assert.equal([back.sampler, back.schedule], [sampler, schedule], `${sampler} / ${schedule}`);
    }
  }
});

test('plan: img2img starts at diffusers t_start = steps - min(int(steps * strength), steps)', () => {
  const model = discreteSchedule(sd15);
  const full = planSampling({ model, sampler: 'euler', schedule: 'normal', steps: 10 });
  const img2img = planSampling({ model, sampler: 'euler', schedule: 'normal', steps: 10, strength: 0.55 });
  assert.is(img2img.startStep, 5);
  assert.equal(Array.from(img2img.sigmas), Array.from(full.sigmas.slice(5)));
  assert.is(img2img.denoiser(async (x) => x).grid?.inferenceSteps, 10);
  const noise = new Float32Array([1, -2]);
  const init = new Float32Array([0.5, 0.25]);
  assert.equal(Array.from(img2img.startLatents(noise, init)), [
    Math.fround(0.5 + img2img.sigmas[0]),
    Math.fround(0.25 - 2 * img2img.sigmas[0]),
  ]);
});

test('plan: initial noise scale per family and schedule', () => {
  const model = discreteSchedule(sd15);
  const leading = discreteSchedule({ ...sd15, timestep_spacing: 'leading' });
  const karras = planSampling({ model, sampler: 'euler', schedule: 'karras', steps: 8 });
  assert.is(karras.initNoiseScale, karras.sigmas[0]); // k-diffusion: noise * sigmas[0]
  // DPMSolverMultistep(use_karras_sigmas) and ComfyUI start from unit-variance x_vp and quantise t.
  const dpm = planSampling({ model, sampler: 'dpmpp_2m', schedule: 'karras', steps: 8 });
  assert.is(dpm.initNoiseScale, Math.sqrt(dpm.sigmas[0] ** 2 + 1));
  assert.is(dpm.timestepOf(dpm.sigmas[1]!), Math.round(model.sigmaToT(dpm.sigmas[1]!)));
  const euler = planSampling({ model: leading, sampler: 'euler', schedule: 'normal', steps: 8 });
  assert.is(euler.initNoiseScale, Math.sqrt(euler.sigmas[0] ** 2 + 1)); // diffusers, leading spacing
  const ddim = planSampling({ model, sampler: 'ddim', schedule: 'karras', steps: 8 });
  assert.is(ddim.initNoiseScale, Math.sqrt(ddim.sigmas[0] ** 2 + 1)); // VP: unit-variance x_vp
  assert.is(ddim.finalScale, 1);
});

test('plan: discarding the penultimate sigma (A1111/ComfyUI DPM2) and LCM`s own timesteps', () => {
  const model = discreteSchedule(sd15);
  const plan = planSampling({ model, sampler: 'dpm2', schedule: 'karras', steps: 10, discardPenultimateSigma: true });
  const longer = SCHEDULES.karras(model, 11, SAMPLERS.dpm2).sigmas;
  assert.equal(Array.from(plan.sigmas), [...Array.from(longer.slice(0, 10)), 0]);
  const lcm = planSampling({ model, sampler: 'lcm', schedule: 'normal', steps: 4 });
  assert.equal(Array.from(lcm.sigmas), Array.from(SCHEDULES.lcm(model, 4, SAMPLERS.lcm).sigmas));
});

test('prompt editing clock: second-order samplers make 2 * steps - 1 model calls (A1111 total_steps)', async () => {
  const { modelCalls } = await import('../src/schedulers/index.js');
  assert.is(modelCalls('euler', 10), 10);
  for (const s of ['heun', 'dpm2', 'dpm2_a', 'dpmpp_2s_a', 'dpmpp_sde'] as const) assert.is(modelCalls(s, 10), 19, s);
  // The count is what the sampler really does: Heun's last step is an Euler step.
  const model = discreteSchedule(sd15);
  const plan = planSampling({ model, sampler: 'heun', schedule: 'karras', steps: 10 });
  let calls = 0;
  await plan.sampler(denoiserOf(plan.model, async (x) => (calls++, x.map(() => 0))), new Float32Array(4).fill(1), plan.sigmas, { noise: () => new Float32Array(4) });
  assert.is(calls, modelCalls('heun', 10));
});

test.run();
