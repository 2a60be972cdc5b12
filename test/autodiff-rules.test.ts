import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { floatAttribute, intAttribute, intsAttribute, stringAttribute } from '../src/onnx/node-builders.js';
import type { Message } from '../src/onnx/proto.js';
import { DataType } from '../src/train/autodiff/tensor.js';
import { checkGradient, type Feed } from './helpers/gradient-check.js';
import { buildModel, type ConstSpec } from './helpers/onnx-build.js';
import { normals } from './helpers/random.js';

/**
 * Every vector-Jacobian rule, on one-node graphs of random inputs (attribute variants as
 * separate cases), checked against ONNX Runtime's own forward by central differences and by
 * the adjoint identity ⟨J v, u⟩ = ⟨v, Jᵀ u⟩ (see test/helpers/gradient-check.ts).
 *
 * Tolerances, stated per precision (errors as defined there):
 *  - float64, where ONNX Runtime's CPU has double kernels: h = 1e-4, truncation error O(h²):
 *    finite differences ≤ 1e-7 of the largest gradient entry, adjoint ≤ 1e-7 (seen ≤ 2e-8).
 *  - float32 (Erf, Gelu, Softplus, Conv, InstanceNormalization, Resize have float kernels only):
 *    h = 1e-2, rounding noise O(1e-7/h): finite differences and adjoint ≤ 3e-4 (seen ≤ 6e-5);
 *    ops affine in the input take h = 1, where the adjoint identity holds to float32 rounding:
 *    ≤ 1e-6 (seen ≤ 3e-8).
 */
const TOLERANCE = {
  f64: { fd: 1e-7, adjoint: 1e-7 },
  f32: { fd: 3e-4, adjoint: 3e-4 },
  f32Affine: { fd: 3e-4, adjoint: 1e-6 },
} as const;

type Precision = 'f64' | 'f32';

interface Case {
  name: string;
  precision: Precision;
  opset?: number;
  /** Differentiated inputs: dims (random normal values), optionally kept positive (for log, sqrt, division). */
  wrt: Record<string, { dims: number[]; positive?: boolean }>;
  consts?: ConstSpec[];
  nodes: Array<{ op: string; inputs: string[]; outputs?: string[]; attrs?: Message[] }>;
  affine?: boolean;
  /** Inputs (and output) in float64 though the case computes in float32. */
  float64Interface?: boolean;
  h?: number;
}

const one = (op: string, inputs: string[], attrs: Message[] = []) => [{ op, inputs, attrs }];
const cases: Case[] = [];
const add = (c: Case) => cases.push(c);

// Elementwise, broadcasting both ways.
for (const precision of ['f64'] as const) {
  add({ name: 'Add broadcast', precision, wrt: { a: { dims: [2, 3, 4] }, b: { dims: [3, 1] } }, nodes: one('Add', ['a', 'b']), affine: true });
  add({ name: 'Sub broadcast', precision, wrt: { a: { dims: [4] }, b: { dims: [2, 1, 4] } }, nodes: one('Sub', ['a', 'b']), affine: true });
  add({ name: 'Mul broadcast', precision, wrt: { a: { dims: [2, 3] }, b: { dims: [1, 3] } }, nodes: one('Mul', ['a', 'b']) });
  add({ name: 'Div', precision, wrt: { a: { dims: [2, 3] }, b: { dims: [3], positive: true } }, nodes: one('Div', ['a', 'b']) });
  add({ name: 'Pow constant 2', precision, wrt: { a: { dims: [2, 3] } }, consts: [{ name: 'c', elemType: DataType.DOUBLE, dims: [], data: [2] }], nodes: one('Pow', ['a', 'c']) });
  add({ name: 'Pow constant 1.5', precision, wrt: { a: { dims: [5], positive: true } }, consts: [{ name: 'c', elemType: DataType.DOUBLE, dims: [], data: [1.5] }], nodes: one('Pow', ['a', 'c']) });
  add({ name: 'Pow both', precision, wrt: { a: { dims: [2, 3], positive: true }, b: { dims: [3] } }, nodes: one('Pow', ['a', 'b']) });
  add({ name: 'Sum of three', precision, wrt: { a: { dims: [2, 3] }, b: { dims: [3] }, c: { dims: [2, 1] } }, nodes: one('Sum', ['a', 'b', 'c']), affine: true });
  for (const op of ['Exp', 'Neg', 'Sigmoid', 'Tanh', 'Sin', 'Cos', 'Abs', 'Relu', 'Identity']) {
    add({ name: op, precision, wrt: { x: { dims: [3, 4] } }, nodes: one(op, ['x']), affine: ['Neg', 'Identity'].includes(op) });
  }
  for (const op of ['Sqrt', 'Log', 'Reciprocal']) add({ name: op, precision, wrt: { x: { dims: [3, 4], positive: true } }, nodes: one(op, ['x']) });
  add({
    name: 'Where broadcast',
    precision,
    wrt: { a: { dims: [2, 3] }, b: { dims: [3] } },
    consts: [{ name: 'c', elemType: DataType.BOOL, dims: [2, 1], data: [1, 0] }],
    nodes: one('Where', ['c', 'a', 'b']),
    affine: true,
  });
  add({ name: 'Softmax axis -1', precision, wrt: { x: { dims: [2, 3, 5] } }, nodes: one('Softmax', ['x']) });
  add({ name: 'Softmax axis 1', precision, wrt: { x: { dims: [2, 3, 5] } }, nodes: one('Softmax', ['x'], [intAttribute('axis', 1)]) });
  add({ name: 'LogSoftmax', precision, wrt: { x: { dims: [2, 5] } }, nodes: one('LogSoftmax', ['x']) });
  add({ name: 'ReduceMean keepdims', precision, wrt: { x: { dims: [2, 3, 4] } }, nodes: one('ReduceMean', ['x'], [intsAttribute('axes', [-1])]), affine: true });
  add({ name: 'ReduceMean all, keepdims 0', precision, wrt: { x: { dims: [2, 3, 4] } }, nodes: one('ReduceMean', ['x'], [intAttribute('keepdims', 0)]), affine: true });
  add({ name: 'ReduceMean opset 18 axes input', precision, opset: 18, wrt: { x: { dims: [2, 3, 4] } }, consts: [{ name: 'axes', elemType: DataType.INT64, dims: [2], data: [0, 2] }], nodes: one('ReduceMean', ['x', 'axes'], [intAttribute('keepdims', 0)]), affine: true });
  add({ name: 'ReduceSum axes input', precision, wrt: { x: { dims: [2, 3, 4] } }, consts: [{ name: 'axes', elemType: DataType.INT64, dims: [1], data: [1] }], nodes: one('ReduceSum', ['x', 'axes'], [intAttribute('keepdims', 0)]), affine: true });
  add({ name: 'MatMul by a matrix (Gemm path)', precision, wrt: { a: { dims: [2, 3, 4] }, b: { dims: [4, 5] } }, nodes: one('MatMul', ['a', 'b']) });
  add({ name: 'MatMul batched (attention)', precision, wrt: { a: { dims: [2, 2, 3, 4] }, b: { dims: [2, 2, 4, 3] } }, nodes: one('MatMul', ['a', 'b']) });
  add({ name: 'MatMul batch broadcast', precision, wrt: { a: { dims: [2, 1, 3, 4] }, b: { dims: [3, 4, 2] } }, nodes: one('MatMul', ['a', 'b']) });
  add({ name: 'MatMul matrix by batch', precision, wrt: { a: { dims: [3, 4] }, b: { dims: [2, 4, 2] } }, nodes: one('MatMul', ['a', 'b']) });
  add({ name: 'MatMul vector operands', precision, wrt: { a: { dims: [4] }, b: { dims: [2, 4, 3] } }, nodes: one('MatMul', ['a', 'b']) });
  add({ name: 'MatMul by a vector', precision, wrt: { a: { dims: [2, 3, 4] }, b: { dims: [4] } }, nodes: one('MatMul', ['a', 'b']) });
  for (const [ta, tb] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) {
    add({
      name: `Gemm transA=${ta} transB=${tb}, alpha, beta, C broadcast`,
      precision,
      wrt: { a: { dims: ta ? [4, 3] : [3, 4] }, b: { dims: tb ? [5, 4] : [4, 5] }, c: { dims: [5] } },
      nodes: one('Gemm', ['a', 'b', 'c'], [intAttribute('transA', ta), intAttribute('transB', tb), floatAttribute('alpha', 0.75), floatAttribute('beta', 1.5)]),
    });
  }
  add({ name: 'Einsum bid,bjd->bij', precision, wrt: { a: { dims: [2, 3, 4] }, b: { dims: [2, 5, 4] } }, nodes: one('Einsum', ['a', 'b'], [stringAttribute('equation', 'bid,bjd->bij')]) });
  add({ name: 'Einsum ij,jk->i (summed letter)', precision, wrt: { a: { dims: [3, 4] }, b: { dims: [4, 2] } }, nodes: one('Einsum', ['a', 'b'], [stringAttribute('equation', 'ij,jk->i')]) });
  add({ name: 'LayerNormalization axis -1', precision, wrt: { x: { dims: [2, 3, 6] } }, consts: [{ name: 's', elemType: DataType.DOUBLE, dims: [6], data: normals(6, 7) }, { name: 'bias', elemType: DataType.DOUBLE, dims: [6], data: normals(6, 8) }], nodes: one('LayerNormalization', ['x', 's', 'bias']) });
  add({ name: 'LayerNormalization axis 1', precision, wrt: { x: { dims: [2, 3, 4] } }, consts: [{ name: 's', elemType: DataType.DOUBLE, dims: [3, 4], data: normals(12, 7) }], nodes: one('LayerNormalization', ['x', 's'], [intAttribute('axis', 1), floatAttribute('epsilon', 1e-3)]) });
  for (const opset of [18, 21]) {
    const c = opset === 18 ? 2 : 4;
    add({
      name: `GroupNormalization opset ${opset}`,
      precision,
      opset,
      wrt: { x: { dims: [2, 4, 3, 2] } },
      consts: [{ name: 's', elemType: DataType.DOUBLE, dims: [c], data: normals(c, 7) }, { name: 'bias', elemType: DataType.DOUBLE, dims: [c], data: normals(c, 8) }],
      // From opset 21 stash_type (default float32) sets the statistics' precision.
      nodes: one('GroupNormalization', ['x', 's', 'bias'], [intAttribute('num_groups', 2), ...(opset >= 21 ? [intAttribute('stash_type', DataType.DOUBLE)] : [])]),
    });
  }
  add({ name: 'Reshape', precision, wrt: { x: { dims: [2, 6] } }, consts: [{ name: 's', elemType: DataType.INT64, dims: [3], data: [3, -1, 2] }], nodes: one('Reshape', ['x', 's']), affine: true });
  add({ name: 'Flatten', precision, wrt: { x: { dims: [2, 3, 2] } }, nodes: one('Flatten', ['x'], [intAttribute('axis', 2)]), affine: true });
  add({ name: 'Unsqueeze', precision, wrt: { x: { dims: [2, 3] } }, consts: [{ name: 'a', elemType: DataType.INT64, dims: [1], data: [1] }], nodes: one('Unsqueeze', ['x', 'a']), affine: true });
  add({ name: 'Squeeze', precision, wrt: { x: { dims: [2, 1, 3] } }, consts: [{ name: 'a', elemType: DataType.INT64, dims: [1], data: [1] }], nodes: one('Squeeze', ['x', 'a']), affine: true });
  add({ name: 'Transpose', precision, wrt: { x: { dims: [2, 3, 4] } }, nodes: one('Transpose', ['x'], [intsAttribute('perm', [1, 2, 0])]), affine: true });
  add({ name: 'Concat with a constant', precision, wrt: { a: { dims: [2, 3] }, b: { dims: [2, 1] } }, consts: [{ name: 'k', elemType: DataType.DOUBLE, dims: [2, 2], data: [1, 2, 3, 4] }], nodes: one('Concat', ['a', 'k', 'b'], [intAttribute('axis', 1)]), affine: true });
  add({
    name: 'Split, one part unused',
    precision,
    wrt: { x: { dims: [2, 5] } },
    consts: [{ name: 's', elemType: DataType.INT64, dims: [2], data: [2, 3] }],
    nodes: [{ op: 'Split', inputs: ['x', 's'], outputs: ['p', 'unused'], attrs: [intAttribute('axis', 1)] }, { op: 'Identity', inputs: ['p'] }],
    affine: true,
  });
  add({
    name: 'Split equal parts, both used',
    precision,
    wrt: { x: { dims: [4, 3] } },
    nodes: [{ op: 'Split', inputs: ['x'], outputs: ['p', 'q'] }, { op: 'Mul', inputs: ['p', 'q'] }],
  });
  const ints64 = (name: string, data: number[]): ConstSpec => ({ name, elemType: DataType.INT64, dims: [data.length], data });
  add({ name: 'Slice step 1, negative start', precision, wrt: { x: { dims: [4, 5] } }, consts: [ints64('s', [1, -3]), ints64('e', [3, 100]), ints64('a', [0, 1])], nodes: one('Slice', ['x', 's', 'e', 'a']), affine: true });
  add({ name: 'Slice steps 2 and 3', precision, wrt: { x: { dims: [5, 7] } }, consts: [ints64('s', [0, 1]), ints64('e', [5, 7]), ints64('a', [0, 1]), ints64('st', [2, 3])], nodes: one('Slice', ['x', 's', 'e', 'a', 'st']), affine: true });
  add({ name: 'Gather axis 1, repeated and negative indices', precision, wrt: { x: { dims: [2, 4, 3] } }, consts: [ints64('i', [3, 0, -1, 1, 0])], nodes: one('Gather', ['x', 'i'], [intAttribute('axis', 1)]), affine: true });
  add({ name: 'Gather int32 2-D indices, opset 14', precision, opset: 14, wrt: { x: { dims: [5, 2] } }, consts: [{ name: 'i', elemType: DataType.INT32, dims: [2, 2], data: [4, 4, 0, 2] }], nodes: one('Gather', ['x', 'i']), affine: true });
  add({ name: 'Expand', precision, wrt: { x: { dims: [3, 1] } }, consts: [ints64('s', [2, 3, 4])], nodes: one('Expand', ['x', 's']), affine: true });
  add({ name: 'Pad constant', precision, wrt: { x: { dims: [2, 3] } }, consts: [ints64('p', [1, 0, 0, 2])], nodes: one('Pad', ['x', 'p']), affine: true });
  add({ name: 'Pad with negative pads', precision, wrt: { x: { dims: [3, 4] } }, consts: [ints64('p', [-1, 1, 2, -2])], nodes: one('Pad', ['x', 'p']), affine: true });
}

// float32 only in ONNX Runtime's CPU provider.
add({ name: 'Erf', precision: 'f32', wrt: { x: { dims: [3, 4] } }, nodes: one('Erf', ['x']) });
add({ name: 'Gelu (opset 20)', precision: 'f32', opset: 20, wrt: { x: { dims: [3, 4] } }, nodes: one('Gelu', ['x']) });
add({ name: 'Softplus', precision: 'f32', wrt: { x: { dims: [3, 4] } }, nodes: one('Softplus', ['x']) });
add({
  name: 'Cast float64 -> float32 -> float64',
  precision: 'f32',
  float64Interface: true,
  h: 1e-2,
  wrt: { x: { dims: [3, 2] } },
  nodes: [
    { op: 'Cast', inputs: ['x'], outputs: ['x32'], attrs: [intAttribute('to', DataType.FLOAT)] },
    { op: 'Cast', inputs: ['x32'], outputs: ['x64'], attrs: [intAttribute('to', DataType.DOUBLE)] },
    { op: 'Mul', inputs: ['x64', 'x64'] },
  ],
});
const weight = (name: string, dims: number[], seed: number): ConstSpec => ({ name, dims, data: normals(dims.reduce((a, b) => a * b, 1), seed) });
const conv = (name: string, x: number[], w: number[], attrs: Message[]) =>
  add({ name, precision: 'f32', wrt: { x: { dims: x } }, consts: [weight('w', w, 3), weight('bias', [w[0]!], 4)], nodes: one('Conv', ['x', 'w', 'bias'], attrs), affine: true });
conv('Conv 3x3 pad 1', [1, 2, 5, 5], [3, 2, 3, 3], [intsAttribute('pads', [1, 1, 1, 1])]);
conv('Conv stride 2 pad 1, even input (output_padding 1)', [2, 2, 6, 6], [3, 2, 3, 3], [intsAttribute('pads', [1, 1, 1, 1]), intsAttribute('strides', [2, 2])]);
conv('Conv stride 2, odd input', [1, 2, 7, 5], [2, 2, 3, 3], [intsAttribute('strides', [2, 2])]);
conv('Conv groups 2, dilation 2, asymmetric pads', [1, 4, 7, 6], [4, 2, 3, 2], [intAttribute('group', 2), intsAttribute('dilations', [2, 1]), intsAttribute('pads', [1, 0, 2, 1])]);
conv('Conv auto_pad SAME_UPPER stride 2', [1, 2, 5, 6], [2, 2, 3, 3], [stringAttribute('auto_pad', 'SAME_UPPER'), intsAttribute('strides', [2, 2])]);
conv('Conv 1-D', [2, 3, 9], [2, 3, 4], [intsAttribute('strides', [2]), intsAttribute('pads', [1, 2])]);
conv('Conv 1x1', [1, 4, 3, 3], [2, 4, 1, 1], []);
add({ name: 'InstanceNormalization', precision: 'f32', wrt: { x: { dims: [2, 3, 4, 2] } }, consts: [weight('s', [3], 5), weight('bias', [3], 6)], nodes: one('InstanceNormalization', ['x', 's', 'bias'], [floatAttribute('epsilon', 1e-5)]) });
add({
  name: 'InstanceNormalization scale 1 (GroupNorm export)',
  precision: 'f32',
  wrt: { x: { dims: [2, 4, 6] } },
  consts: [{ name: 's', dims: [4], data: [1, 1, 1, 1] }, { name: 'bias', dims: [4], data: [0, 0, 0, 0] }],
  nodes: one('InstanceNormalization', ['x', 's', 'bias']),
});
const resize = (name: string, x: number[], scales: number[], attrs: Message[]) =>
  add({ name, precision: 'f32', wrt: { x: { dims: x } }, consts: [{ name: 'sc', dims: [scales.length], data: scales }], nodes: one('Resize', ['x', '', 'sc'], [stringAttribute('mode', 'nearest'), ...attrs]), affine: true });
resize('Resize nearest x2 (asymmetric, floor: torch export)', [1, 2, 3, 4], [1, 1, 2, 2], [stringAttribute('coordinate_transformation_mode', 'asymmetric'), stringAttribute('nearest_mode', 'floor')]);
resize('Resize nearest x3 by 1 (half_pixel, round_prefer_floor: defaults)', [1, 1, 2, 3], [1, 1, 3, 1], []);
add({
  name: 'Resize by sizes, x2',
  precision: 'f32',
  wrt: { x: { dims: [1, 1, 2, 2] } },
  consts: [{ name: 'sz', elemType: DataType.INT64, dims: [4], data: [1, 1, 4, 4] }],
  nodes: one('Resize', ['x', '', '', 'sz'], [stringAttribute('coordinate_transformation_mode', 'asymmetric'), stringAttribute('nearest_mode', 'floor')]),
  affine: true,
});

const interfaceType = (c: Case) => (c.precision === 'f64' || c.float64Interface ? DataType.DOUBLE : DataType.FLOAT);

function inputValues(c: Case, dims: number[], positive: boolean | undefined, k: number): Feed {
  const n = dims.reduce((a, b) => a * b, 1);
  const values = normals(n, 10 + k).map((v) => (positive ? 0.5 + Math.abs(v) : v));
  return { data: values, dims, elemType: interfaceType(c) };
}

/** Nodes without outputs write `y` (the last) or a temporary; float constants follow the case's precision. */
function modelOf(c: Case): Uint8Array {
  const floatType = c.precision === 'f64' ? DataType.DOUBLE : DataType.FLOAT;
  const nodes = c.nodes.map((n, i) => ({ op: n.op, inputs: n.inputs, outputs: n.outputs ?? [i === c.nodes.length - 1 ? 'y' : `t${i}`], attrs: n.attrs ?? [] }));
  return buildModel({
    opset: c.opset ?? 17,
    inputs: Object.entries(c.wrt).map(([name, w]) => ({ name, elemType: interfaceType(c), dims: w.dims })),
    outputs: [{ name: nodes[nodes.length - 1]!.outputs[0]!, elemType: interfaceType(c) }],
    nodes,
    initializers: (c.consts ?? []).map((k) => ({ ...k, elemType: k.elemType === undefined || k.elemType === DataType.DOUBLE ? floatType : k.elemType })),
  });
}

for (const c of cases) {
  test(`${c.name} (${c.precision})`, async () => {
    const tolerance = c.precision === 'f64' ? TOLERANCE.f64 : c.affine ? TOLERANCE.f32Affine : TOLERANCE.f32;
    const feeds = Object.fromEntries(Object.entries(c.wrt).map(([name, w], k) => [name, inputValues(c, w.dims, w.positive, k)]));
    const result = await checkGradient({ model: modelOf(c), feeds, wrt: Object.keys(c.wrt), ...(c.affine ? { affine: true } : {}), ...(c.h ? { h: c.h } : {}) });
    console.log(`  ${c.name}: fd ${result.fd.toExponential(1)}, adjoint ${result.adjoint.toExponential(1)}`);
    assert.ok(result.fd <= tolerance.fd, `finite differences off by ${result.fd}`);
    assert.ok(result.adjoint <= tolerance.adjoint, `adjoint identity off by ${result.adjoint}`);
  });
}

test.run();
