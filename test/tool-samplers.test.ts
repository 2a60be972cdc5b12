/**
 * What only k-diffusion, AUTOMATIC1111 and ComfyUI have, against their own code
 * (test/fixtures/samplers/tool-samplers.json.gz, from tools/make_tool_sampler_refs.py):
 * k-diffusion's sample_dpm_fast / sample_dpm_adaptive as ComfyUI calls them, A1111's Restart
 * sampler, and the training sigmas A1111 and ComfyUI compute from float64 betas — with the rule
 * that picks them from the names a run is given.
 */
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import {
  SAMPLERS,
  SCHEDULES,
  discreteSchedule,
  makeDenoiser,
  planSampling,
  resolveSampler,
  type NoiseSource,
  type SamplerId,
  type SchedulerConfig,
} from '../src/schedulers/index.js';

interface LoopCase {
  sampler?: SamplerId;
  schedule: string;
  prediction: string;
  eta?: number;
  sigmas: number[];
  calls: number;
  noise_used: number;
  out: number[];
}
interface TableRef {
  config: SchedulerConfig;
  comfyui: number[];
  a1111: number[];
  comfyui_karras: number[];
  a1111_karras: number[];
}
interface Refs {
  shape: number[];
  x_noise: number[];
  noise_pool: number[];
  dpm_solver: LoopCase[];
  restart: LoopCase[];
  noise_tables: Record<string, TableRef>;
}

const refs = readJson<Refs>(join(FIXTURES, 'samplers/tool-samplers.json.gz'));
const f32 = Math.fround;
const NUMEL = refs.shape.reduce((a, b) => a * b, 1);
const ITEM = NUMEL / refs.shape[0];
const xNoise = Float32Array.from(refs.x_noise);

/** tools/sampler_refs_common.py's dummy_net, float32 op by op (as in schedulers-loops.test.ts). */
async function dummyNet(xIn: Float32Array, t: number): Promise<Float32Array> {
  const bias = f32(f32(0.1) * f32(Math.sin(f32(f32(t) / 100))));
  const out = new Float32Array(xIn.length);
  for (let b = 0; b < xIn.length; b += ITEM) {
    for (let i = 0; i < ITEM; i++) {
      const prev = xIn[b + ((i + ITEM - 1) % ITEM)];
      out[b + i] = f32(Math.tanh(f32(f32(f32(f32(0.6) * xIn[b + i]) + f32(f32(0.3) * prev)) + bias)));
    }
  }
  return out;
}

function replayed(): { noise: NoiseSource; used: () => number } {
  let used = 0;
  return {
    noise: () => {
      if ((used + 1) * NUMEL > refs.noise_pool.length) throw new Error('noise pool exhausted');
      return Float32Array.from(refs.noise_pool.slice(used++ * NUMEL, used * NUMEL));
    },
    used: () => used,
  };
}

function relToMax(actual: Float32Array, expected: number[]): number {
  let diff = 0;
  let scale = 0;
  expected.forEach((e, i) => {
    diff = Math.max(diff, Math.abs(actual[i] - f32(e)));
    scale = Math.max(scale, Math.abs(e));
  });
  return diff / scale;
}

// The sampler references' model (sampler_refs_common.SD15_CONFIG, diffusers' table).
const SD15: SchedulerConfig = refs.noise_tables.sd15.config;
const LOOP_TOL = 1e-5;

async function runLoop(c: LoopCase, sampler: SamplerId): Promise<{ err: number; calls: number; used: number }> {
  const model = discreteSchedule({ ...SD15, prediction_type: c.prediction }, { class: 'EulerDiscreteScheduler' });
  const sigmas = Float64Array.from(c.sigmas, f32);
  let calls = 0;
  const denoise = makeDenoiser(model, async (xIn, t) => (calls++, dummyNet(xIn, t)));
  const { noise, used } = replayed();
  const x = await SAMPLERS[sampler].fn(denoise, xNoise.map((v) => v * sigmas[0]), sigmas, { noise, ...(c.eta !== undefined ? { eta: c.eta } : {}) });
  return { err: relToMax(x, c.out), calls, used: used() };
}

test("k-diffusion's DPM fast and DPM adaptive (eta 0 and 1): calls, noise draws, results", async () => {
  const worst: Record<string, number> = {};
  for (const c of refs.dpm_solver) {
    const label = `${c.sampler} ${c.schedule} ${c.sigmas.length - 1} ${c.prediction} eta ${c.eta}`;
    const { err, calls, used } = await runLoop(c, c.sampler!);
    assert.is(calls, c.calls, `${label}: model calls (the adaptive controller's accepts and rejects)`);
    assert.is(used, c.noise_used, `${label}: noise draws`);
    assert.ok(err <= LOOP_TOL, `${label}: relative error ${err}`);
    worst[c.sampler!] = Math.max(worst[c.sampler!] ?? 0, err);
  }
  console.log('  largest relative error:', Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', '));
});

test("A1111's Restart: its restart segments from 20 steps on, Heun below", async () => {
  let worst = 0;
  for (const c of refs.restart) {
    const label = `restart ${c.schedule} ${c.sigmas.length - 1} ${c.prediction}`;
    const { err, calls, used } = await runLoop(c, 'restart');
    assert.is(calls, c.calls, `${label}: model calls`);
    assert.is(used, c.noise_used, `${label}: noise draws`);
    assert.ok(err <= LOOP_TOL, `${label}: relative error ${err}`);
    worst = Math.max(worst, err);
  }
  console.log(`  restart: largest relative error ${worst.toExponential(1)}`);
});

test("A1111's and ComfyUI's training sigmas, and the Karras schedule on each", () => {
  for (const [name, ref] of Object.entries(refs.noise_tables)) {
    for (const tool of ['a1111', 'comfyui'] as const) {
      const model = discreteSchedule(ref.config, { table: tool });
      assert.is(model.noiseTable, tool);
      // Float64 arithmetic as the tools do it, rounded where they round. ComfyUI's float64 square root
      // rounds once: identical values. A1111's goes through torch's float32 pow(x, 0.5), which is not
      // correctly rounded: one ulp on some entries, as diffusers' own table (schedulers-schedules.test.ts).
      const ulps = tool === 'comfyui' ? 0 : 1;
      model.sigmas.forEach((s, i) => assert.ok(Math.abs(s - f32(ref[tool][i])) <= ulps * 2 ** -23 * s, `${name} ${tool} sigma ${i}: ${s} vs ${ref[tool][i]}`));
      const karras = SCHEDULES.karras(model, 10, SAMPLERS.euler).sigmas;
      karras.forEach((s, i) => assert.ok(Math.abs(s - f32(ref[`${tool}_karras`][i])) <= 4 * 2 ** -23 * s, `${name} ${tool} karras ${i}`));
    }
    // The point of the tables: diffusers' float32 betas give other sigmas.
    const diffusers = discreteSchedule(ref.config);
    assert.not.equal(Array.from(diffusers.sigmas), ref.a1111.map(f32), `${name}: diffusers' table differs from A1111's`);
  }
  const sd15 = refs.noise_tables.sd15;
  console.log(
    `  SD 1.5 sigma_max: diffusers ${discreteSchedule(sd15.config).sigmaMax}, A1111 ${f32(sd15.a1111[999])}, ComfyUI ${f32(sd15.comfyui[999])}`,
  );
});

test('zero terminal SNR has no A1111/ComfyUI table: diffusers` is used and reported', () => {
  const model = discreteSchedule({ ...SD15, rescale_betas_zero_snr: true }, { class: 'EulerDiscreteScheduler', table: 'a1111' });
  assert.is(model.noiseTable, 'diffusers');
  assert.is(model.sigmaMax, 4096);
});

test('the names a run is given pick the noise table, and the plan reports it', () => {
  const table = (sampler: string, schedule?: string) => resolveSampler(sampler, schedule).noiseTable;
  // A1111's spellings of A1111's samplers, on A1111's schedules.
  assert.is(table('DPM++ 2M Karras'), 'a1111');
  assert.is(table('Euler a'), 'a1111');
  assert.is(table('k_dpmpp_2m', 'karras'), 'a1111');
  assert.is(table('Restart'), 'a1111');
  assert.is(table('euler', 'kl_optimal_a1111'), 'a1111');
  // ComfyUI's spellings and ComfyUI-only schedules.
  assert.is(table('euler_ancestral', 'karras'), 'comfyui');
  assert.is(table('dpmpp_2m_sde_gpu', 'exponential'), 'comfyui');
  assert.is(table('uni_pc', 'karras'), 'comfyui');
  assert.is(table('euler', 'simple'), 'comfyui');
  assert.is(table('dpm_fast', 'karras'), 'comfyui');
  // `normal` is diffusers' spacing whatever the names (an infotext's "Schedule type: Normal" reads back so).
  assert.is(table('Euler a', 'Normal'), 'diffusers');
  assert.is(table('DDIM'), 'diffusers');
  // Our ids, which ComfyUI shares, on shared schedules; diffuse-only labels claim nothing.
  assert.is(table('dpmpp_2m', 'karras'), 'diffusers');
  assert.is(table('euler'), 'diffusers');
  assert.is(table('DEIS', 'Karras'), 'diffusers');

  const model = discreteSchedule(SD15);
  const { sampler, schedule, noiseTable } = resolveSampler('DPM++ 2M Karras');
  const plan = planSampling({ model, sampler, schedule, noiseTable, steps: 10 });
  assert.is(plan.model.noiseTable, 'a1111');
  const first = f32(refs.noise_tables.sd15.a1111_karras[0]);
  assert.ok(Math.abs(plan.sigmas[0] - first) <= 4 * 2 ** -23 * first, `${plan.sigmas[0]} is A1111's Karras start ${first}`);
  assert.is(planSampling({ model, sampler, schedule, steps: 10 }).model.noiseTable, 'diffusers');
});

test.run();
