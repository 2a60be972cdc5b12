import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DiffuseError } from '../src/errors.js';
import { fuseAttention } from '../src/onnx/fuse-attention.js';
import { MS_DOMAIN, intAttribute, intsAttribute, makeNode, stringAttribute } from '../src/onnx/node-builders.js';
import { Message, ModelProto, intField, messageField, stringField } from '../src/onnx/proto.js';
import { AutodiffError, GradientRequestError, PrecisionError, ShapeError, UnsupportedOpError } from '../src/train/autodiff/errors.js';
import { buildGradientGraph } from '../src/train/autodiff/gradient-graph.js';
import { DataType } from '../src/train/autodiff/tensor.js';
import { TINY_SD } from './helpers/cli.js';
import { checkGradient } from './helpers/gradient-check.js';
import { buildModel, type ModelSpec } from './helpers/onnx-build.js';
import { normals } from './helpers/random.js';

/**
 * Whole-graph behaviour of the gradient pass: accumulation over several consumers, broadcasting
 * chains, activity analysis (branches that do not need a gradient get no backward nodes), the
 * folding of shape arithmetic once shapes are pinned, and the refusals (typed errors that name
 * the node). Gradients are checked as in autodiff-rules.test.ts, in float64: ≤ 1e-7.
 */
const TOLERANCE = 1e-7;
const D = DataType.DOUBLE;
const feed = (dims: number[], seed: number) => ({ data: normals(dims.reduce((a, b) => a * b, 1), seed), dims, elemType: D });
const opTypes = (model: Uint8Array): string[] => ModelProto.decode(model).graph.nodes.map((n) => n.opType);

test('one value read by several nodes: contributions add up', async () => {
  const model = buildModel({
    inputs: [{ name: 'x', elemType: D, dims: [3, 4] }],
    initializers: [{ name: 'w', elemType: D, dims: [4, 4], data: normals(16, 5) }],
    outputs: [{ name: 'y', elemType: D }],
    nodes: [
      { op: 'Mul', inputs: ['x', 'x'], outputs: ['sq'] },
      { op: 'Sin', inputs: ['x'], outputs: ['s'] },
      { op: 'MatMul', inputs: ['x', 'w'], outputs: ['p'] },
      { op: 'Add', inputs: ['sq', 's'], outputs: ['t'] },
      { op: 'Mul', inputs: ['t', 'p'], outputs: ['u'] },
      { op: 'Add', inputs: ['u', 'x'], outputs: ['y'] },
    ],
  });
  const r = await checkGradient({ model, wrt: ['x'], feeds: { x: feed([3, 4], 1) } });
  assert.ok(r.fd <= TOLERANCE && r.adjoint <= TOLERANCE, `fd ${r.fd}, adjoint ${r.adjoint}`);
});

test('broadcasting chains: [4] and [2,1,4] into [2,3,4], reduced and broadcast again', async () => {
  const model = buildModel({
    inputs: [{ name: 'a', elemType: D, dims: [4] }, { name: 'b', elemType: D, dims: [2, 1, 4] }, { name: 'c', elemType: D, dims: [3, 1] }],
    outputs: [{ name: 'y', elemType: D }],
    nodes: [
      { op: 'Add', inputs: ['a', 'b'], outputs: ['ab'] },
      { op: 'Mul', inputs: ['ab', 'c'], outputs: ['abc'] },
      { op: 'ReduceMean', inputs: ['abc'], outputs: ['m'], attrs: [intsAttribute('axes', [1])] },
      { op: 'Div', inputs: ['abc', 'm'], outputs: ['q'] },
      { op: 'Sub', inputs: ['q', 'a'], outputs: ['y'] },
    ],
  });
  const r = await checkGradient({ model, wrt: ['a', 'b', 'c'], feeds: { a: feed([4], 1), b: feed([2, 1, 4], 2), c: { ...feed([3, 1], 3), data: [1.5, 2, 2.5] } } });
  assert.ok(r.fd <= TOLERANCE && r.adjoint <= TOLERANCE, `fd ${r.fd}, adjoint ${r.adjoint}`);
});

const branches: ModelSpec = {
  inputs: [{ name: 'x', elemType: D, dims: [2, 3] }, { name: 'z', elemType: D, dims: [2, 3] }, { name: 'unused', elemType: D, dims: [5] }],
  outputs: [{ name: 'y', elemType: D }, { name: 'other', elemType: D }, { name: 'zonly', elemType: D }],
  nodes: [
    { op: 'Tanh', inputs: ['x'], outputs: ['tx'] },
    // z's branch has an op without a rule; it is never differentiated.
    { op: 'CumSum', inputs: ['z', 'axis'], outputs: ['cz'] },
    { op: 'Mul', inputs: ['tx', 'cz'], outputs: ['y'] },
    { op: 'Exp', inputs: ['x'], outputs: ['other'] },
    { op: 'Neg', inputs: ['z'], outputs: ['zonly'] },
  ],
};
const withAxis = (spec: ModelSpec): ModelSpec => ({ ...spec, initializers: [{ name: 'axis', elemType: DataType.INT64, dims: [], data: [1] }] });

test('activity: only the path from wrt to the differentiated output is differentiated', async () => {
  const model = buildModel(withAxis(branches));
  const graph = buildGradientGraph(model, { wrt: ['x', 'unused'], outputs: ['y'] });
  assert.equal(graph.stats.differentiatedNodes, 2, 'Tanh and Mul only');
  assert.equal(graph.inputs.map((i) => i.name), ['x', 'z', 'unused', 'y_grad']);
  assert.equal(graph.outputs.map((o) => o.name), ['y', 'x_grad', 'unused_grad'], 'the other outputs are dropped');
  assert.not.ok(['Exp', 'Neg'].some((op) => opTypes(graph.model).includes(op)), "the other outputs' branches are gone");
  const r = await checkGradient({ model, wrt: ['x'], output: 'y', feeds: { x: feed([2, 3], 1), z: feed([2, 3], 2), unused: feed([5], 3) } });
  assert.ok(r.fd <= TOLERANCE && r.adjoint <= TOLERANCE, `fd ${r.fd}, adjoint ${r.adjoint}`);
  // An input no output depends on has a zero gradient.
  const session = await ort.InferenceSession.create(graph.model, { logSeverityLevel: 3 });
  const t = (dims: number[], seed: number) => new ort.Tensor('float64', normals(dims.reduce((a, b) => a * b, 1), seed), dims);
  const out = await session.run({ x: t([2, 3], 1), z: t([2, 3], 2), unused: t([5], 3), y_grad: t([2, 3], 4) });
  assert.equal(Array.from(out.unused_grad!.data as Float64Array), [0, 0, 0, 0, 0]);
  await session.release();
});

test('the default differentiated outputs are those that depend on wrt', () => {
  const graph = buildGradientGraph(buildModel(withAxis(branches)), { wrt: ['x'] });
  assert.equal(Object.keys(graph.seeds), ['y', 'other']);
});

test('shape arithmetic folds once shapes are pinned: no Shape, Gather or Concat is left', async () => {
  const model = buildModel({
    inputs: [{ name: 'x', elemType: D, dims: ['batch', 'tokens', 4] }],
    initializers: [
      { name: 'zero', elemType: DataType.INT64, dims: [1], data: [0] },
      { name: 'minus1', elemType: DataType.INT64, dims: [1], data: [-1] },
      { name: 'two', elemType: DataType.INT64, dims: [1], data: [2] },
      { name: 'index1', elemType: DataType.INT64, dims: [], data: [1] },
    ],
    outputs: [{ name: 'y', elemType: D }],
    nodes: [
      // Reshape(x, [batch, -1, 2]) with the batch size read from x, as torch exports view().
      { op: 'Shape', inputs: ['x'], outputs: ['shape'] },
      { op: 'Gather', inputs: ['shape', 'zero'], outputs: ['batch'] },
      { op: 'Concat', inputs: ['batch', 'minus1', 'two'], outputs: ['target'], attrs: [intAttribute('axis', 0)] },
      { op: 'Reshape', inputs: ['x', 'target'], outputs: ['r'] },
      // The softmax scale 1/sqrt(d) from the last dimension.
      { op: 'Gather', inputs: ['shape', 'index1'], outputs: ['tokens'] },
      { op: 'Cast', inputs: ['tokens'], outputs: ['tokensF'], attrs: [intAttribute('to', D)] },
      { op: 'Sqrt', inputs: ['tokensF'], outputs: ['root'] },
      { op: 'Div', inputs: ['r', 'root'], outputs: ['scaled'] },
      { op: 'Softmax', inputs: ['scaled'], outputs: ['y'] },
    ],
  });
  const pinShapes = { x: [2, 3, 4] };
  const graph = buildGradientGraph(model, { wrt: ['x'], pinShapes });
  const ops = opTypes(graph.model);
  for (const op of ['Shape', 'Gather', 'Concat', 'Cast', 'Sqrt']) assert.not.ok(ops.includes(op), `${op} folded`);
  assert.equal(graph.stats.foldedNodes, 6);
  assert.equal(graph.outputs.find((o) => o.name === 'y')!.dims, [2, 6, 2]);
  const r = await checkGradient({ model, wrt: ['x'], feeds: { x: feed([2, 3, 4], 1) }, pinShapes });
  assert.ok(r.fd <= TOLERANCE && r.adjoint <= TOLERANCE, `fd ${r.fd}, adjoint ${r.adjoint}`);
});

/** y = If(flag) then x·x else −x, the branches reading x from the outer graph; z = 2z' (off the If's path). */
function withIf(): Uint8Array {
  const branch = (name: string, op: string, inputs: string[]) =>
    new Message([
      messageField(1, makeNode(op, `${name}_node`, inputs, [`${name}_out`])),
      stringField(2, name),
      messageField(12, new Message([stringField(1, `${name}_out`)])),
    ]);
  const graphAttribute = (name: string, g: Message) => new Message([stringField(1, name), messageField(6, g), intField(20, 5)]);
  return buildModel({
    inputs: [{ name: 'x', elemType: D, dims: [3] }, { name: 'flag', elemType: DataType.BOOL, dims: [] }, { name: 'z', elemType: D, dims: [3] }],
    outputs: [{ name: 'y', elemType: D }, { name: 'w', elemType: D }],
    nodes: [
      { op: 'Tanh', inputs: ['x'], outputs: ['tx'] },
      { op: 'If', inputs: ['flag'], outputs: ['y'], attrs: [graphAttribute('then_branch', branch('then', 'Mul', ['tx', 'tx'])), graphAttribute('else_branch', branch('else', 'Neg', ['tx']))], name: 'choose' },
      { op: 'Add', inputs: ['z', 'z'], outputs: ['w'] },
    ],
  });
}

test('control flow: what subgraphs read from the outer graph counts as their input', async () => {
  const model = withIf();
  // Off the path: the If's outer read (tx) survives the pruning, the gradient of w is built.
  const graph = buildGradientGraph(model, { wrt: ['z'], outputs: ['w'] });
  assert.equal(graph.outputs.map((o) => o.name), ['w', 'z_grad']);
  refuses(() => buildGradientGraph(model, { wrt: ['x'], outputs: ['y'] }), UnsupportedOpError, /If node 'choose': no gradient rule/);
});

function refuses(make: () => unknown, type: new (...args: never[]) => AutodiffError, message: RegExp): void {
  assert.throws(make, (err: Error) => err instanceof type && err instanceof DiffuseError && message.test(err.message), `${type.name} matching ${message}`);
}

test('refused: an op without a rule on the path, named', () => {
  refuses(() => buildGradientGraph(buildModel(withAxis(branches)), { wrt: ['z'], outputs: ['y'] }), UnsupportedOpError, /CumSum node 'CumSum_1': no gradient rule/);
});

test("refused: the fused UNet's com.microsoft.MultiHeadAttention, with the way out", () => {
  const fused = fuseAttention(new Uint8Array(readFileSync(join(TINY_SD, 'unet/model.onnx')))).model;
  const pinShapes = { sample: [1, 4, 8, 8], timestep: [1], encoder_hidden_states: [1, 77, 32] };
  refuses(() => buildGradientGraph(fused, { wrt: ['encoder_hidden_states'], pinShapes }), UnsupportedOpError, /com\.microsoft\.MultiHeadAttention node '.*\/attn\d\/.*MultiHeadAttention'.*unfused graph/);
});

test('refused: a vendor op and a rule variant without a rule', () => {
  const vendor = buildModel({
    inputs: [{ name: 'x', dims: [2, 2] }],
    outputs: [{ name: 'y' }],
    domains: [MS_DOMAIN],
    nodes: [{ op: 'FusedMatMul', inputs: ['x', 'x'], outputs: ['y'], domain: MS_DOMAIN, name: 'fused' }],
  });
  refuses(() => buildGradientGraph(vendor, { wrt: ['x'] }), UnsupportedOpError, /com\.microsoft\.FusedMatMul node 'fused': ops outside ai\.onnx/);
  const bilinear = buildModel({
    inputs: [{ name: 'x', dims: [1, 1, 2, 2] }],
    initializers: [{ name: 'sc', dims: [4], data: [1, 1, 2, 2] }],
    outputs: [{ name: 'y' }],
    nodes: [{ op: 'Resize', inputs: ['x', '', 'sc'], outputs: ['y'], attrs: [stringAttribute('mode', 'linear')], name: 'up' }],
  });
  refuses(() => buildGradientGraph(bilinear, { wrt: ['x'] }), UnsupportedOpError, /Resize node 'up': mode 'linear' has no rule/);
  const convWeight = buildModel({
    inputs: [{ name: 'x', dims: [1, 1, 3, 3] }, { name: 'w', dims: [1, 1, 2, 2] }],
    outputs: [{ name: 'y' }],
    nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], name: 'conv' }],
  });
  refuses(() => buildGradientGraph(convWeight, { wrt: ['w'] }), UnsupportedOpError, /Conv node 'conv': gradients of the weight/);
});

test('refused: float16 on the path (weights or inputs), named', () => {
  const half = buildModel({
    inputs: [{ name: 'x', dims: [4] }],
    initializers: [{ name: 'w', elemType: DataType.FLOAT16, dims: [4], data: [0, 0, 0, 0] }],
    outputs: [{ name: 'y' }],
    nodes: [
      { op: 'Cast', inputs: ['x'], outputs: ['xh'], attrs: [intAttribute('to', DataType.FLOAT16)], name: 'to_half' },
      { op: 'Mul', inputs: ['xh', 'w'], outputs: ['p'], name: 'scale' },
      { op: 'Cast', inputs: ['p'], outputs: ['y'], attrs: [intAttribute('to', DataType.FLOAT)], name: 'to_float' },
    ],
  });
  refuses(() => buildGradientGraph(half, { wrt: ['x'] }), PrecisionError, /node 'to_half': Cast output 'xh' is float16; use a float32 export/);
  const halfInput = buildModel({ inputs: [{ name: 'x', elemType: DataType.FLOAT16, dims: [4] }], outputs: [{ name: 'y', elemType: DataType.FLOAT16 }], nodes: [{ op: 'Neg', inputs: ['x'], outputs: ['y'] }] });
  refuses(() => buildGradientGraph(halfInput, { wrt: ['x'] }), PrecisionError, /'x': the input is float16/);
});

test('refused: shapes not pinned, unknown names, taken names, old opsets', () => {
  const symbolic = buildModel({ inputs: [{ name: 'x', dims: ['n', 3] }], outputs: [{ name: 'y' }], nodes: [{ op: 'Neg', inputs: ['x'], outputs: ['y'] }] });
  refuses(() => buildGradientGraph(symbolic, { wrt: ['x'] }), ShapeError, /input 'x' has shape \[n, 3\]: pin it/);
  refuses(() => buildGradientGraph(symbolic, { wrt: ['x'], pinShapes: { x: [2, 4] } }), GradientRequestError, /contradicts its declared \[n, 3\]/);
  refuses(() => buildGradientGraph(symbolic, { wrt: ['nope'] }), GradientRequestError, /'nope' is not a graph input/);
  refuses(() => buildGradientGraph(symbolic, { wrt: ['x'], outputs: ['z'], pinShapes: { x: [2, 3] } }), GradientRequestError, /'z' is not a graph output/);
  const taken = buildModel({ inputs: [{ name: 'x', dims: [3] }], outputs: [{ name: 'y' }], nodes: [{ op: 'Neg', inputs: ['x'], outputs: ['x_grad'] }, { op: 'Neg', inputs: ['x_grad'], outputs: ['y'] }] });
  refuses(() => buildGradientGraph(taken, { wrt: ['x'] }), GradientRequestError, /already has a value named 'x_grad'/);
  const old = buildModel({ opset: 12, inputs: [{ name: 'x', dims: [3] }], outputs: [{ name: 'y' }], nodes: [{ op: 'Softmax', inputs: ['x'], outputs: ['y'] }] });
  refuses(() => buildGradientGraph(old, { wrt: ['x'] }), AutodiffError, /opset 12; gradients are built for opset 13 and later/);
  assert.is(new GradientRequestError('x').exitCode, 2, 'a request that does not fit the graph is a usage error');
  assert.is(new UnsupportedOpError('Op', 'n').exitCode, 1);
});

test.run();
