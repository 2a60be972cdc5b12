import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openSession } from '../src/onnx/session.js';
import { cachedOptimizedModel } from '../src/onnx/optimized-cache.js';
import { cpuIdentity } from '../src/onnx/cpu-features.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import { TINY_SD, tempDir } from './helpers/cli.js';
import { cpuinfoWith } from './helpers/cpuinfo.js';

const UNET = join(TINY_SD, 'unet', 'model.onnx');

function unetFeeds(): Record<string, ort.Tensor> {
  const sample = Float32Array.from({ length: 2 * 4 * 16 * 16 }, (_, i) => Math.sin(i));
  const context = Float32Array.from({ length: 2 * 77 * 32 }, (_, i) => Math.cos(i));
  return {
    sample: new ort.Tensor('float32', sample, [2, 4, 16, 16]),
    timestep: new ort.Tensor('float32', Float32Array.of(500), [1]),
    encoder_hidden_states: new ort.Tensor('float32', context, [2, 77, 32]),
  };
}

test('the first load saves the optimised graph; the next opens it and computes the same', async () => {
  const cache = tempDir('diffuse-optimized-');
  const first = await openSession(UNET, { device: 'cpu', optimizedCache: cache });
  assert.is(first.fromCache, false);
  const entries = readdirSync(cache);
  assert.is(entries.length, 1, 'one complete entry, no staging left');
  assert.ok(readdirSync(join(cache, entries[0]!)).includes('complete'));
  const second = await openSession(UNET, { device: 'cpu', optimizedCache: cache });
  assert.is(second.fromCache, true);
  const [a, b] = await Promise.all([first.session.run(unetFeeds()), second.session.run(unetFeeds())]);
  assert.equal(b.out_sample!.data, a.out_sample!.data);
  await Promise.all([first.session.release(), second.session.release()]);
});

test("an entry is keyed by the CPU's vector instruction sets, not only its name", () => {
  // A graph optimised for AVX-512's NCHWc blocks computes garbage on AVX2's kernels (optimized-cache.ts).
  const cache = tempDir('diffuse-optimized-');
  const entry = (flags: string) => cachedOptimizedModel(UNET, cache, cpuIdentity(cpuinfoWith(flags))).modelPath;
  assert.is.not(entry('avx2 fma avx512f avx512bw'), entry('avx2 fma'));
  assert.is.not(entry('avx2 fma avx512f avx512_vnni'), entry('avx2 fma avx512f'));
  assert.is.not(entry('avx2 fma avx512f avx512_vnni amx_int8'), entry('avx2 fma avx512f avx512_vnni'));
  assert.is(entry('avx2 fma hypervisor cpuid_fault'), entry('avx2 fma'), 'flags no kernel depends on do not split the cache');
  assert.is(entry('fma avx2'), entry('avx2 fma'), 'order does not matter');
});

test('a damaged entry is dropped and rebuilt', async () => {
  const cache = tempDir('diffuse-optimized-');
  (await openSession(UNET, { device: 'cpu', optimizedCache: cache })).session.release();
  const entry = join(cache, readdirSync(cache)[0]!);
  writeFileSync(join(entry, 'model.onnx'), 'not a graph');
  const again = await openSession(UNET, { device: 'cpu', optimizedCache: cache });
  assert.is(again.fromCache, false);
  assert.is((await again.session.run(unetFeeds())).out_sample!.dims.length, 4);
  await again.session.release();
  assert.is((await openSession(UNET, { device: 'cpu', optimizedCache: cache })).fromCache, true);
});

test('a cache that cannot be written (here a file where its folder should be) loads the graph without it', async () => {
  const cache = join(tempDir('diffuse-optimized-'), 'not-a-folder');
  writeFileSync(cache, '');
  const opened = await openSession(UNET, { device: 'cpu', optimizedCache: cache });
  assert.is(opened.fromCache, false);
  assert.is((await opened.session.run(unetFeeds())).out_sample!.dims.length, 4);
  await opened.session.release();
});

test('a whole generation is the same from the cache', async () => {
  const cache = tempDir('diffuse-optimized-');
  const request = { prompt: 'a cat', negativePrompt: 'dog', steps: 3, cfgScale: 7, cfgRescale: 0, seed: 9, rng: 'cpu' as const, seedMode: 'a1111' as const, sampler: 'dpmpp_2m' as const, schedule: 'karras' as const, width: 32, height: 32, batchSize: 1 };
  const fresh = await loadModel(TINY_SD, { device: 'cpu', optimizedCache: cache });
  const a = await generate(fresh, request);
  await fresh.release();
  const cached = await loadModel(TINY_SD, { device: 'cpu', optimizedCache: cache });
  const b = await generate(cached, request);
  await cached.release();
  assert.equal(b.latents, a.latents);
  assert.is(readdirSync(cache).length, 3, 'text encoder, UNet, VAE decoder');
});

test.run();
