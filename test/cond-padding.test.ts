import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { generate } from '../src/pipeline/generate.js';
import { loadModel, type ModelBundle } from '../src/pipeline/load.js';
import type { GenerationRequest } from '../src/pipeline/types.js';
import { TINY_SD } from './helpers/cli.js';

/** A prompt of two 75-token chunks against a one-chunk negative prompt. */
const long = Array.from({ length: 45 }, () => 'cat dog').join(' ');
const request: GenerationRequest = {
  prompt: long,
  negativePrompt: 'blurry',
  steps: 3,
  cfgScale: 7,
  cfgRescale: 0,
  seed: 3,
  rng: 'cpu',
  seedMode: 'a1111',
  sampler: 'euler',
  schedule: 'normal',
  width: 32,
  height: 32,
  batchSize: 1,
};

const s = suite('prompt and negative prompt of different lengths');
let bundle: ModelBundle;
s.before(async () => {
  bundle = await loadModel(TINY_SD, { device: 'cpu' });
});
s.after(async () => {
  await bundle.release();
});

/** UNet calls per run and the context lengths they saw. */
async function run(condPadding: GenerationRequest['condPadding']): Promise<{ latents: Float32Array; tokens: number[] }> {
  const tokens: number[] = [];
  const predict = bundle.unet.predict.bind(bundle.unet);
  const spy = Object.create(bundle.unet) as typeof bundle.unet;
  spy.predict = (sample, dims, t, context, contextDims, cond) => {
    tokens.push(contextDims[1]);
    return predict(sample, dims, t, context, contextDims, cond);
  };
  const result = await generate({ ...bundle, unet: spy }, { ...request, condPadding });
  return { latents: result.latents, tokens };
}

s('none: two UNet calls per step, each with its own length (A1111 default)', async () => {
  const { tokens } = await run('none');
  assert.equal(tokens, [77, 154, 77, 154, 77, 154]);
});

s('empty-chunks and v0: one batched call at the longer length, different results', async () => {
  const none = await run('none');
  const empty = await run('empty-chunks');
  const v0 = await run('v0');
  assert.equal(empty.tokens, [154, 154, 154]);
  assert.equal(v0.tokens, [154, 154, 154]);
  assert.not.equal(empty.latents, none.latents);
  assert.not.equal(v0.latents, empty.latents);
});

s.run();
