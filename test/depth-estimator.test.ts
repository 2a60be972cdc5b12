import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadImage } from '../src/image/load-image.js';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { openSession } from '../src/onnx/session.js';
import { DepthEstimator, processorPixels, processorSize, readProcessorConfig } from '../src/pipeline/depth-estimator.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import { diffuse, tempDir } from './helpers/cli.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';
import { assembleModel } from './helpers/assemble-model.js';
import { tinyRequest } from './helpers/tiny-model.js';

/**
 * The depth estimator of depth models (DPT + DPTImageProcessor) against transformers on a tiny
 * random DPT: the processor's pixel_values exactly (a PIL-exact 8-bit resize, then float32
 * rescale and normalise), the ONNX model's predicted_depth to 2e-5 (ORT vs torch; the fixture
 * measured ≤ 1e-5 on depths up to ~10), and depth2img without a map = depth2img with the
 * estimator's map, as diffusers' pipeline composes them.
 */
const DEPTH_TOLERANCE = 2e-5;

interface Ref {
  file: string;
  shape: number[];
}

const DIR = join(FIXTURES, 'depth-estimator');
const DPT = join(FIXTURES, 'tiny-dpt');
const manifest = readJson<{
  images: { name: string; png: string }[];
  cases: { image: string; processor: string; resized_size: { height: number; width: number }; pixel_values: Ref; predicted_depth: Ref | null }[];
}>(join(DIR, 'cases.json'));
const pngOf = (name: string) => join(DIR, manifest.images.find((i) => i.name === name)!.png);

const processor = suite('DPTImageProcessor = transformers');
for (const c of manifest.cases) {
  processor(`${c.image} with ${c.processor}`, async () => {
    const config = readProcessorConfig(join(DPT, c.processor, 'preprocessor_config.json'));
    const image = (await loadImage(pngOf(c.image))).rgb;
    assert.equal(processorSize(config, image.width, image.height), c.resized_size);
    const pixels = processorPixels(config, image);
    assert.is(compare(pixels.data, readF32(join(DIR, c.pixel_values.file))).maxAbs, 0);
  });
}
processor.run();

const estimator = suite('DPT depth = transformers');
estimator('predicted_depth of every square case', async () => {
  const opened = await openSession(join(DPT, 'depth_estimator', 'model.onnx'), { device: 'cpu' });
  try {
    let checked = 0;
    for (const c of manifest.cases.filter((x) => x.predicted_depth)) {
      const dpt = new DepthEstimator(opened, readProcessorConfig(join(DPT, c.processor, 'preprocessor_config.json')));
      const depth = await dpt.estimate((await loadImage(pngOf(c.image))).rgb);
      assert.equal([depth.height, depth.width], c.predicted_depth!.shape.slice(1));
      const stats = compare(depth.values, readF32(join(DIR, c.predicted_depth!.file)));
      assert.ok(stats.maxAbs <= DEPTH_TOLERANCE, `${c.image}/${c.processor}: ${stats.maxAbs}`);
      checked++;
    }
    assert.ok(checked >= 8, `${checked} cases`);
  } finally {
    await opened.session.release();
  }
});
estimator.run();

const pipeline = suite('depth2img with the model\'s depth estimator');
pipeline('no --depth-map: the estimator reads the picture, exactly as passing its map', async () => {
  const model = assembleModel('tiny-sd-depth', { depthEstimator: true });
  const bundle = await loadModel(model.dir, { device: 'cpu', withEncoder: true, withDepthEstimator: true });
  try {
    const image = (await loadImage(pngOf('square-32x32'))).rgb;
    const request = tinyRequest({ init: { image, strength: 0.8, latents: 'sample' } });
    const estimated = await generate(bundle, request);
    const depth = await bundle.depthEstimator!.estimate(image);
    const given = await generate(bundle, { ...request, depth });
    assert.equal(estimated.latents, given.latents);
  } finally {
    await bundle.release();
    model.remove();
  }
});

pipeline('the CLI estimates when the folder has depth_estimator/, and says so in the metadata', () => {
  const model = assembleModel('tiny-sd-depth', { depthEstimator: true });
  const dir = tempDir();
  try {
    const out = join(dir, 'e.png');
    const r = diffuse(['depth2img', 'a room', '-i', pngOf('square-32x32'), '--model', model.dir, '--steps', '2', '-o', out, '--quiet']);
    assert.is(r.status, 0, r.stderr);
    const meta = readGenerationMetadata(readFileSync(out));
    assert.ok(meta.kind === 'a1111' && meta.parameters.extra['Depth map'] === 'estimated', JSON.stringify(meta));
    assert.equal(readdirSync(dir), ['e.png']);
  } finally {
    model.remove();
  }
});
pipeline.run();
