import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import { TINY_SD } from './helpers/cli.js';
import { tinyRequest } from './helpers/tiny-model.js';

/**
 * The CLI parks the text encoder (frees its graph) while the UNet and VAE run. A parked encoder
 * must give exactly what an always-open one gives, for a repeated prompt (remembered) and for
 * a new one (the graph is opened again), and parking must really release the session.
 */
test('a parked text encoder reopens for new prompts and changes no number', async () => {
  const parked = await loadModel(TINY_SD, { device: 'cpu', parkTextEncoder: true });
  const open = await loadModel(TINY_SD, { device: 'cpu' });
  try {
    for (const prompt of ['a fox in the snow', 'a fox in the snow', 'a (red:1.3) barn, BREAK evening light', 'a fox in the snow']) {
      const request = tinyRequest({ prompt, negativePrompt: 'blurry' });
      const a = await generate(parked, request);
      assert.ok((parked.textEncoder as unknown as { opened: unknown }).opened === undefined, 'released after encoding');
      const b = await generate(open, request);
      assert.equal(a.latents, b.latents, prompt);
    }
  } finally {
    await parked.release();
    await open.release();
  }
});

test.run();
