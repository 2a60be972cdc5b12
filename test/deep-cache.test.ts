import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DEEP_CACHE_FEATURE, DeepCacheSplitError, splitForDeepCache } from '../src/onnx/deep-cache-split.js';
import { initializers } from '../src/onnx/initializers.js';
import { ModelProto } from '../src/onnx/proto.js';
import { DeepCacheSchedule } from '../src/pipeline/deep-cache.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel, type LoadOptions } from '../src/pipeline/load.js';
import type { ModelBundle } from '../src/pipeline/load.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { TINY_SD } from './helpers/cli.js';
import { assertRecordedOption } from './helpers/recorded-option.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';
import { normals as normals64 } from './helpers/random.js';
import { referenceRequest, type ReferenceCase } from './helpers/reference-case.js';
import { tinyRequest } from './helpers/tiny-model.js';

/**
 * `--deep-cache N` against the DeepCache package's DeepCacheSDHelper on diffusers'
 * StableDiffusionPipeline with the same tiny weights (tools/make_deepcache_refs.py). The cached
 * runs are held to the bound of the plain pipeline tests (1e-5 of the largest latent); each
 * reference differs from the uncached run by 4e-2 to 7e-2 of max, so a wrong schedule or a wrong
 * cut could not pass.
 */
const LATENT_TOLERANCE = 1e-5;
const DIR = join(FIXTURES, 'deepcache');
const SOURCE = join(TINY_SD, 'unet/model.onnx');

interface Case extends ReferenceCase {
  cache_interval: number;
  change_vs_no_cache: number;
  final_latents: { file: string };
}

const manifest = readJson<{ cases: Case[] }>(join(DIR, 'cases.json'));
const normals = (count: number, seed: number): Float32Array => Float32Array.from(normals64(count, seed));
const scratch = mkdtempSync(join(tmpdir(), 'diffuse-deep-cache-'));

const Split = suite('DeepCache graph split');
const split = splitForDeepCache(new Uint8Array(readFileSync(SOURCE)));

async function run(model: Uint8Array, name: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const path = join(scratch, `${name}.onnx`);
  writeFileSync(path, model);
  const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  try {
    return await session.run(Object.fromEntries(session.inputNames.map((n) => [n, feeds[n]!])));
  } finally {
    await session.release();
  }
}

Split('the full graph is the UNet plus the feature; the shallow graph on that feature gives the same prediction', async () => {
  const feeds = {
    sample: new ort.Tensor('float32', normals(2 * 4 * 16 * 12, 1), [2, 4, 16, 12]),
    timestep: new ort.Tensor('float32', new Float32Array([701.37]), [1]),
    encoder_hidden_states: new ort.Tensor('float32', normals(2 * 77 * 32, 2), [2, 77, 32]),
  };
  const original = await run(new Uint8Array(readFileSync(SOURCE)), 'original', feeds);
  const full = await run(split.full, 'full', feeds);
  const want = original.out_sample!.data as Float32Array;
  assert.equal(full.out_sample!.data, want, 'full graph: out_sample bit for bit');
  const feature = full[DEEP_CACHE_FEATURE]!;
  // The last up block of the tiny UNet works at 32 channels on the full latent size.
  assert.equal(feature.dims, [2, 32, 16, 12]);
  const shallow = await run(split.shallow, 'shallow', { ...feeds, [DEEP_CACHE_FEATURE]: feature });
  assert.equal(shallow.out_sample!.data, want, 'shallow graph on the same step: out_sample bit for bit');
  // A stale feature changes the prediction: the shallow graph really reads it.
  const other = await run(split.shallow, 'shallow', { ...feeds, [DEEP_CACHE_FEATURE]: new ort.Tensor('float32', normals(feature.size, 3), feature.dims) });
  assert.ok(compare(other.out_sample!.data as Float32Array, want).maxAbs > 1e-2);
});

Split('the shallow graph keeps only the shallow layers and their weights', () => {
  const graph = ModelProto.decode(split.shallow).graph;
  assert.equal(graph.inputs.map((i) => i.name), ['sample', 'timestep', 'encoder_hidden_states', DEEP_CACHE_FEATURE]);
  // The export computes silu(temb) and the text's Shape once, in the first block that needs them: those few
  // elementwise nodes stay, but every weighted op is in a shallow layer.
  const weighted = graph.nodes.filter((n) => ['Conv', 'MatMul', 'Gemm'].includes(n.opType));
  const scopes = new Set(weighted.map((n) => /^\/([a-z_]+(?:\.\d+)?)/.exec(n.name)?.[1]));
  assert.equal([...scopes].sort(), ['conv_in', 'conv_out', 'time_embedding', 'up_blocks.1']);
  const layers = new Set(graph.nodes.map((n) => /^\/up_blocks\.1\/((?:resnets|attentions)\.\d+)/.exec(n.name)?.[1]).filter((s) => s !== undefined));
  assert.equal([...layers].sort(), ['attentions.1', 'resnets.1'], "the last up block's last layer only");
  const weights = (model: Uint8Array) => initializers(ModelProto.decode(model).graph).length;
  assert.ok(weights(split.shallow) < weights(split.full) / 3, `${weights(split.shallow)} of ${weights(split.full)} initialisers`);
  assert.is(split.shallowNodes, graph.nodes.length);
});

Split('a graph without the UNet skip structure is refused with a typed error', () => {
  const text = new Uint8Array(readFileSync(join(TINY_SD, 'text_encoder/model.onnx')));
  assert.throws(() => splitForDeepCache(text), (err: unknown) => err instanceof DeepCacheSplitError && /cannot split the UNet for --deep-cache: the graph has no input named sample/.test((err as Error).message));
});

Split.after(() => rmSync(scratch, { recursive: true, force: true }));
Split.run();

const Package = suite('--deep-cache = the DeepCache package on diffusers');
const graphCache = mkdtempSync(join(tmpdir(), 'diffuse-deep-cache-graphs-'));
const bundles: Record<string, ModelBundle> = {};
const load = async (name: string, options: Partial<LoadOptions>) => {
  bundles[name] = await loadModel(TINY_SD, { device: 'cpu', graphCache, ...options });
};
Package.before(async () => {
  await load('plain', {});
  await load('split', { deepCache: true });
  await load('fused', { deepCache: true, fuseAttention: true });
});
Package.after(async () => {
  await Promise.all(Object.values(bundles).map((b) => b.release()));
  rmSync(graphCache, { recursive: true, force: true });
});

function requestFor(c: Case, deepCache?: number) {
  return referenceRequest(c, { promptWeighting: 'none', ...(deepCache !== undefined ? { deepCache } : {}) });
}

for (const c of manifest.cases) {
  Package(`${c.name}: ${referenceRequest(c).sampler} with a cache interval of ${c.cache_interval}`, async () => {
    const bundle = { ...bundles.split!, schedule: discreteSchedule(c.scheduler.config) };
    const result = await generate(bundle, requestFor(c, c.cache_interval));
    const want = readF32(join(DIR, c.final_latents.file));
    const err = compare(result.latents, want);
    assert.ok(err.relToMax < LATENT_TOLERANCE, `final latents off by ${err.maxAbs} (${err.relToMax} of max)`);
    const plain = await generate({ ...bundles.plain!, schedule: bundle.schedule }, requestFor(c));
    assert.ok(compare(plain.latents, want).relToMax > 100 * LATENT_TOLERANCE, 'the uncached run is far from the cached reference');
  });
}

Package('an interval of 1 is the plain UNet bit for bit', async () => {
  const c = manifest.cases[0]!;
  const schedule = discreteSchedule(c.scheduler.config);
  const plain = await generate({ ...bundles.plain!, schedule }, requestFor(c));
  const one = await generate({ ...bundles.split!, schedule }, requestFor(c, 1));
  assert.equal(one.latents, plain.latents);
});

Package('fused attention: the split of the fused UNet meets the same bound', async () => {
  const c = manifest.cases[1]!;
  const result = await generate({ ...bundles.fused!, schedule: discreteSchedule(c.scheduler.config) }, requestFor(c, c.cache_interval));
  const err = compare(result.latents, readF32(join(DIR, c.final_latents.file)));
  assert.ok(err.relToMax < LATENT_TOLERANCE, `final latents off by ${err.maxAbs} (${err.relToMax} of max)`);
});

Package('prompt and negative prompt run as two UNet calls keep a feature each', async () => {
  // Different token counts without padding: two UNet calls per step (A1111's default), each its own group.
  const schedule = new DeepCacheSchedule(2);
  const [u0, c0] = [schedule.use(0, 'true'), schedule.use(0, 'false')];
  assert.ok(!u0.reuse && !c0.reuse && u0.features !== c0.features);
  u0.features.set(0, new ort.Tensor('float32', new Float32Array(1), [1]));
  c0.features.set(0, new ort.Tensor('float32', new Float32Array(1), [1]));
  const [u1, c1] = [schedule.use(1, 'true'), schedule.use(1, 'false')];
  assert.ok(u1.reuse && c1.reuse && u1.features === u0.features && c1.features === c0.features);
  assert.ok(!schedule.use(2, 'true').reuse, 'every second call runs whole');
  assert.ok(!schedule.use(3, 'true,false').reuse, 'a group without a feature (a refiner taking over) runs whole');
  const long = 'a very long negative prompt '.repeat(12);
  const request = { ...tinyRequest({ negativePrompt: long, steps: 4 }), deepCache: 2 };
  const cached = await generate(bundles.split!, request);
  const plain = await generate(bundles.plain!, { ...request, deepCache: 1 });
  assert.ok(compare(cached.latents, plain.latents).relToMax > 1e-4, 'the cache was used');
  assert.equal((await generate(bundles.split!, request)).latents, cached.latents, 'a second run reuses nothing from the first');
});

Package('a request for DeepCache on a UNet loaded without the split says what to do', async () => {
  try {
    await generate(bundles.plain!, { ...tinyRequest(), deepCache: 2 });
    assert.unreachable('should refuse');
  } catch (err) {
    assert.match((err as Error).message, /loaded without DeepCache/);
  }
});

Package.run();

const Cli = suite('--deep-cache on the command line');

Cli('recorded as Deep cache and re-run by --from; 1 writes the plain image', () => assertRecordedOption('--deep-cache', '2', '1', 'Deep cache'));

Cli.run();
