import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { generate } from '../src/pipeline/generate.js';
import { guidanceScaleEmbedding } from '../src/pipeline/guidance-embedding.js';
import { guidanceCondition } from '../src/pipeline/lcm.js';
import { loadModel, type ModelBundle } from '../src/pipeline/load.js';
import { readFileSync } from 'node:fs';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';
import { assembleModel, type AssembledModel } from './helpers/assemble-model.js';

/**
 * Latent Consistency Models against diffusers' LatentConsistencyModelPipeline (PyTorch) on the
 * tiny LCM (tools/make_lcm_fixture.py): tiny-sd's text encoder and VAE with a UNet that takes the
 * guidance-scale embedding as `timestep_cond` and runs without classifier-free guidance.
 */

interface Blob {
  file: string;
  shape: number[];
}

interface EmbeddingRef {
  dim: number;
  guidance_scales: number[];
  embedding: Blob;
}

interface Case {
  name: string;
  prompt: string;
  guidance_scale: number;
  num_inference_steps: number;
  width: number;
  height: number;
  num_images_per_prompt: number;
  seed: number;
  w_embedding: Blob;
  final_latents: Blob;
  image: Blob;
}

const DIR = join(FIXTURES, 'lcm-pipeline');
const manifest = readJson<{ guidance_embedding: EmbeddingRef[]; txt2img: Case[] }>(join(DIR, 'cases.json'));

/** The float32 spacing at x: one rounding of a float32 result can move it by this much. */
function ulp(x: number): number {
  return 2 ** (Math.floor(Math.log2(Math.abs(x))) - 23);
}

/**
 * How far entry i of the embedding of w may be from torch's. torch's exp/sin/cos (MKL VML here)
 * round within ~0.52 ulp, we round correctly, so they can disagree by one rounding near a tie:
 * of the frequency exp(-lane * step), which the angle w * 1000 * frequency magnifies; then the
 * angle's own rounding may land one ulp apart; then sin/cos (slope at most 1, values in [-1, 1])
 * one more rounding.
 */
function oneRoundingBound(w: number, dim: number, i: number): number {
  const half = Math.floor(dim / 2);
  const step = Math.fround(Math.fround(Math.log(10000)) / (half - 1));
  const scaled = Math.abs(Math.fround(Math.fround(w) * 1000));
  const frequency = Math.fround(Math.exp(Math.fround((i % half) * -step)));
  const angle = Math.fround(scaled * frequency);
  return scaled * ulp(frequency) + (angle > 0 ? ulp(angle) : 0) + 2 ** -23;
}

/** Asserts every entry is within one rounding of torch's; returns how many are bit-identical. */
function assertLikeTorch(got: Float32Array, want: Float32Array, w: number, dim: number): number {
  let identical = 0;
  got.forEach((v, i) => {
    if (v === want[i]) {
      identical++;
      return;
    }
    const bound = oneRoundingBound(w, dim, i % dim);
    assert.ok(Math.abs(v - want[i]!) <= bound, `w=${w} entry ${i}: ${v} vs torch ${want[i]} (bound ${bound})`);
  });
  return identical;
}

const Embedding = suite('guidance-scale embedding = diffusers get_guidance_scale_embedding');

for (const ref of manifest.guidance_embedding) {
  Embedding(`width ${ref.dim}, guidance scales ${ref.guidance_scales.join(', ')}`, () => {
    const expected = readF32(join(DIR, ref.embedding.file));
    let identical = 0;
    ref.guidance_scales.forEach((scale, row) => {
      const got = guidanceScaleEmbedding(scale - 1, ref.dim);
      assert.is(got.length, ref.dim);
      identical += assertLikeTorch(got, expected.subarray(row * ref.dim, (row + 1) * ref.dim), scale - 1, ref.dim);
    });
    // Mostly bit-identical: the formula is torch's, rounding for rounding, but for those last bits.
    const total = ref.dim * ref.guidance_scales.length;
    assert.ok(identical >= 0.9 * total, `${identical} of ${total} values bit-identical to torch`);
  });
}

Embedding('an odd width is zero-padded; widths under 4 have no frequencies to spread', () => {
  assert.is(guidanceScaleEmbedding(7, 7)[6], 0);
  assert.throws(() => guidanceScaleEmbedding(7, 3), /at least 4/);
});

Embedding.run();

/**
 * The ONNX graphs agree with torch to ~1e-6 per call (test/fixtures/tiny-lcm/README.md); as in
 * test/pipeline.test.ts, a sampling loop compounds that, so final latents are held to 1e-5 of their
 * largest magnitude and the 8-bit images to at most one level on at most 1% of the samples.
 */
const LATENT_TOLERANCE = 1e-5;

const E2E = suite('LCM txt2img = diffusers LatentConsistencyModelPipeline');
let model: AssembledModel;
let bundle: ModelBundle;
E2E.before(async () => {
  model = assembleModel('tiny-lcm');
  bundle = await loadModel(model.dir, { device: 'cpu' });
});
E2E.after(async () => {
  await bundle.release();
  model.remove();
});

E2E('the LCM UNet declares timestep_cond; an ordinary UNet does not', async () => {
  assert.is(bundle.unet.timestepCondDim, 32);
  assert.is(guidanceCondition({ timestepCondDim: undefined }, 7.5, 1), undefined);
  const sd = await loadModel(TINY_SD, { device: 'cpu' });
  try {
    assert.is(sd.unet.timestepCondDim, undefined);
    assert.is(guidanceCondition(sd.unet, 7.5, 1), undefined);
  } finally {
    await sd.release();
  }
});

for (const c of manifest.txt2img) {
  E2E(`${c.name}: ${c.num_inference_steps} steps, guidance ${c.guidance_scale}, ${c.width}x${c.height}, batch ${c.num_images_per_prompt}`, async () => {
    const condition = guidanceCondition(bundle.unet, c.guidance_scale, c.num_images_per_prompt)!;
    const dim = bundle.unet.timestepCondDim!;
    assert.is(condition.length, dim * c.num_images_per_prompt);
    assertLikeTorch(condition, readF32(join(DIR, c.w_embedding.file)), c.guidance_scale - 1, dim);

    // Every UNet call must be one pass over the prompt's batch: no unconditional half.
    const batches: number[] = [];
    const predict = bundle.unet.predict.bind(bundle.unet);
    bundle.unet.predict = (sample, dims, ...rest) => {
      batches.push(dims[0]);
      return predict(sample, dims, ...rest);
    };
    try {
      const result = await generate(bundle, {
        prompt: c.prompt,
        // LatentConsistencyModelPipeline has no negative prompt; a non-empty one must change nothing.
        negativePrompt: 'blurry, low quality',
        steps: c.num_inference_steps,
        cfgScale: c.guidance_scale,
        cfgRescale: 0,
        seed: c.seed,
        rng: 'cpu',
        seedMode: 'diffusers',
        sampler: 'lcm',
        schedule: 'normal',
        width: c.width,
        height: c.height,
        batchSize: c.num_images_per_prompt,
      });
      assert.equal(batches, new Array(c.num_inference_steps).fill(c.num_images_per_prompt));
      const latents = compare(result.latents, readF32(join(DIR, c.final_latents.file)));
      assert.ok(latents.relToMax < LATENT_TOLERANCE, `final latents off by ${latents.maxAbs} (${latents.relToMax} of max)`);
      const expected = readF32(join(DIR, c.image.file));
      result.images.forEach((img, i) => {
        const size = img.image.data.length;
        let worst = 0;
        let off = 0;
        img.image.data.forEach((v, j) => {
          const d = Math.abs(v - Math.round(expected[i * size + j]! * 255));
          worst = Math.max(worst, d);
          if (d > 0) off++;
        });
        assert.ok(worst <= 1, `image ${i} differs by ${worst} levels`);
        assert.ok(off <= size / 100, `image ${i}: ${off} of ${size} samples off by one`);
      });
    } finally {
      bundle.unet.predict = predict;
    }
  });
}

E2E('the CLI picks the lcm sampler, 4 steps and embedded guidance for an LCM folder', () => {
  const out = tempDir();
  const r = diffuse(['txt2img', 'a lighthouse', '--model', model.dir, '--seed', '3', '--quiet', '-o', join(out, 'lcm.png')]);
  assert.is(r.status, 0, r.stderr);
  const meta = readGenerationMetadata(readFileSync(join(out, 'lcm.png')));
  assert.ok(meta.kind === 'a1111');
  if (meta.kind !== 'a1111') return;
  assert.is(meta.parameters.sampler, 'LCM');
  assert.is(meta.parameters.steps, 4);
  assert.is(meta.parameters.cfgScale, 8);
});

E2E.run();
