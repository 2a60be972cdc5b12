import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cachedModelEdit } from '../src/onnx/edited-model-cache.js';
import { GRADIENT_GRAPH_VERSION, buildGradientGraph, type GradientGraphInfo, type GradientGraphOptions } from '../src/train/autodiff/gradient-graph.js';
import { TINY_SD } from './helpers/cli.js';
import { writeExternalDataVariant } from './helpers/external-data.js';
import { normals } from './helpers/random.js';

/**
 * Full-size UNets keep their weights in an external file (3.4 GB for SD 1.5, beyond protobuf's
 * 2 GB): the combined graph refers to the same file and offsets, and goes through the edited-
 * model cache as any graph edit does (hard links to the source's weights, keyed by its hash
 * and the options), so the weights are neither copied nor inlined.
 */
const root = mkdtempSync(join(tmpdir(), 'diffuse-autodiff-external-'));
const options: GradientGraphOptions = {
  wrt: ['encoder_hidden_states'],
  loss: { kind: 'mse', output: 'out_sample' },
  pinShapes: { sample: [1, 4, 8, 8], timestep: [1], encoder_hidden_states: [1, 77, 32] },
};

function gradientEntry(source: string, cacheDir: string) {
  return cachedModelEdit<GradientGraphInfo>({
    source,
    cacheDir,
    label: 'unet-gradient',
    editKey: { options, version: GRADIENT_GRAPH_VERSION },
    edit: (bytes) => {
      const { model, ...info } = buildGradientGraph(bytes, options);
      return { model, result: info };
    },
  });
}

async function run(path: string): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'], logSeverityLevel: 3 });
  const t = (dims: number[], seed: number) => new ort.Tensor('float32', Float32Array.from(normals(dims.reduce((a, b) => a * b, 1), seed)), dims);
  const out = await session.run({ sample: t([1, 4, 8, 8], 1), timestep: new ort.Tensor('float32', Float32Array.from([400]), [1]), encoder_hidden_states: t([1, 77, 32], 2), out_sample_target: t([1, 4, 8, 8], 3) });
  await session.release();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
}

test('external weights: linked into the cache entry, not inlined, same gradients', async () => {
  const source = writeExternalDataVariant(join(TINY_SD, 'unet/model.onnx'), join(root, 'source'));
  const entry = gradientEntry(source, join(root, 'cache'));
  assert.equal(entry.result.externalData, ['model.onnx_data']);
  assert.is(statSync(join(entry.path, '../model.onnx_data')).nlink, 2, 'weights hard-linked, not copied');
  assert.ok(statSync(entry.path).size < statSync(join(root, 'source/model.onnx_data')).size, 'the graph holds no weights');
  const inline = gradientEntry(join(TINY_SD, 'unet/model.onnx'), join(root, 'cache-inline'));
  assert.equal(inline.result.externalData, []);
  const [a, b] = [await run(entry.path), await run(inline.path)];
  for (const name of ['loss', 'encoder_hidden_states_grad']) assert.equal(Array.from(a[name]!), Array.from(b[name]!), `${name} bit for bit`);
  assert.ok(gradientEntry(source, join(root, 'cache')).hit, 'built once per source and options');
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
