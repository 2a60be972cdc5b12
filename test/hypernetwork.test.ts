import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CheckpointError } from '../src/graphs/errors.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { compare, readF32 } from './helpers/fixtures.js';
import { LORA_FIXTURES, convertedSd1, networkFixtures } from './helpers/lora-fixtures.js';
import { referenceRequest } from './helpers/reference-case.js';
import { scratch } from './helpers/scratch.js';
import { TINY_SD } from './helpers/cli.js';

/**
 * An A1111 hypernetwork (.pt: widths 32 and 64; [1, 2, 1], layer norm, "swish") added as graph nodes on every
 * attention's k/v input of a converted UNet (self-attention; LayerNormalization, opset 17) and of tiny-sd,
 * optimum's export (opset 14: the layer norm written out; width 32 is also its text's), against a torch
 * reproduction of A1111's HypernetworkModule hooked into diffusers' attention (tools/make_lora_refs.py):
 * final latents within 1e-5 of the largest value, with the attention fused and as built, at strengths 1 and 0.6.
 */
const LATENT_TOLERANCE = 1e-5;
const fixtures = networkFixtures();
const FIXTURE_CKPT = join(LORA_FIXTURES, '..', 'graphs', 'mini.ckpt');

const S = suite('hypernetworks = A1111 HypernetworkModule on k/v inputs');
const tempDir = scratch(S);
let work = '';
let model = '';
S.before(async () => {
  work = tempDir();
  model = await convertedSd1(work);
});

for (const c of fixtures.cases.filter((k) => k.hypernetwork)) {
  for (const fuse of [true, false]) {
    S(`${c.name}, attention ${fuse ? 'fused' : 'plain'}`, async () => {
      const hypernetworks = [{ path: join(LORA_FIXTURES, `${c.hypernetwork}.pt`), strength: c.strength! }];
      const bundle = await loadModel(c.model === 'tiny-sd' ? TINY_SD : model, { device: 'cpu', fuseAttention: fuse, graphCache: join(work, 'graphs'), hypernetworks });
      try {
        const result = await generate({ ...bundle, schedule: discreteSchedule(fixtures.scheduler.config) }, referenceRequest({ ...c, scheduler: fixtures.scheduler }));
        const e = compare(result.latents, readF32(join(LORA_FIXTURES, c.final_latents.file)));
        assert.ok(e.relToMax < LATENT_TOLERANCE, `final latents off by ${e.maxAbs} (${e.relToMax.toExponential(2)} of max)`);
        const none = fixtures.cases.find((k) => k.name.endsWith('none') && k.model === c.model)!;
        assert.ok(compare(result.latents, readF32(join(LORA_FIXTURES, none.final_latents.file))).relToMax > 1e-3, 'the hypernetwork changes the image');
      } finally {
        await bundle.release();
      }
    });
  }
}

S('a file that is not a hypernetwork is refused in one line', async () => {
  const err = await loadModel(model, { device: 'cpu', graphCache: join(work, 'graphs'), hypernetworks: [{ path: FIXTURE_CKPT, strength: 1 }] }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(err, CheckpointError);
  assert.match((err as Error).message, /^hypernetwork .*mini\.ckpt: /);
  assert.not.match((err as Error).message, /\n/);
});

S.run();
