import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { generate } from '../src/pipeline/generate.js';
import { compare } from './helpers/fixtures.js';
import { tinyRequest, withModel } from './helpers/tiny-model.js';

/**
 * How the pipeline feeds the SDE samplers (the tree itself is checked against torchsde in
 * test/brownian-tree.test.ts): the Brownian tree by default, one per image seeded as A1111 seeds
 * its images, so image i of a batch equals a single image made with seed + i; `plain` keeps the
 * seed's stream (diffusers' DPMSolverMultistep SDE, checked in test/pipeline.test.ts).
 * Batch against single runs: ORT's batched kernels round differently in the last bits, so 1e-5 of max.
 */
const BATCH_TOLERANCE = 1e-5;

const s = suite('SDE samplers: Brownian-tree noise in the pipeline');
const model = withModel(s);

for (const sampler of ['dpmpp_2m_sde', 'dpmpp_sde', 'dpmpp_3m_sde'] as const) {
  s(`${sampler}: image i of an A1111 batch = the single image of seed + i; plain differs`, async () => {
    const request = tinyRequest({ sampler, schedule: 'karras', steps: 5, seed: 40 });
    const batch = await generate(model(), { ...request, batchSize: 2 });
    const perImage = batch.latents.length / 2;
    for (const i of [0, 1]) {
      const single = await generate(model(), { ...request, seed: 40 + i });
      const err = compare(batch.latents.subarray(i * perImage, (i + 1) * perImage), single.latents);
      assert.ok(err.relToMax < BATCH_TOLERANCE, `image ${i}: ${err.relToMax}`);
    }
    const plain = await generate(model(), { ...request, sdeNoise: 'plain' });
    const first = batch.latents.subarray(0, perImage);
    assert.ok(compare(plain.latents, first).relToMax > 1e-2, 'plain noise is another source');
  });
}

s('euler_a keeps the seed stream whatever --sde-noise says (k-diffusion gives ancestral samplers plain noise)', async () => {
  const request = tinyRequest({ sampler: 'euler_a', steps: 4 });
  assert.equal((await generate(model(), request)).latents, (await generate(model(), { ...request, sdeNoise: 'plain' })).latents);
});

s.run();
