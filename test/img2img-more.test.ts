import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadImage } from '../src/image/load-image.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel, type ModelBundle } from '../src/pipeline/load.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { TINY_SD } from './helpers/cli.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';
import { referenceRequest, type ReferenceCase } from './helpers/reference-case.js';

/**
 * img2img with the samplers test/img2img.test.ts leaves out, against diffusers'
 * StableDiffusionImg2ImgPipeline (tools/make_img2img_more_refs.py), at strengths where diffusers'
 * cut `timesteps[t_start * order:]` meets repeated or interleaved timesteps (Heun, KDPM2, PNDM),
 * t_start = 1, and steps * strength off an integer. From the seed alone; the stochastic samplers'
 * step noise comes from the same generator. Same tolerance as img2img: 1e-5 of the largest latent.
 */
const LATENT_TOLERANCE = 1e-5;

interface Case extends ReferenceCase {
  strength: number;
  init_image: string;
  final_latents: { file: string };
}

const DIR = join(FIXTURES, 'img2img-more');
const manifest = readJson<{ img2img: Case[]; inputs: Record<string, { init_image: string }> }>(join(DIR, 'cases.json'));

const s = suite('img2img = diffusers, more samplers and strengths');
let model: ModelBundle;
s.before(async () => {
  model = await loadModel(TINY_SD, { device: 'cpu', withEncoder: true });
});
s.after(async () => {
  await model.release();
});

for (const c of manifest.img2img) {
  s(`${c.name}: ${c.num_inference_steps} steps at strength ${c.strength}`, async () => {
    const image = (await loadImage(join(DIR, manifest.inputs[c.init_image]!.init_image))).rgb;
    const request = referenceRequest(c, { init: { image, strength: c.strength, latents: 'sample' } });
    const result = await generate({ ...model, schedule: discreteSchedule(c.scheduler.config) }, request);
    const err = compare(result.latents, readF32(join(DIR, c.final_latents.file)));
    assert.ok(err.relToMax < LATENT_TOLERANCE, `final latents off by ${err.maxAbs} (${err.relToMax} of max)`);
  });
}

s.run();
