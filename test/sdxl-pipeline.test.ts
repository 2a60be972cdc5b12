import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { UsageError } from '../src/errors.js';
import { loadImage } from '../src/image/load-image.js';
import { encodeConditioning } from '../src/pipeline/conditioning.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel, type ModelBundle } from '../src/pipeline/load.js';
import { timeIds } from '../src/pipeline/micro-conditioning.js';
import type { GenerationRequest } from '../src/pipeline/types.js';
import { SAMPLER_IDS, SCHEDULE_IDS, discreteSchedule } from '../src/schedulers/index.js';
import { findEntry, loadRegistry } from '../src/models/registry.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';
import { referenceRequest, type ReferenceCase } from './helpers/reference-case.js';
import { assembleSdxl, type AssembledModel } from './helpers/assemble-model.js';

/**
 * SDXL end to end against diffusers' StableDiffusionXLPipeline, StableDiffusionXLImg2ImgPipeline and
 * StableDiffusionXLInpaintPipeline (PyTorch) on the tiny SDXL of tools/make_sdxl_fixture.py: two
 * text encoders joined per token, the pooled text and micro-conditioning time ids as the UNet's
 * added conditioning, SDXL's VAE scaling. The graphs agree with torch to ~2e-6 per call
 * (test/fixtures/sdxl-pipeline/cases.json), so as for SD 1.x the final latents are held to 1e-5 of
 * their largest magnitude and the 8-bit images (diffusers' own PNGs) to one level on at most 1% of samples.
 */
const LATENT_TOLERANCE = 1e-5;
const DIR = join(FIXTURES, 'sdxl-pipeline');

interface Blob {
  file: string;
  shape: number[];
}

interface Case extends ReferenceCase {
  kind: 'txt2img' | 'img2img' | 'inpaint' | 'refiner';
  clip_skip?: number | null;
  strength?: number;
  switch?: number;
  final_latents: Blob;
  png: string[];
}

interface CondRef {
  name: string;
  clip_skip: number | null;
  prompt_embeds: Blob;
  negative_prompt_embeds: Blob;
  pooled: Blob;
  negative_pooled: Blob;
}

interface Manifest {
  onnx_vs_torch_max_abs: Record<string, number>;
  init_image: string;
  mask_image: string;
  conditioning: CondRef[];
  txt2img: Case[];
  img2img: Case[];
  inpaint: Case[];
  refiner: Case[];
}

const manifest = readJson<Manifest>(join(DIR, 'cases.json'));

/** The case's request; its scheduler config is the model's plus the overrides a diffusers user passes. */
function requestFor(c: Case, extra: Partial<GenerationRequest> = {}): GenerationRequest {
  return referenceRequest(c, {
    // diffusers reads a plain 77-token window; A1111's reading of these short prompts is the same.
    promptWeighting: 'none',
    ...extra,
  });
}

async function assertMatches(bundle: ModelBundle, c: Case, request: GenerationRequest): Promise<void> {
  const result = await generate({ ...bundle, schedule: discreteSchedule(c.scheduler.config) }, request);
  const latents = compare(result.latents, readF32(join(DIR, c.final_latents.file)));
  assert.ok(latents.relToMax < LATENT_TOLERANCE, `final latents off by ${latents.maxAbs} (${latents.relToMax} of max)`);
  for (const [i, img] of result.images.entries()) {
    const expected = (await loadImage(join(DIR, c.png[i]!))).rgb.data;
    let worst = 0;
    let off = 0;
    img.image.data.forEach((v, j) => {
      const d = Math.abs(v - expected[j]!);
      worst = Math.max(worst, d);
      if (d > 0) off++;
    });
    assert.ok(worst <= 1, `image ${i} differs by ${worst} levels`);
    assert.ok(off <= img.image.data.length / 100, `image ${i}: ${off} of ${img.image.data.length} samples off by one`);
  }
}

const Cond = suite('SDXL conditioning = diffusers encode_prompt');
let base: ModelBundle;
let models: AssembledModel[] = [];
Cond.before(async () => {
  base = await loadModel(join(FIXTURES, 'tiny-sdxl'), { device: 'cpu', withEncoder: true });
});
Cond.after(async () => {
  await base.release();
});

for (const ref of manifest.conditioning.filter((r) => r.name.startsWith('base'))) {
  Cond(`${ref.name}: prompt embeds (CLIP-L | bigG penultimate states) and pooled text_embeds`, async () => {
    const bundle = ref.clip_skip ? await loadModel(join(FIXTURES, 'tiny-sdxl'), { device: 'cpu', clipSkip: ref.clip_skip + 1, clipSkipReading: 'none' }) : base;
    try {
      const ids = new Float32Array(6);
      for (const [prompt, embeds, pooled] of [
        ['a photo of an astronaut riding a horse on mars', ref.prompt_embeds, ref.pooled],
        ['blurry, low quality', ref.negative_prompt_embeds, ref.negative_pooled],
      ] as const) {
        const cond = (await encodeConditioning(bundle, prompt, 10, 'none', ids)).at(0);
        assert.equal([cond.tokens, cond.width], embeds.shape);
        const e = compare(cond.data, readF32(join(DIR, embeds.file)));
        assert.ok(e.relToMax < 1e-5, `${prompt}: embeds off by ${e.relToMax} of max`);
        const p = compare(cond.added!.textEmbeds, readF32(join(DIR, pooled.file)));
        assert.ok(p.relToMax < 1e-5, `${prompt}: pooled off by ${p.relToMax} of max`);
        // A1111's reading of a short unweighted prompt is the same window.
        const a1111 = (await encodeConditioning(bundle, prompt, 10, 'a1111', ids)).at(0);
        assert.ok(compare(a1111.data, cond.data).maxAbs === 0 && compare(a1111.added!.textEmbeds, cond.added!.textEmbeds).maxAbs === 0);
      }
    } finally {
      if (bundle !== base) await bundle.release();
    }
  });
}

Cond('time ids: sizes and crop for a base UNet, aesthetic scores for a refiner', () => {
  const request = { width: 48, height: 32 };
  assert.equal([...timeIds(6, request, false)], [32, 48, 0, 0, 32, 48]);
  assert.equal([...timeIds(6, { ...request, microConditioning: { originalSize: [64, 96], cropTopLeft: [4, 8], negativeTargetSize: [16, 16] } }, true)], [64, 96, 4, 8, 16, 16]);
  assert.equal([...timeIds(5, request, false)], [32, 48, 0, 0, 6]);
  assert.equal([...timeIds(5, { ...request, microConditioning: { negativeAestheticScore: 1 } }, true)], [32, 48, 0, 0, 1]);
  assert.throws(() => timeIds(4, request, false), /6 \(base\) or 5 \(refiner\)/);
});

Cond.run();

const Txt = suite('SDXL txt2img = diffusers StableDiffusionXLPipeline');
let txtBundle: ModelBundle;
Txt.before(async () => {
  txtBundle = await loadModel(join(FIXTURES, 'tiny-sdxl'), { device: 'cpu' });
});
Txt.after(async () => {
  await txtBundle.release();
});

for (const c of manifest.txt2img) {
  Txt(`${c.name}: ${c.scheduler.class} ${JSON.stringify(c.scheduler.overrides)}, ${c.num_inference_steps} steps, CFG ${c.guidance_scale}`, async () => {
    if (c.clip_skip) {
      const bundle = await loadModel(join(FIXTURES, 'tiny-sdxl'), { device: 'cpu', clipSkip: c.clip_skip + 1, clipSkipReading: 'none' });
      try {
        await assertMatches(bundle, c, requestFor(c));
      } finally {
        await bundle.release();
      }
      return;
    }
    await assertMatches(txtBundle, c, requestFor(c));
  });
}

Txt("the registry's SDXL-Turbo defaults (sampler, schedule, CFG) on a Turbo scheduler config reproduce diffusers' Turbo settings", async () => {
  const turbo = findEntry(loadRegistry(), 'sdxl-turbo')!.recommended;
  const c = manifest.txt2img.find((k) => k.name === 'turbo-4-steps')!;
  assert.ok(c.scheduler.config.timestep_spacing === 'trailing' && c.guidance_scale === 0);
  assert.ok(turbo.steps! >= 1 && turbo.steps! <= 4, 'SDXL-Turbo takes 1-4 steps');
  const sampler = SAMPLER_IDS.find((id) => id === turbo.sampler);
  const schedule = SCHEDULE_IDS.find((id) => id === turbo.schedule);
  assert.ok(sampler && schedule, `${turbo.sampler} / ${turbo.schedule} are diffuse's ids`);
  const request = requestFor(c, { sampler, schedule, cfgScale: turbo.cfg! });
  await assertMatches(txtBundle, c, request);
});

Txt('the references cover five samplers or more', () => {
  assert.ok(new Set(manifest.txt2img.map((c) => c.scheduler.class)).size >= 5);
});

Txt.run();

const Img = suite('SDXL img2img and inpaint = diffusers');
let imgBundle: ModelBundle;
let inpaintBundle: ModelBundle;
Img.before(async () => {
  imgBundle = await loadModel(join(FIXTURES, 'tiny-sdxl'), { device: 'cpu', withEncoder: true });
  const inpaint = assembleSdxl('tiny-sdxl-inpaint');
  models.push(inpaint);
  inpaintBundle = await loadModel(inpaint.dir, { device: 'cpu', withEncoder: true });
});
Img.after(async () => {
  await imgBundle.release();
  await inpaintBundle.release();
  for (const m of models) m.remove();
  models = [];
});

for (const c of [...manifest.img2img, ...manifest.inpaint]) {
  Img(`${c.kind} ${c.name}: ${c.scheduler.class}, strength ${c.strength}`, async () => {
    const image = (await loadImage(join(DIR, manifest.init_image))).rgb;
    const mask = (await loadImage(join(DIR, manifest.mask_image))).rgb;
    const values = new Float32Array(c.width * c.height).map((_, i) => mask.data[i * 3]! / 255);
    const request = requestFor(c, {
      init: { image, strength: c.strength!, latents: 'sample' },
      ...(c.kind === 'inpaint' ? { mask: { values } } : {}),
    });
    await assertMatches(c.kind === 'inpaint' ? inpaintBundle : imgBundle, c, request);
  });
}

Img.run();

const Refine = suite('SDXL base + refiner = diffusers denoising_end / denoising_start');
let refinerBase: ModelBundle;
Refine.before(async () => {
  const refinerModel = assembleSdxl('tiny-sdxl-refiner');
  models.push(refinerModel);
  const refiner = await loadModel(refinerModel.dir, { device: 'cpu' });
  refinerBase = { ...(await loadModel(join(FIXTURES, 'tiny-sdxl'), { device: 'cpu' })), refiner };
});
Refine.after(async () => {
  await refinerBase.refiner!.release();
  await refinerBase.release();
  for (const m of models) m.remove();
  models = [];
});

for (const c of manifest.refiner) {
  Refine(`${c.name}: ${c.scheduler.class} ${JSON.stringify(c.scheduler.overrides)}, switch at ${c.switch}`, async () => {
    await assertMatches(refinerBase, c, requestFor(c, { refinerSwitch: c.switch! }));
  });
}

Refine('a refiner switch without a refiner is refused in one line', async () => {
  const { refiner: _, ...alone } = refinerBase;
  const error = await generate(alone, requestFor(manifest.refiner[0]!, { refinerSwitch: 0.8 })).catch((e: Error) => e);
  assert.instance(error, UsageError);
  assert.match((error as Error).message, /needs a refiner model: pass --refiner/);
});

Refine.run();
