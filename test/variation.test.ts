import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { generate } from '../src/pipeline/generate.js';
import { slerpNoise } from '../src/pipeline/variation.js';
import { createRng } from '../src/rng/index.js';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';
import { tinyRequest, withModel } from './helpers/tiny-model.js';

const s = suite('variation seeds and --from');
const model = withModel(s);

const request = tinyRequest({ steps: 4 });

s('slerp: strength 0 keeps the noise, 1 gives the variation noise; parallel inputs take the linear path', () => {
  const dims = [4, 8, 8] as const;
  const a = createRng('cpu', 1).randn(256);
  const b = createRng('cpu', 2).randn(256);
  const zero = slerpNoise(0, a, b, dims);
  const one = slerpNoise(1, a, b, dims);
  a.forEach((v, i) => {
    assert.ok(Math.abs(zero[i]! - v) < 1e-6);
    assert.ok(Math.abs(one[i]! - b[i]!) < 1e-5);
  });
  const half = slerpNoise(0.5, a, b, dims);
  assert.ok(half.some((v, i) => Math.abs(v - (a[i]! + b[i]!) / 2) > 1e-3), 'a real slerp, not a linear mix');
  const same = slerpNoise(0.25, a, a, dims);
  same.forEach((v, i) => assert.ok(Math.abs(v - a[i]!) < 1e-6));
});

s('strength 0 changes nothing; strength 1 is the variation seed itself (deterministic sampler)', async () => {
  const plain = await generate(model(), request);
  const none = await generate(model(), { ...request, variation: { seed: 99, strength: 0 } });
  assert.equal(none.latents, plain.latents);
  const full = await generate(model(), { ...request, variation: { seed: 99, strength: 1 } });
  const other = await generate(model(), { ...request, seed: 99 });
  full.latents.forEach((v, i) => assert.ok(Math.abs(v - other.latents[i]!) < 1e-4, `latent ${i}`));
  const some = await generate(model(), { ...request, variation: { seed: 99, strength: 0.3 } });
  assert.not.equal(some.latents, plain.latents);
});

s('with a variation strength the seed stays and the variation seed counts up (A1111)', async () => {
  const batch = await generate(model(), { ...request, batchSize: 2, variation: { seed: 99, strength: 0.5 } });
  assert.equal(batch.images.map((i) => [i.metadata.seed, i.metadata.variationSeed]), [[11, 99], [11, 100]]);
});

s('txt2img --from re-runs an image byte for byte (seeds, sampler, CLIP skip, weighting, quantization)', () => {
  const out = tempDir();
  const first = diffuse(['txt2img', 'a fox', '--model', TINY_SD, '--sampler', 'DPM++ 2M Karras', '--steps', '3', '--seed', '5', '--variation-seed', '8', '--variation-strength', '0.2', '-n', 'blur', '--clip-skip', '2', '--prompt-weighting', 'comfy', '--quantize', 'int8-matmul', '--quiet', '-o', join(out, 'a.png')]);
  assert.is(first.status, 0, first.stderr);
  const again = diffuse(['txt2img', '--from', join(out, 'a.png'), '--model', TINY_SD, '--quiet', '-o', join(out, 'b.png')]);
  assert.is(again.status, 0, again.stderr);
  assert.ok(readFileSync(join(out, 'a.png')).equals(readFileSync(join(out, 'b.png'))));
  const changed = diffuse(['txt2img', '--from', join(out, 'a.png'), '--model', TINY_SD, '--seed', '6', '--quiet', '-o', join(out, 'c.png')]);
  assert.is(changed.status, 0, changed.stderr);
  assert.not.ok(readFileSync(join(out, 'a.png')).equals(readFileSync(join(out, 'c.png'))), 'a flag given wins over the image');
});

s.run();
