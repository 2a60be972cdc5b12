import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { generate } from '../src/pipeline/generate.js';
import { batchNoise } from '../src/pipeline/noise.js';
import { createRng } from '../src/rng/index.js';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';
import { tinyRequest, withModel } from './helpers/tiny-model.js';

/**
 * A1111's eta noise seed delta, as its modules/rng.py ImageRNG does it: the first draw (the
 * starting noise) from each image's seed, then every image's generator re-seeded with seed + ENSD
 * for the noise the loop draws.
 */
const s = suite('--ensd');
const model = withModel(s);
const dims = [4, 4, 4] as const;

s('the starting noise is the seed\'s, the loop\'s noise comes from seed + ENSD (per image, A1111 seeds)', () => {
  const noise = batchNoise({ seed: 7, rng: 'cpu', seedMode: 'a1111', batchSize: 2, ensd: 31337 }, dims);
  const first = noise.initial();
  const later = noise.batch();
  const n = 64;
  const expect = (seed: number, draws: number) => {
    const gen = createRng('cpu', seed);
    let x = gen.randn(n);
    for (let i = 1; i < draws; i++) x = gen.randn(n);
    return x;
  };
  assert.equal(first, Float32Array.from([...expect(7, 1), ...expect(8, 1)]));
  assert.equal(later, Float32Array.from([...expect(7 + 31337, 1), ...expect(8 + 31337, 1)]));
  const without = batchNoise({ seed: 7, rng: 'cpu', seedMode: 'a1111', batchSize: 2 }, dims);
  without.initial();
  assert.equal(without.batch(), Float32Array.from([...expect(7, 2), ...expect(8, 2)]));
});

s('changes ancestral samplers only', async () => {
  for (const [sampler, changes] of [['euler_a', true], ['euler', false]] as const) {
    const request = tinyRequest({ sampler, steps: 4 });
    const a = (await generate(model(), request)).latents;
    const b = (await generate(model(), { ...request, ensd: 31337 })).latents;
    assert.is(a.some((v, i) => v !== b[i]), changes, sampler);
  }
});

s('recorded as ENSD and re-run by --from', () => {
  const dir = tempDir();
  const args = ['--model', TINY_SD, '--sampler', 'euler_a', '--steps', '3', '--seed', '5', '--quiet'];
  assert.is(diffuse(['txt2img', 'a fox', ...args, '--ensd', '31337', '-o', join(dir, 'a.png')]).status, 0);
  const meta = readGenerationMetadata(readFileSync(join(dir, 'a.png')));
  assert.ok(meta.kind === 'a1111' && meta.parameters.ensd === 31337, JSON.stringify(meta));
  const again = diffuse(['txt2img', '--from', join(dir, 'a.png'), '--model', TINY_SD, '--quiet', '-o', join(dir, 'b.png')]);
  assert.is(again.status, 0, again.stderr);
  assert.ok(readFileSync(join(dir, 'a.png')).equals(readFileSync(join(dir, 'b.png'))));
});

s.run();
