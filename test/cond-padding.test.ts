import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { generate } from '../src/pipeline/generate.js';
import type { ModelBundle } from '../src/pipeline/load.js';
import type { GenerationRequest } from '../src/pipeline/types.js';
import { tinyRequest, withModel } from './helpers/tiny-model.js';

/** A prompt of two 75-token chunks against a one-chunk negative prompt. */
const long = Array.from({ length: 45 }, () => 'cat dog').join(' ');
const request = tinyRequest({ prompt: long, negativePrompt: 'blurry', seed: 3 });

const s = suite('prompt and negative prompt of different lengths');
const model = withModel(s);

/** UNet calls per run and the context lengths they saw. */
async function run(condPadding: GenerationRequest['condPadding']): Promise<{ latents: Float32Array; tokens: number[] }> {
  const tokens: number[] = [];
  const predict = model().unet.predict.bind(model().unet);
  const spy = Object.create(model().unet) as ModelBundle['unet'];
  spy.predict = (sample, dims, t, context, contextDims, cond) => {
    tokens.push(contextDims[1]);
    return predict(sample, dims, t, context, contextDims, cond);
  };
  const result = await generate({ ...model(), unet: spy }, { ...request, condPadding });
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
