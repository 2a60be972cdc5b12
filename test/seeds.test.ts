import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { imageSeed, nthBatch, nthImage } from '../src/pipeline/seeds.js';
import type { GenerationRequest } from '../src/pipeline/types.js';

// Only the fields the seed policy reads; the rest of a request does not matter to it.
const request = (over: Partial<GenerationRequest>): GenerationRequest =>
  ({ seed: 4294967295, seedMode: 'a1111', batchSize: 3, ...over }) as GenerationRequest;

test('imageSeed: image i of a batch uses seed + i, past 2^32 as A1111 counts', () => {
  const r = request({});
  assert.equal([0, 1, 2].map((i) => imageSeed(r, i)), [4294967295, 4294967296, 4294967297]);
});

test('imageSeed: one generator for the batch (diffusers) and a variation strength keep the seed', () => {
  assert.equal([0, 1, 2].map((i) => imageSeed(request({ seedMode: 'diffusers' }), i)), [4294967295, 4294967295, 4294967295]);
  const varied = request({ variation: { seed: 10, strength: 0.3 } });
  assert.equal([0, 1].map((i) => imageSeed(varied, i)), [4294967295, 4294967295]);
  // Strength 0 is no variation: seeds count up again.
  assert.is(imageSeed(request({ variation: { seed: 10, strength: 0 } }), 1), 4294967296);
});

test('nthBatch: seeds count on by the batch size (A1111 batch count), by one with a single generator', () => {
  assert.is(nthBatch(request({ seed: 100 }), 2).seed, 106);
  assert.is(nthBatch(request({ seed: 100, seedMode: 'diffusers' }), 2).seed, 102);
  const varied = nthBatch(request({ seed: 100, variation: { seed: 7, strength: 0.5 } }), 2);
  assert.is(varied.seed, 100);
  assert.is(varied.variation?.seed, 13);
});

test('nthImage: image i alone, with its own seed and variation seed', () => {
  const one = nthImage(request({ seed: 5, variation: { seed: 7, strength: 0 } }), 2);
  assert.equal([one.seed, one.variation?.seed, one.batchSize], [7, 9, 1]);
  const varied = nthImage(request({ seed: 5, variation: { seed: 7, strength: 0.5 } }), 2);
  assert.equal([varied.seed, varied.variation?.seed], [5, 9]);
});

test.run();
