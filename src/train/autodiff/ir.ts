import { initializers, type InitializerInfo } from '../../onnx/initializers.js';
import { defaultOpset, varintValues } from '../../onnx/node-builders.js';
import { ModelProto, NodeProto, type Message } from '../../onnx/proto.js';
import { decodeTensor, type ConstTensor } from './tensor.js';

/**
 * A read-only view of a forward graph as the gradient pass needs it: nodes with decoded
 * attributes, in file order (ONNX requires topological order), initialisers by name, and the
 * graph's inputs and outputs. The original node messages are kept so that forward nodes go
 * into the combined graph byte for byte.
 */

// onnx.proto field numbers.
const NODE_DOMAIN = 7;
const ATTR = { name: 1, f: 2, i: 3, s: 4, t: 5, floats: 7, ints: 8, strings: 9, type: 20 } as const;
const MODEL_OPSET_IMPORT = 8;

/** Constants above this many elements are left to ONNX Runtime (weights, large masks). */
export const CONST_LIMIT = 1 << 16;

export interface Attribute {
  f?: number;
  i?: number;
  s?: string;
  t?: ConstTensor;
  floats?: number[];
  ints?: number[];
  strings?: string[];
}

export interface IrNode {
  name: string;
  opType: string;
  /** '' for ai.onnx. */
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Map<string, Attribute>;
  /** Outer values the node's subgraphs (If/Loop/Scan bodies) read: dependencies the inputs do not show. */
  implicitInputs: string[];
  msg: Message;
}

export interface GraphValue {
  name: string;
  elemType: number;
  /** Numbers for fixed sizes, strings for symbolic ones, undefined when unknown (or the rank is). */
  dims: Array<number | string | undefined> | undefined;
}

export interface IrGraph {
  proto: ModelProto;
  /** The ai.onnx opset the model imports. */
  opset: number;
  /** Domains other than ai.onnx the model imports. */
  otherDomains: string[];
  nodes: IrNode[];
  initializers: Map<string, InitializerInfo>;
  inputs: GraphValue[];
  outputs: GraphValue[];
}

function f32(data: Uint8Array): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getFloat32(0, true);
}

function floats(msg: Message): number[] {
  return msg.all(ATTR.floats).flatMap((f) => {
    const view = new DataView(f.data.buffer, f.data.byteOffset, f.data.byteLength);
    return Array.from({ length: f.data.length / 4 }, (_, i) => view.getFloat32(i * 4, true));
  });
}

function decodeAttribute(msg: Message): Attribute {
  const fField = msg.first(ATTR.f);
  const attr: Attribute = {};
  if (fField) attr.f = f32(fField.data);
  const i = msg.int(ATTR.i);
  if (i !== undefined) attr.i = Number(i);
  const s = msg.first(ATTR.s);
  if (s) attr.s = new TextDecoder().decode(s.data);
  const t = msg.message(ATTR.t);
  if (t) {
    const value = decodeTensor(t, CONST_LIMIT);
    if (value) attr.t = value;
  }
  if (msg.first(ATTR.floats)) attr.floats = floats(msg);
  if (msg.first(ATTR.ints)) attr.ints = varintValues(msg.all(ATTR.ints));
  if (msg.first(ATTR.strings)) attr.strings = msg.strings(ATTR.strings);
  return attr;
}

/** Every value read inside the subgraphs, minus what they produce themselves (an over-approximation is safe). */
function subgraphReads(node: NodeProto): string[] {
  const reads = new Set<string>();
  const produced = new Set<string>();
  const walk = (n: NodeProto): void => {
    for (const a of n.attributes) {
      for (const g of a.subgraphs) {
        for (const inner of g.nodes) {
          inner.inputs.forEach((v) => reads.add(v));
          inner.outputs.forEach((v) => produced.add(v));
          walk(inner);
        }
      }
    }
  };
  walk(node);
  return [...reads].filter((v) => v !== '' && !produced.has(v));
}

function irNode(node: NodeProto): IrNode {
  return {
    name: node.name,
    opType: node.opType,
    domain: node.msg.string(NODE_DOMAIN) ?? '',
    inputs: node.inputs,
    outputs: node.outputs,
    attrs: new Map(node.attributes.map((a) => [a.name, decodeAttribute(a.msg)])),
    implicitInputs: subgraphReads(node),
    msg: node.msg,
  };
}

export const irNodeOf = (msg: Message): IrNode => irNode(new NodeProto(msg));

function graphValue(v: { name: string; tensorType: { elemType: number; dims: Array<{ value: number | string | undefined }> | undefined } | undefined }): GraphValue {
  const t = v.tensorType;
  return { name: v.name, elemType: t?.elemType ?? 0, dims: t?.dims?.map((d) => d.value) };
}

export function readGraph(model: Uint8Array): IrGraph {
  const proto = ModelProto.decode(model);
  const graph = proto.graph;
  const inits = new Map(initializers(graph).map((i) => [i.name, i]));
  return {
    proto,
    opset: defaultOpset(proto),
    otherDomains: proto.msg
      .messages(MODEL_OPSET_IMPORT)
      .map((m) => m.string(1) ?? '')
      .filter((d) => d !== '' && d !== 'ai.onnx'),
    nodes: graph.nodes.map(irNode),
    initializers: inits,
    // Inputs that are also initialisers are overridable constants (old exports): constants here.
    inputs: graph.inputs.filter((i) => !inits.has(i.name)).map(graphValue),
    outputs: graph.outputs.map(graphValue),
  };
}

/** Attribute accessors with the op's defaults. */
export const attr = {
  int: (node: IrNode, name: string, fallback: number): number => node.attrs.get(name)?.i ?? fallback,
  float: (node: IrNode, name: string, fallback: number): number => node.attrs.get(name)?.f ?? fallback,
  ints: (node: IrNode, name: string): number[] | undefined => node.attrs.get(name)?.ints,
  string: (node: IrNode, name: string, fallback: string): string => node.attrs.get(name)?.s ?? fallback,
};
