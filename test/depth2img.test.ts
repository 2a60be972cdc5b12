import { join } from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadImage } from '../src/image/load-image.js';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { depthChannel } from '../src/pipeline/depth-map.js';
import { interpolate } from '../src/image/interpolate.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel, type ModelBundle } from '../src/pipeline/load.js';
import type { DepthMap, GenerationRequest } from '../src/pipeline/types.js';
import { UsageError } from '../src/errors.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';
import { assembleModel, type AssembledModel } from './helpers/assemble-model.js';
import { tinyRequest } from './helpers/tiny-model.js';
import { referenceRequest, type ReferenceCase } from './helpers/reference-case.js';

/**
 * depth2img against diffusers' StableDiffusionDepth2ImgPipeline on the same weights (tiny-sd's
 * text encoder and VAE, a 5-channel depth UNet), from the seed alone, with the depth map given as
 * a float tensor: the same 1e-5-of-max tolerance as img2img. The depth channel itself (torch's
 * bicubic resize, then min/max to [-1, 1]) is checked against what the UNet received.
 */
const LATENT_TOLERANCE = 1e-5;
/** float32 rounding in a 16-tap sum of values up to ~14 (the fixture's depth units). */
const BICUBIC_TOLERANCE = 1e-5;

interface Ref {
  file: string;
  shape: number[];
}

interface Case extends ReferenceCase {
  strength: number;
  num_images_per_prompt: number;
  init_image: string;
  depth_map: Ref;
  unet_depth_channel: Ref;
  final_latents: Ref;
}

const DIR = join(FIXTURES, 'depth-pipeline');
const manifest = readJson<{ depth2img: Case[]; bicubic: { name: string; size: [number, number]; input: Ref; output: Ref }[] }>(join(DIR, 'cases.json'));
const read = (ref: Ref) => readF32(join(DIR, ref.file));

function depthOf(ref: Ref): DepthMap {
  const [, height, width] = ref.shape as [number, number, number];
  return { values: read(ref), width, height };
}

const resize = suite('torch bicubic resize of the depth map');
for (const c of manifest.bicubic) {
  resize(c.name, () => {
    const [, , h, w] = c.input.shape as [number, number, number, number];
    const got = interpolate(read(c.input), [1, 1, h, w], c.size[0], c.size[1], 'bicubic');
    const stats = compare(got, read(c.output));
    assert.ok(stats.maxAbs <= BICUBIC_TOLERANCE, `${c.name}: max abs error ${stats.maxAbs}`);
  });
}
resize.run();

const pipeline = suite('depth2img = diffusers StableDiffusionDepth2ImgPipeline');
let model: AssembledModel;
let depthModel: ModelBundle;
let plain: ModelBundle;
pipeline.before(async () => {
  model = assembleModel('tiny-sd-depth');
  depthModel = await loadModel(model.dir, { device: 'cpu', withEncoder: true });
  plain = await loadModel(TINY_SD, { device: 'cpu', withEncoder: true });
});
pipeline.after(async () => {
  await depthModel.release();
  await plain.release();
  model.remove();
});

async function requestFor(c: Case): Promise<GenerationRequest> {
  const image = (await loadImage(join(DIR, c.init_image))).rgb;
  return referenceRequest(c, { init: { image, strength: c.strength, latents: 'sample' }, depth: depthOf(c.depth_map) });
}

for (const c of manifest.depth2img) {
  pipeline(`${c.name}: the depth channel the UNet reads`, () => {
    const [, , h, w] = c.unet_depth_channel.shape as [number, number, number, number];
    const want = read(c.unet_depth_channel).subarray(0, h * w);
    const stats = compare(depthChannel(depthOf(c.depth_map), h, w), want);
    assert.ok(stats.maxAbs <= BICUBIC_TOLERANCE, `max abs error ${stats.maxAbs}`);
  });
  pipeline(`${c.name}: final latents`, async () => {
    // The reference's scheduler config (diffusers' from_config per scheduler class), as test/img2img.test.ts.
    const result = await generate({ ...depthModel, schedule: discreteSchedule(c.scheduler.config) }, await requestFor(c));
    const stats = compare(result.latents, read(c.final_latents));
    assert.ok(stats.relToMax < LATENT_TOLERANCE, `${c.name}: max abs error ${stats.maxAbs} (${stats.relToMax} of max)`);
  });
}

const isUsage = (pattern: RegExp) => (err: unknown) => err instanceof UsageError && pattern.test((err as Error).message);
const first = manifest.depth2img[0]!;

pipeline('a depth map for an ordinary model, a depth model without a picture, a flat map: refused', async () => {
  const request = await requestFor(first);
  await generate(plain, request).then(
    () => assert.unreachable('a 4-channel UNet took a depth map'),
    (err: unknown) => assert.ok(isUsage(/depth-conditioned model/)(err), String(err)),
  );
  await generate(depthModel, tinyRequest()).then(
    () => assert.unreachable('a depth UNet ran without a picture'),
    (err: unknown) => assert.ok(isUsage(/depth2img/)(err), String(err)),
  );
  const flat = { ...request, depth: { values: new Float32Array(16).fill(3), width: 4, height: 4 } };
  await generate(depthModel, flat).then(
    () => assert.unreachable('a flat depth map ran'),
    (err: unknown) => assert.ok(isUsage(/flat/)(err), String(err)),
  );
  const noEstimator = { ...request };
  delete noEstimator.depth;
  await generate(depthModel, noEstimator).then(
    () => assert.unreachable('ran without depth'),
    (err: unknown) => assert.ok(isUsage(/--depth-map/)(err), String(err)),
  );
});

pipeline.run();

const cli = suite('diffuse depth2img');

cli('writes the image with its depth map hash; refuses a missing map and the default model', () => {
  const assembled = assembleModel('tiny-sd-depth');
  const dir = tempDir();
  try {
    const init = join(DIR, first.init_image);
    const depthPng = join(DIR, readdirSync(DIR).find((f) => f.endsWith('.png') && f.startsWith('depth2img.'))!);
    const out = join(dir, 'd.png');
    const ok = diffuse(['depth2img', 'a room', '-i', init, '--depth-map', depthPng, '--model', assembled.dir, '--steps', '3', '-o', out, '--quiet']);
    assert.is(ok.status, 0, ok.stderr);
    const meta = readGenerationMetadata(readFileSync(out));
    assert.ok(meta.kind === 'a1111' && /^[0-9a-f]{10}$/.test(meta.parameters.extra['Depth map hash'] ?? ''), JSON.stringify(meta));
    for (const [args, pattern] of [
      [['--model', assembled.dir], /--depth-map/],
      [[], /default model .* cannot do depth2img/],
      [['--model', TINY_SD, '--depth-map', depthPng], /depth-conditioned/],
    ] as const) {
      const r = diffuse(['depth2img', 'a room', '-i', init, ...args, '-o', join(dir, 'bad.png')]);
      assert.is(r.status, 2, r.stderr);
      assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, pattern);
    }
    assert.equal(readdirSync(dir), ['d.png']);
  } finally {
    assembled.remove();
  }
});

cli.run();
