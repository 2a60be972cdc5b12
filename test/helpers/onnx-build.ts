import { floatInitializer } from '../../src/onnx/initializers.js';
import { makeNode } from '../../src/onnx/node-builders.js';
import { ElemType, Message, intField, messageField, stringField } from '../../src/onnx/proto.js';
import { encodeTensor } from '../../src/train/autodiff/tensor.js';

/**
 * Small ONNX models written field by field with src/onnx's builders, for tests that need a
 * graph of a few nodes (one op and its attribute variants) rather than an export.
 */

export interface ValueSpec {
  name: string;
  /** float32 unless given. */
  elemType?: number;
  /** Numbers for fixed sizes, strings for symbolic ones; undefined for an unknown shape. */
  dims?: ReadonlyArray<number | string>;
}

export interface NodeSpec {
  op: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attrs?: readonly Message[];
  domain?: string;
  name?: string;
}

export interface ConstSpec {
  name: string;
  elemType?: number;
  dims: readonly number[];
  data: ArrayLike<number>;
}

export interface ModelSpec {
  opset?: number;
  inputs: readonly ValueSpec[];
  outputs: readonly ValueSpec[];
  nodes: readonly NodeSpec[];
  initializers?: readonly ConstSpec[];
  /** Extra operator-set imports, e.g. com.microsoft. */
  domains?: readonly string[];
}

function valueInfo(v: ValueSpec): Message {
  const tensorType = new Message([intField(1, v.elemType ?? ElemType.FLOAT)]);
  if (v.dims) {
    const dims = v.dims.map((d) => messageField(1, new Message([typeof d === 'number' ? intField(1, d) : stringField(2, d)])));
    tensorType.append(1, [messageField(2, new Message(dims))]);
  }
  return new Message([stringField(1, v.name), messageField(2, new Message([messageField(1, tensorType)]))]);
}

function initializer(c: ConstSpec): Message {
  if (c.elemType === ElemType.FLOAT16) return floatInitializer(c.name, c.elemType, c.dims, Float32Array.from(c.data));
  return encodeTensor(c.name, { elemType: c.elemType ?? ElemType.FLOAT, dims: [...c.dims], data: Array.from(c.data) });
}

const opsetImport = (domain: string, version: number): Message => new Message([stringField(1, domain), intField(2, version)]);

export function buildModel(spec: ModelSpec): Uint8Array {
  const graph = new Message([
    ...spec.nodes.map((n, i) => messageField(1, makeNode(n.op, n.name ?? `${n.op}_${i}`, n.inputs, n.outputs, n.attrs ?? [], n.domain))),
    stringField(2, 'test'),
    ...(spec.initializers ?? []).map((c) => messageField(5, initializer(c))),
    ...spec.inputs.map((v) => messageField(11, valueInfo(v))),
    ...spec.outputs.map((v) => messageField(12, valueInfo(v))),
  ]);
  const model = new Message([
    intField(1, 10),
    stringField(2, 'diffuse-test'),
    messageField(7, graph),
    messageField(8, opsetImport('', spec.opset ?? 17)),
    ...(spec.domains ?? []).map((d) => messageField(8, opsetImport(d, 1))),
  ]);
  return model.encode();
}
