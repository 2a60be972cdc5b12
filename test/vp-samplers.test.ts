import { join } from 'node:path';
/**
 * The VP samplers against diffusers 0.32.2's schedulers run in a full pipeline loop on a dummy
 * UNet (test/fixtures/vp-samplers/refs.json, from tools/make_vp_refs.py): DDIM (eta 0 and 0.5),
 * PNDM (PLMS and PRK warm-ups), UniPC, DEIS, LCM and DDPM, for SD 1.5's scheduler config with
 * leading and trailing spacing, as a v-prediction model and with the zero terminal SNR recipe
 * (v, rescaled betas, trailing), at 5, 7, 10 and 25 steps.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { makeDenoiser } from '../src/schedulers/denoiser.js';
import { discreteSchedule, type SchedulerConfig } from '../src/schedulers/model.js';
import { SAMPLERS, SCHEDULES, type SamplerId } from '../src/schedulers/index.js';
import type { DiscreteSchedule, Latents, SamplerOptions } from '../src/schedulers/types.js';
import { lcmTimesteps } from '../src/schedulers/vp-lcm.js';

interface Case {
  scheduler: string;
  config: string;
  predictionType: string;
  rescaleBetasZeroSnr: boolean;
  /** The config's timestep_spacing, or "default" for the scheduler class's own. */
  timestepSpacing: string;
  steps: number;
  eta: number;
  timesteps: number[];
  unetTimesteps: number[];
  noise: number[][];
  final: number[];
}
interface Refs {
  numTrainTimesteps: number;
  finalAlphaCumprod: number;
  alphasCumprod: number[];
  initLatents: number[];
  lcmTimesteps: Record<string, number[]>;
  cases: Case[];
}

const refs: Refs = readJson<Refs>(join(FIXTURES, 'vp-samplers/refs.json.gz'));

/** stable-diffusion-v1-5's scheduler_config.json, as in tools/make_vp_refs.py. */
const SD15: SchedulerConfig = {
  _class_name: 'PNDMScheduler',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  trained_betas: null,
  clip_sample: false,
};

/** Our sampler for each diffusers scheduler setup of the fixture. */
const SAMPLER_OF: Record<string, SamplerId> = {
  ddim: 'ddim',
  'ddim_eta0.5': 'ddim',
  pndm: 'pndm',
  pndm_prk: 'pndm_prk',
  unipc: 'unipc',
  deis: 'deis',
  lcm: 'lcm',
  ddpm: 'ddpm',
};

/**
 * Whole loops in float32 on both sides agree to ~1e-6 of the latents' scale; 1e-5 leaves room
 * for the longest (25-step multistep) runs. Errors are relative to the largest reference value.
 */
const TOLERANCE = 1e-5;

/** The config as the case's scheduler class reads it (Cls.from_config with the case's overrides). */
function modelFor(c: Case): DiscreteSchedule {
  const config = { ...SD15, prediction_type: c.predictionType, rescale_betas_zero_snr: c.rescaleBetasZeroSnr };
  return discreteSchedule(config, { class: SAMPLERS[SAMPLER_OF[c.scheduler]].diffusers });
}

/** The fixture's stand-in UNet, out = tanh(0.5 * x_in + 0.1 * sin(t / 100)), behind the pipeline's denoiser. */
function dummyDenoiser(model: DiscreteSchedule, calls: number[], inferenceSteps?: number) {
  return makeDenoiser(
    model,
    async (xIn, t) => {
      calls.push(t);
      return Float32Array.from(xIn, (v) => Math.tanh(0.5 * v + 0.1 * Math.sin(t / 100)));
    },
    inferenceSteps ? { grid: { inferenceSteps } } : {},
  );
}

interface Run {
  result: Latents;
  calls: number[];
  noiseUsed: number;
}

async function run(c: Case, withInferenceSteps: boolean): Promise<Run> {
  const model = modelFor(c);
  const sigmas = Float64Array.from([...c.timesteps.map((t) => model.sigmas[t]), 0]);
  const x = Float32Array.from(refs.initLatents, (v) => v * Math.sqrt(1 + sigmas[0] * sigmas[0]));
  const calls: number[] = [];
  let noiseUsed = 0;
  const options: SamplerOptions = {
    eta: c.eta,
    noise: () => {
      assert.ok(noiseUsed < c.noise.length, 'more noise draws than diffusers made');
      return Float32Array.from(c.noise[noiseUsed++]);
    },
  };
  const denoise = dummyDenoiser(model, calls, withInferenceSteps ? c.steps : undefined);
  const result = await SAMPLERS[SAMPLER_OF[c.scheduler]].fn(denoise, x, sigmas, options);
  return { result, calls, noiseUsed };
}

function relError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.is(actual.length, expected.length, 'length');
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / scale;
}

const label = (c: Case) => `${c.scheduler} ${c.config} ${c.steps} steps`;

test('our SD 1.5 training schedule is the one diffusers used for the fixture', () => {
  const model = discreteSchedule(SD15);
  assert.is(model.finalAlphaCumprod, refs.finalAlphaCumprod);
  // The fixture holds float32 values to 9 significant digits, which round back to the same float32.
  assert.equal(Array.from(model.alphasCumprod), Array.from(Float32Array.from(refs.alphasCumprod)));
});

test('every scheduler loop matches diffusers: final latents, UNet timesteps and noise draws', async () => {
  const worst: Record<string, number> = {};
  for (const c of refs.cases) {
    const { result, calls, noiseUsed } = await run(c, true);
    assert.equal(
      calls.map((t) => Math.round(t)),
      c.unetTimesteps,
      `${label(c)}: UNet timesteps`,
    );
    for (const t of calls) assert.ok(Math.abs(t - Math.round(t)) < 1e-6, `${label(c)}: timestep ${t} is not on the grid`);
    assert.is(noiseUsed, c.noise.length, `${label(c)}: noise draws`);
    const err = relError(result, c.final);
    assert.ok(err < TOLERANCE, `${label(c)}: relative error ${err}`);
    worst[c.scheduler] = Math.max(worst[c.scheduler] ?? 0, err);
  }
  console.log('  max relative error per scheduler:', Object.entries(worst).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', '));
});

test('without diffusers\' grid, DDIM and PNDM step to the next sigma: diffusers exactly unless spacing is uneven', async () => {
  for (const c of refs.cases) {
    if (!['ddim', 'ddim_eta0.5', 'pndm', 'pndm_prk'].includes(c.scheduler)) continue;
    const { result } = await run(c, false);
    const err = relError(result, c.final);
    // Trailing spacing with 7 steps is uneven (999, 856, 713, ...): diffusers steps 999 -> 857.
    const uneven = c.timestepSpacing === 'trailing' && c.steps === 7;
    if (uneven) console.log(`  ${label(c)} without inferenceSteps: ${err.toExponential(1)}`);
    if (uneven) assert.ok(err > TOLERANCE, `${label(c)}: ${err} should show diffusers' uneven stepping`);
    else assert.ok(err < TOLERANCE, `${label(c)}: relative error ${err}`);
  }
});

test('the lcm schedule is LCMScheduler.set_timesteps (original_inference_steps 50)', () => {
  const model = discreteSchedule(SD15);
  for (const [steps, timesteps] of Object.entries(refs.lcmTimesteps)) {
    assert.equal(lcmTimesteps(model, Number(steps)), timesteps, `${steps} steps`);
    const sigmas = SCHEDULES.lcm(model, Number(steps), SAMPLERS.lcm).sigmas;
    assert.equal(Array.from(sigmas), [...timesteps.map((t) => model.sigmas[t]), 0]);
  }
  assert.throws(() => lcmTimesteps(model, 51), /at most 50/);
});

test('pndm_prk refuses fewer than 4 steps, as diffusers cannot run them', async () => {
  const model = discreteSchedule(SD15);
  const sigmas = Float64Array.from([model.sigmas[667], model.sigmas[334], model.sigmas[1], 0]);
  let message = '';
  try {
    await SAMPLERS.pndm_prk.fn(dummyDenoiser(model, []), new Float32Array(4), sigmas, { noise: () => new Float32Array(4) });
  } catch (e) {
    message = (e as Error).message;
  }
  assert.match(message, /at least 4 steps/);
});

test.run();
