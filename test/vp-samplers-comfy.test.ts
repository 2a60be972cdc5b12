/**
 * ComfyUI's uni_pc / uni_pc_bh2 against ComfyUI's own sample_unipc run on a dummy UNet
 * (test/fixtures/vp-samplers/comfy-unipc.json, from tools/make_vp_refs.py with COMFYUI_DIR set):
 * karras and simple schedules, epsilon and v models, 5, 7, 10 and 25 steps.
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeDenoiser } from '../src/schedulers/denoiser.js';
import { discreteSchedule } from '../src/schedulers/model.js';
import { SAMPLERS, planSampling, resolveSampler, type ScheduleId } from '../src/schedulers/index.js';

interface Case {
  variant: 'bh1' | 'bh2';
  predictionType: string;
  schedule: ScheduleId;
  steps: number;
  sigmas: number[];
  final: number[];
}
interface Refs {
  initLatents: number[];
  cases: Case[];
}

const refs: Refs = JSON.parse(readFileSync(new URL('../../test/fixtures/vp-samplers/comfy-unipc.json', import.meta.url), 'utf8'));

/** stable-diffusion-v1-5's training schedule (the fields ComfyUI's model sampling reads). */
const SD15 = { beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, num_train_timesteps: 1000 };

/** Float32 on both sides over whole loops: ~1e-6 of the latents' scale; 1e-5 leaves margin. */
const TOLERANCE = 1e-5;

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

/** The dummy UNet the references ran (tools/make_vp_refs.py). */
const dummyUnet = async (xIn: Float32Array, t: number) => Float32Array.from(xIn, (v) => Math.tanh(0.5 * v + 0.1 * Math.sin(t / 100)));

async function run(c: Case, sampler = SAMPLERS[c.variant === 'bh1' ? 'uni_pc' : 'uni_pc_bh2'].fn) {
  const model = discreteSchedule({ ...SD15, prediction_type: c.predictionType });
  const denoise = makeDenoiser(model, dummyUnet);
  const sigmas = Float64Array.from(c.sigmas);
  const x = Float32Array.from(refs.initLatents, (v) => v * Math.fround(Math.sqrt(Math.fround(1 + Math.fround(sigmas[0] * sigmas[0])))));
  return sampler(denoise, x, sigmas, { noise: () => assert.unreachable('uni_pc draws no noise') as never });
}

test('ComfyUI uni_pc and uni_pc_bh2 match sample_unipc', async () => {
  let worst = 0;
  for (const c of refs.cases) {
    const err = relError(await run(c), c.final);
    assert.ok(err < TOLERANCE, `${c.variant} ${c.predictionType} ${c.schedule} ${c.steps} steps: relative error ${err}`);
    worst = Math.max(worst, err);
  }
  console.log(`  max relative error: ${worst.toExponential(1)}`);
});

test('as the CLI plans them (--sampler uni_pc|uni_pc_bh2): the same sigmas, start and result', async () => {
  for (const c of refs.cases) {
    const model = discreteSchedule({ ...SD15, prediction_type: c.predictionType });
    const id = c.variant === 'bh1' ? ('uni_pc' as const) : ('uni_pc_bh2' as const);
    const plan = planSampling({ model, sampler: id, schedule: c.schedule, steps: c.steps, discardPenultimateSigma: false });
    assert.ok(relError(plan.sigmas, c.sigmas) < 1e-6, `${id} ${c.schedule} sigmas`);
    const x = plan.startLatents(Float32Array.from(refs.initLatents));
    const out = await plan.sampler(plan.denoiser(dummyUnet), x, plan.sigmas, { noise: () => assert.unreachable('uni_pc draws no noise') as never });
    assert.ok(relError(out, c.final) < TOLERANCE, `${id} ${c.predictionType} ${c.schedule} ${c.steps}`);
  }
  assert.is(resolveSampler('UniPC bh2 (ComfyUI)').sampler, 'uni_pc_bh2');
});

test("diffusers' unipc is a different sampler on the same sigmas", async () => {
  const c = refs.cases.find((k) => k.variant === 'bh2' && k.schedule === 'karras' && k.steps === 10) as Case;
  assert.ok(relError(await run(c, SAMPLERS.unipc.fn), c.final) > 1e-3);
});

test.run();
