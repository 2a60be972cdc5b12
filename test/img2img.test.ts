import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadImage } from '../src/image/load-image.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel, type ModelBundle } from '../src/pipeline/load.js';
import type { GenerationRequest } from '../src/pipeline/types.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { TINY_SD } from './helpers/cli.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';
import { assembleModel } from './helpers/assemble-model.js';
import { referenceRequest, type ReferenceCase } from './helpers/reference-case.js';

/**
 * img2img and inpaint against diffusers' StableDiffusionImg2ImgPipeline and
 * StableDiffusionInpaintPipeline on the same weights, from the seed alone: the VAE posterior
 * sample, the noise and (inpaint) the masked image's posterior come from the one generator in
 * diffusers' order. Same tolerance as txt2img (test/pipeline.test.ts): 1e-5 of the largest latent.
 */
const LATENT_TOLERANCE = 1e-5;

interface Case extends ReferenceCase {
  kind: 'img2img' | 'inpaint' | 'inpaint-legacy';
  strength: number;
  init_image: string;
  final_latents: { file: string };
}

const DIR = join(FIXTURES, 'pipeline');
const manifest = readJson<{ img2img: Case[]; inpaint: Case[]; inputs: Record<string, { init_image: string; mask: string }> }>(join(DIR, 'cases.json'));

async function requestFor(c: Case): Promise<GenerationRequest> {
  const input = manifest.inputs[c.init_image]!;
  const image = (await loadImage(join(DIR, input.init_image))).rgb;
  const maskRaster = (await loadImage(join(DIR, input.mask))).rgb;
  const values = new Float32Array(c.width * c.height).map((_, i) => maskRaster.data[i * 3]! / 255);
  return referenceRequest(c, {
    init: { image, strength: c.strength, latents: 'sample' },
    ...(c.kind === 'img2img' ? {} : { mask: { values } }),
  });
}

const s = suite('img2img and inpaint = diffusers');
let plain: ModelBundle;
let inpainting: ModelBundle;
let dispose: () => void;
s.before(async () => {
  plain = await loadModel(TINY_SD, { device: 'cpu', withEncoder: true });
  const model = assembleModel('tiny-sd-inpaint');
  dispose = model.remove;
  inpainting = await loadModel(model.dir, { device: 'cpu', withEncoder: true });
});
s.after(async () => {
  await plain.release();
  await inpainting.release();
  dispose();
});

// diffusers' legacy inpainting (a 4-channel UNet in the inpaint pipeline) re-noises latents
// after every step; diffuse blends x0 estimates as AUTOMATIC1111 does (src/pipeline/kept-region.ts).
for (const c of [...manifest.img2img, ...manifest.inpaint].filter((x) => x.kind !== 'inpaint-legacy')) {
  s(`${c.kind} ${c.name}`, async () => {
    const bundle = c.kind === 'img2img' ? plain : inpainting;
    const model = { ...bundle, schedule: discreteSchedule(c.scheduler.config) };
    const result = await generate(model, await requestFor(c));
    const err = compare(result.latents, readF32(join(DIR, c.final_latents.file)));
    assert.ok(err.relToMax < LATENT_TOLERANCE, `final latents off by ${err.maxAbs} (${err.relToMax} of max)`);
  });
}

s('strength 0 is the VAE round trip: no step runs', async () => {
  const c = manifest.img2img[0]!;
  let steps = 0;
  const request = { ...(await requestFor(c)), init: { ...(await requestFor(c)).init!, strength: 0, latents: 'mean' as const } };
  const a = await generate(plain, request, (e) => (e.kind === 'step' ? steps++ : undefined));
  const b = await generate(plain, { ...request, seed: request.seed + 1 });
  assert.is(steps, 0);
  assert.equal(a.images[0]!.image.data, b.images[0]!.image.data, 'the seed plays no part');
});

s('inpaint keeps every unmasked pixel exactly with an overlay', async () => {
  for (const bundle of [plain, inpainting]) {
    const base = await requestFor(manifest.inpaint[1]!);
    const overlay = base.mask!.values.map((v) => (v >= 0.5 ? 1 : 0));
    const result = await generate(bundle, { ...base, mask: { values: base.mask!.values, overlay } });
    const out = result.images[0]!.image.data;
    const src = base.init!.image.data;
    let kept = 0;
    let changed = 0;
    overlay.forEach((m, p) => {
      for (let ch = 0; ch < 3; ch++) {
        if (m === 0) {
          assert.is(out[p * 3 + ch], src[p * 3 + ch]);
          kept++;
        } else if (out[p * 3 + ch] !== src[p * 3 + ch]) changed++;
      }
    });
    assert.ok(kept > 0 && changed > 0, `kept ${kept}, changed ${changed}`);
  }
});

s.run();
