import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadImage } from '../src/image/load-image.js';
import { guessScales, unitRuns } from '../src/pipeline/control.js';
import { depthToGrey } from '../src/pipeline/depth-control.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel, type ModelBundle } from '../src/pipeline/load.js';
import type { ControlUnit, GenerationRequest } from '../src/pipeline/types.js';
import { UsageError } from '../src/errors.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { TINY_SD } from './helpers/cli.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';
import { assembleModel, type AssembledModel } from './helpers/assemble-model.js';
import { tinyRequest } from './helpers/tiny-model.js';
import { referenceRequest, type ReferenceCase } from './helpers/reference-case.js';

/**
 * ControlNet against diffusers' StableDiffusionControlNetPipeline and …ControlNetImg2ImgPipeline on
 * the same weights (tools/make_controlnet_fixture.py: a UNet taking the residuals and its
 * ControlNet, tiny-sd's text encoder and VAE), from the seed alone: conditioning scales, guidance
 * start/end, guess mode, two units, a batch under CFG with a control picture of another size. The
 * usual 1e-5-of-max tolerance of the pipeline references.
 */
const LATENT_TOLERANCE = 1e-5;

interface Ref {
  file: string;
  shape: number[];
}

interface Case extends ReferenceCase {
  task: 'txt2img' | 'img2img';
  guess_mode: boolean;
  units: { image: string; scale: number; start: number; end: number }[];
  controlnet_keep: number[][];
  unet_timesteps: number[];
  strength?: number;
  init_image?: string;
  final_latents: Ref;
}

const DIR = join(FIXTURES, 'controlnet-pipeline');
const CONTROLNET = join(FIXTURES, 'tiny-sd-control', 'controlnet');
const manifest = readJson<{ cases: Case[] }>(join(DIR, 'cases.json'));
const picture = async (file: string) => (await loadImage(join(DIR, file))).rgb;

async function requestFor(c: Case): Promise<GenerationRequest> {
  const control: ControlUnit[] = await Promise.all(
    c.units.map(async (u) => ({ model: CONTROLNET, image: await picture(u.image), weight: u.scale, start: u.start, end: u.end, guess: c.guess_mode })),
  );
  const init = c.init_image ? { init: { image: await picture(c.init_image), strength: c.strength!, latents: 'sample' as const } } : {};
  return referenceRequest(c, { control, ...init });
}

const rules = suite('ControlNet: diffusers keep mask and guess-mode scales');
rules('unitRuns reproduces every case’s controlnet_keep', () => {
  for (const c of manifest.cases) {
    const calls = c.controlnet_keep.length;
    const got = c.controlnet_keep.map((_, i) => c.units.map((u) => (unitRuns(u, i, calls) ? 1 : 0)));
    assert.equal(got, c.controlnet_keep, c.name);
  }
});
rules('guess mode scales: torch.logspace(-1, 0, 13) for SD 1.5’s 12 + 1 residuals', () => {
  const s = guessScales(13);
  assert.is(s[0], Math.fround(0.1));
  assert.is(s[12], 1);
  assert.ok(Math.abs(s[6]! - Math.fround(10 ** -0.5)) < 1e-7);
});
rules('a depth map as sd-webui-controlnet’s depth picture: (d − min) / (max − min) × 255, truncated; flat refused', () => {
  const grey = depthToGrey({ values: new Float32Array([2, 4, 6, 3.5, 5.99, 2.001]), width: 3, height: 2 });
  assert.equal([...grey.data], [0, 127, 255, 95, 254, 0]);
  assert.is(grey.channels, 1);
  assert.throws(() => depthToGrey({ values: new Float32Array(4).fill(7), width: 2, height: 2 }), (err: unknown) => err instanceof UsageError && /flat/.test((err as Error).message));
});
rules.run();

const pipeline = suite('ControlNet = diffusers StableDiffusionControlNet(Img2Img)Pipeline');
let model: AssembledModel;
let bundle: ModelBundle;
pipeline.before(async () => {
  model = assembleModel('tiny-sd-control');
  bundle = await loadModel(model.dir, { device: 'cpu', withEncoder: true, controlnets: [CONTROLNET] });
});
pipeline.after(async () => {
  await bundle.release();
  model.remove();
});

for (const c of manifest.cases) {
  pipeline(`${c.name}: final latents`, async () => {
    const result = await generate({ ...bundle, schedule: discreteSchedule(c.scheduler.config) }, await requestFor(c));
    const stats = compare(result.latents, readF32(join(DIR, c.final_latents.file)));
    assert.ok(stats.relToMax < LATENT_TOLERANCE, `${c.name}: max abs error ${stats.maxAbs} (${stats.relToMax} of max)`);
  });
}

pipeline('the residuals matter: without control the same request paints other latents', async () => {
  const c = manifest.cases[0]!;
  const request = await requestFor(c);
  delete request.control;
  const result = await generate({ ...bundle, schedule: discreteSchedule(c.scheduler.config) }, request);
  const stats = compare(result.latents, readF32(join(DIR, c.final_latents.file)));
  assert.ok(stats.relToMax > 1e-2, `only ${stats.relToMax} of max apart`);
});

const isUsage = (pattern: RegExp) => (err: unknown) => err instanceof UsageError && pattern.test((err as Error).message);

pipeline('bad units and models without residual inputs: one usage error each', async () => {
  const base = await requestFor(manifest.cases[0]!);
  const unit = base.control![0]!;
  const plain = await loadModel(TINY_SD, { device: 'cpu', controlnets: [CONTROLNET] });
  try {
    const cases: [ModelBundle, GenerationRequest, RegExp][] = [
      [plain, { ...tinyRequest(), control: [unit] }, /takes no ControlNet residuals/],
      [bundle, { ...base, control: [{ ...unit, model: '/nowhere' }] }, /was not loaded/],
      [bundle, { ...base, control: [{ ...unit, start: 0.6, end: 0.4 }] }, /must be below end/],
      [bundle, { ...base, control: [{ ...unit, end: 1.5 }] }, /0…1/],
      [bundle, { ...base, control: [{ ...unit, weight: Number.NaN }] }, /finite/],
    ];
    for (const [b, request, pattern] of cases) {
      await generate(b, request).then(
        () => assert.unreachable(`ran: ${String(pattern)}`),
        (err: unknown) => assert.ok(isUsage(pattern)(err), String(err)),
      );
    }
  } finally {
    await plain.release();
  }
});

pipeline.run();
