import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { intAttribute } from '../src/onnx/node-builders.js';
import { ModelProto } from '../src/onnx/proto.js';
import { quantizeInt8 } from '../src/onnx/quantize-int8.js';
import { splitProjections } from '../src/onnx/split-projections.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import { assembleModel } from './helpers/assemble-model.js';
import { TINY_SD } from './helpers/cli.js';
import { FIXTURES, compare } from './helpers/fixtures.js';
import { buildModel, type NodeSpec } from './helpers/onnx-build.js';
import { normals as normals64 } from './helpers/random.js';
import { scratch } from './helpers/scratch.js';
import { tinyRequest } from './helpers/tiny-model.js';
import { tinyUnetOutput } from './helpers/tiny-unet.js';

/**
 * A projection read only in slices, computed slice by slice. Every output element is the same
 * K-term dot product plus the same bias in both graphs, so the outputs are expected equal; the
 * bound 1e-6 of max leaves room only for a GEMM that blocks its sum differently by width (a slice
 * taken from the wrong columns is off by the order of the output itself).
 */
const TOLERANCE = 1e-6;
const normals = (count: number, seed: number): Float32Array => Float32Array.from(normals64(count, seed));

const Split = suite('projections split by their slices');
const temp = scratch(Split);

const K = 6;
const WIDTH = 8;
const x = () => ({ x: new ort.Tensor('float32', normals(2 * 5 * K, 3), [2, 5, K]) });

/** y = Add(b, MatMul(x, W)) of width 8, then `tail` (reading y) producing `out`. */
function projection(tail: NodeSpec[], consts: Array<{ name: string; data: number[] }>, outWidth: number): Uint8Array {
  return buildModel({
    opset: 17,
    inputs: [{ name: 'x', dims: [2, 5, K] }],
    outputs: [{ name: 'out', dims: [2, 5, outWidth] }],
    nodes: [{ op: 'MatMul', inputs: ['x', 'w'], outputs: ['xw'] }, { op: 'Add', inputs: ['b', 'xw'], outputs: ['y'] }, ...tail],
    initializers: [
      { name: 'w', dims: [K, WIDTH], data: normals(K * WIDTH, 1) },
      { name: 'b', dims: [WIDTH], data: normals(WIDTH, 2) },
      ...consts.map((c) => ({ name: c.name, elemType: 7, dims: [c.data.length], data: c.data })),
    ],
  });
}

/** torch's export of `y.chunk(2, dim=-1)` (the chunk size from y's shape), the halves multiplied as GEGLU does. */
const chunked = projection(
  [
    { op: 'Shape', inputs: ['y'], outputs: ['shape'] },
    { op: 'Gather', inputs: ['shape', 'minus1'], outputs: ['last'], attrs: [intAttribute('axis', 0)] },
    { op: 'Add', inputs: ['last', 'one'], outputs: ['plus1'] },
    { op: 'Div', inputs: ['plus1', 'two'], outputs: ['half'] },
    { op: 'Mul', inputs: ['half', 'one'], outputs: ['end0'] },
    { op: 'Mul', inputs: ['half', 'two'], outputs: ['end1'] },
    { op: 'Slice', inputs: ['y', 'zero', 'end0', 'minus1'], outputs: ['h0'] },
    { op: 'Slice', inputs: ['y', 'end0', 'end1', 'minus1'], outputs: ['h1'] },
    { op: 'Mul', inputs: ['h0', 'h1'], outputs: ['out'] },
  ],
  [
    { name: 'minus1', data: [-1] },
    { name: 'zero', data: [0] },
    { name: 'one', data: [1] },
    { name: 'two', data: [2] },
  ],
  WIDTH / 2,
);

async function run(model: Uint8Array): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  try {
    const out = await session.run(x());
    return out.out!.data as Float32Array;
  } finally {
    await session.release();
  }
}

const opTypes = (model: Uint8Array) => ModelProto.decode(model).graph.nodes.map((n) => n.opType);
const count = (ops: string[], op: string) => ops.filter((o) => o === op).length;

Split("torch's chunk(2): two products of half the width, the chunk-size arithmetic gone, the same output", async () => {
  const edited = splitProjections(chunked);
  assert.is(edited.split, 1);
  const ops = opTypes(edited.model);
  assert.is(count(ops, 'MatMul'), 2);
  assert.is(count(ops, 'Shape'), 0, 'the Shape read y, which is gone');
  assert.is(count(ops, 'Slice'), 4, 'the weight and the bias sliced per half, no activation sliced');
  const { relToMax } = compare(await run(edited.model), await run(chunked));
  assert.ok(relToMax <= TOLERANCE, `${relToMax}`);
});

Split('three uneven constant slices (one with a negative start) each get their columns', async () => {
  const model = projection(
    [
      { op: 'Slice', inputs: ['y', 'zero', 'three', 'minus1'], outputs: ['s0'] },
      { op: 'Slice', inputs: ['y', 'three', 'five', 'minus1'], outputs: ['s1'] },
      { op: 'Slice', inputs: ['y', 'minus3', 'big', 'minus1'], outputs: ['s2'] },
      { op: 'Concat', inputs: ['s2', 's0', 's1'], outputs: ['out'], attrs: [intAttribute('axis', -1)] },
    ],
    [
      { name: 'minus1', data: [-1] },
      { name: 'zero', data: [0] },
      { name: 'three', data: [3] },
      { name: 'five', data: [5] },
      { name: 'minus3', data: [-3] },
      { name: 'big', data: [Number.MAX_SAFE_INTEGER] },
    ],
    WIDTH,
  );
  const edited = splitProjections(model);
  assert.is(edited.split, 1);
  assert.is(count(opTypes(edited.model), 'MatMul'), 3);
  const { relToMax } = compare(await run(edited.model), await run(model));
  assert.ok(relToMax <= TOLERANCE, `${relToMax}`);
});

Split('left as it is: y read whole as well, a slice along another axis, a range not known from the weights', () => {
  const readWhole = projection(
    [
      { op: 'Slice', inputs: ['y', 'zero', 'four', 'minus1'], outputs: ['s0'] },
      { op: 'Relu', inputs: ['y'], outputs: ['r'] },
      { op: 'Slice', inputs: ['r', 'zero', 'four', 'minus1'], outputs: ['s1'] },
      { op: 'Add', inputs: ['s0', 's1'], outputs: ['out'] },
    ],
    [
      { name: 'minus1', data: [-1] },
      { name: 'zero', data: [0] },
      { name: 'four', data: [4] },
    ],
    4,
  );
  const otherAxis = projection(
    [
      { op: 'Slice', inputs: ['y', 'zero', 'four', 'one'], outputs: ['s0'] },
      { op: 'Slice', inputs: ['s0', 'zero', 'four', 'minus1'], outputs: ['out'] },
    ],
    [
      { name: 'minus1', data: [-1] },
      { name: 'zero', data: [0] },
      { name: 'one', data: [1] },
      { name: 'four', data: [4] },
    ],
    4,
  );
  const fromInput = buildModel({
    opset: 17,
    inputs: [
      { name: 'x', dims: [2, 5, K] },
      { name: 'end', elemType: 7, dims: [1] },
    ],
    outputs: [{ name: 'out' }],
    nodes: [
      { op: 'MatMul', inputs: ['x', 'w'], outputs: ['xw'] },
      { op: 'Add', inputs: ['xw', 'b'], outputs: ['y'] },
      { op: 'Slice', inputs: ['y', 'zero', 'end', 'minus1'], outputs: ['out'] },
    ],
    initializers: [
      { name: 'w', dims: [K, WIDTH], data: normals(K * WIDTH, 1) },
      { name: 'b', dims: [WIDTH], data: normals(WIDTH, 2) },
      { name: 'zero', elemType: 7, dims: [1], data: [0] },
      { name: 'minus1', elemType: 7, dims: [1], data: [-1] },
    ],
  });
  for (const [name, model] of Object.entries({ readWhole, otherAxis, fromInput })) {
    const edited = splitProjections(model);
    assert.is(edited.split, 0, name);
    assert.is(edited.model, model, `${name}: the bytes come back untouched`);
  }
});

const tinyUnet = new Uint8Array(readFileSync(join(TINY_SD, 'unet', 'model.onnx')));
// One GEGLU per transformer block: tiny-sd has four.
const GEGLUS = 4;

Split("the tiny UNet's GEGLU projections: the same noise prediction", async () => {
  const edited = splitProjections(tinyUnet);
  assert.is(ModelProto.decode(tinyUnet).graph.nodes.filter((n) => n.opType === 'MatMul' && n.name.includes('/ff/net.0/proj/')).length, GEGLUS);
  assert.is(edited.split, GEGLUS);
  const { relToMax } = compare(await tinyUnetOutput(edited.model), await tinyUnetOutput(tinyUnet));
  console.log(`  tiny UNet: ${relToMax.toExponential(2)} of max`);
  assert.ok(relToMax <= TOLERANCE, `${relToMax}`);
});

for (const format of ['u8s8', 'u8u8'] as const) {
  Split(`the int8 UNet's (${format}) DynamicQuantizeMatMul projections: split with their scales${format === 'u8u8' ? ' and zero points' : ''}, the same noise prediction`, async () => {
    const quantized = quantizeInt8(tinyUnet, join(TINY_SD, 'unet'), undefined, format).model;
    const edited = splitProjections(quantized);
    assert.is(edited.split, GEGLUS);
    const ops = opTypes(edited.model);
    assert.is(count(ops, 'DynamicQuantizeMatMul'), count(opTypes(quantized), 'DynamicQuantizeMatMul') + GEGLUS);
    const { relToMax } = compare(await tinyUnetOutput(edited.model), await tinyUnetOutput(quantized));
    console.log(`  tiny int8 UNet (${format}): ${relToMax.toExponential(2)} of max`);
    assert.ok(relToMax <= TOLERANCE, `${relToMax}`);
  });
}

Split('the loader splits the float UNet and each ControlNet on the CPU, once, and caches them', async () => {
  const graphCache = temp('split-cache-');
  const model = assembleModel('tiny-sd-control');
  const controlnet = join(FIXTURES, 'tiny-sd-control', 'controlnet');
  const load = () => loadModel(model.dir, { device: 'cpu', threads: 1, fuseAttention: true, graphCache, controlnets: [controlnet] });
  try {
    await (await load()).release();
    const entries = () => readdirSync(graphCache).filter((e) => e.includes('-split-projections-')).sort();
    const first = entries();
    assert.equal(first.map((e) => e.replace(/-[0-9a-f]{24}$/, '')), ['controlnet-split-projections', 'unet-split-projections']);
    const geglus = (path: string) => ModelProto.decode(new Uint8Array(readFileSync(path))).graph.nodes.filter((n) => n.opType === 'MatMul' && n.name.includes('/ff/net.0/proj/')).length;
    const expected = [geglus(join(controlnet, 'model.onnx')), geglus(join(model.dir, 'unet', 'model.onnx'))];
    assert.ok(expected.every((n) => n > 0), `${expected}`);
    assert.equal(first.map((e) => JSON.parse(readFileSync(join(graphCache, e, 'edit.json'), 'utf8')).split), expected);
    const bundle = await load();
    try {
      await generate(bundle, tinyRequest({ seed: 3 }));
    } finally {
      await bundle.release();
    }
    assert.equal(entries(), first, 'the second load reuses them');
  } finally {
    model.remove();
  }
});

Split('with --quantize the loader splits the int8 UNet (its DynamicQuantizeMatMul projections) and caches it', async () => {
  const graphCache = temp('split-int8-cache-');
  const bundle = await loadModel(TINY_SD, { device: 'cpu', threads: 1, quantize: 'int8-matmul', graphCache });
  try {
    await generate(bundle, tinyRequest({ seed: 3 }));
  } finally {
    await bundle.release();
  }
  const split = readdirSync(graphCache).filter((e) => e.startsWith('unet-split-projections-'));
  assert.is(split.length, 1);
  const source = JSON.parse(readFileSync(join(graphCache, split[0]!, 'source.json'), 'utf8')).source as string;
  assert.match(source, /\/unet-int8-matmul-[0-9a-f]{24}\/model\.onnx$/);
  assert.is(JSON.parse(readFileSync(join(graphCache, split[0]!, 'edit.json'), 'utf8')).split, GEGLUS);
  // The int8 weights are external data the split graph links (one file on disk), not a copy inside it.
  const int8Data = join(dirname(source), 'int8.onnx_data');
  const linked = join(graphCache, split[0]!, 'int8.onnx_data');
  assert.is(statSync(linked).ino, statSync(int8Data).ino);
  assert.ok(statSync(join(graphCache, split[0]!, 'model.onnx')).size < statSync(int8Data).size / 4, 'the split graph holds no weights');
});

Split.run();
