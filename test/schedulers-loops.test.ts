/**
 * Whole sampling loops on a dummy network against k-diffusion 0.1.1's sample_* functions and
 * diffusers 0.32.2's scheduler loops (test/fixtures/samplers/loops.json, from
 * tools/make_sampler_refs.py). Every gaussian the reference drew came from a recorded pool,
 * replayed here in the same order through the NoiseSource.
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  SAMPLERS,
  discreteSchedule,
  makeDenoiser,
  planSampling,
  type DiscreteSchedule,
  type NoiseSource,
  type SamplerId,
  type SchedulerConfig,
} from '../src/schedulers/index.js';

interface KCase {
  sampler: SamplerId;
  schedule: string;
  prediction: string;
  sigmas: number[];
  noise_used: number;
  out: number[];
}
interface DiffusersCase {
  sampler: SamplerId;
  variant: string;
  prediction: string;
  steps: number;
  config: SchedulerConfig;
  init_noise_sigma: number;
  sigmas: number[];
  timesteps_seen: number[];
  noise_used: number;
  out: number[];
}
interface Loops {
  shape: number[];
  x_noise: number[];
  noise_pool: number[];
  k_diffusion: KCase[];
  diffusers: DiffusersCase[];
}

const loops: Loops = JSON.parse(readFileSync(new URL('../../test/fixtures/samplers/loops.json', import.meta.url), 'utf8'));
const f32 = Math.fround;
const NUMEL = loops.shape.reduce((a, b) => a * b, 1);
const ITEM = NUMEL / loops.shape[0];
const xNoise = Float32Array.from(loops.x_noise);
const pool = Array.from({ length: loops.noise_pool.length / NUMEL }, (_, k) =>
  Float32Array.from(loops.noise_pool.slice(k * NUMEL, (k + 1) * NUMEL)),
);

/**
 * tools/sampler_refs_common.py's dummy_net, float32 op by op:
 * tanh(0.6 * x[i] + 0.3 * x[i - 1] + 0.1 * sin(t / 100)) within each batch item.
 */
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

/** The reference's noise draws, in order; counts what the sampler took. */
function replayedNoise(): { noise: NoiseSource; used: () => number } {
  let used = 0;
  return {
    noise: () => {
      if (used >= pool.length) throw new Error('noise pool exhausted');
      return pool[used++].slice();
    },
    used: () => used,
  };
}

/** max |a - b| / max |b|: the error relative to the result's scale. */
function relError(actual: Float32Array, expected: number[]): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - f32(expected[i])));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return worst / scale;
}

function scaled(x: Float32Array, s: number): Float32Array {
  return x.map((v) => v * s);
}

const models = new Map<string, DiscreteSchedule>();
function modelFor(config: SchedulerConfig): DiscreteSchedule {
  const key = JSON.stringify(config);
  if (!models.has(key)) models.set(key, discreteSchedule(config));
  return models.get(key)!;
}

const SD15 = loops.diffusers[0].config;

// Float32 latents, float64 scalars: each op differs from torch's float32 by under an ulp, and ten
// steps (twenty network calls for second-order samplers) stay below 1e-5 of the result's scale.
const LOOP_TOL = 1e-5;
const worst: Record<string, number> = {};
const note = (key: string, err: number) => (worst[key] = Math.max(worst[key] ?? 0, err));

for (const c of loops.k_diffusion) {
  test(`k-diffusion ${c.sampler} / ${c.schedule} / ${c.prediction}`, async () => {
    const model = modelFor({ ...SD15, prediction_type: c.prediction });
    const sigmas = Float64Array.from(c.sigmas, f32);
    const { noise, used } = replayedNoise();
    const x = await SAMPLERS[c.sampler].fn(makeDenoiser(model, dummyNet), scaled(xNoise, sigmas[0]), sigmas, { noise });
    const err = relError(x, c.out);
    note(`k-diffusion ${c.sampler}`, err);
    assert.is(used(), c.noise_used, 'noise draws');
    assert.ok(err <= LOOP_TOL, `relative error ${err}`);
  });
}

/** diffusers' VP schedulers start from unit-variance x_vp, i.e. sqrt(sigma² + 1) in sigma space. */
const VP_IN_DIFFUSERS = new Set(['dpmpp_2m', 'dpmpp_2m_sde']);

for (const c of loops.diffusers) {
  const name = `diffusers ${c.sampler} / ${c.variant} / ${c.prediction} / ${c.steps} steps`;

  // The sampler alone: diffusers' own sigmas, and the timesteps its network saw, replayed.
  test(`${name}: same sigmas and timesteps`, async () => {
    const model = modelFor(c.config);
    const sigmas = Float64Array.from(c.sigmas, f32);
    const seen = [...c.timesteps_seen];
    const denoise = makeDenoiser(model, dummyNet, { timestepOf: () => seen.shift()! });
    const start = VP_IN_DIFFUSERS.has(c.sampler) ? Math.sqrt(sigmas[0] ** 2 + 1) : c.init_noise_sigma;
    const { noise } = replayedNoise();
    const x = await SAMPLERS[c.sampler].fn(denoise, scaled(xNoise, start), sigmas, { noise });
    const err = relError(x, c.out);
    note(`diffusers ${c.sampler}`, err);
    assert.is(seen.length, 0, 'network calls');
    assert.ok(err <= LOOP_TOL, `relative error ${err}`);
  });

  if (!c.variant.startsWith('normal')) continue;

  // The whole plan for (sampler, 'normal'): diffusers' sigmas, initial noise scale, timesteps.
  test(`${name}: planSampling reproduces diffusers`, async () => {
    const model = modelFor(c.config);
    const plan = planSampling({ model, sampler: c.sampler, schedule: 'normal', steps: c.steps });
    const expected = Float64Array.from(c.sigmas, f32);
    assert.is(plan.sigmas.length, expected.length);
    plan.sigmas.forEach((s, i) => assert.ok(Math.abs(s - expected[i]) <= 4e-7 * expected[i], `sigma ${i}`));
    const start = VP_IN_DIFFUSERS.has(c.sampler) ? Math.sqrt(expected[0] ** 2 + 1) : c.init_noise_sigma;
    assert.ok(Math.abs(plan.initNoiseScale - start) <= 1e-6 * start, `init noise ${plan.initNoiseScale} vs ${start}`);
    const { noise } = replayedNoise();
    const x = await plan.sampler(plan.denoiser(dummyNet), plan.startLatents(xNoise), plan.sigmas, { noise });
    const err = relError(scaled(x, plan.finalScale), c.out);
    note(`plan ${c.sampler}`, err);
    assert.ok(err <= LOOP_TOL, `relative error ${err}`);
  });
}

test('summary of the largest relative errors', () => {
  for (const [key, err] of Object.entries(worst).sort()) console.log(`    ${key.padEnd(28)} ${err.toExponential(2)}`);
});

test.run();
