import { AttributeProto, ModelProto, NodeProto, type ElemType, type GraphProto, type ValueInfoProto } from './proto.js';

/**
 * Small, pure edits of an ONNX model's interface (bytes in, bytes out), enough to turn one
 * export into the variants other exporters produce: another dtype for an input or output, a
 * fixed batch dimension. Everything not named by an edit is carried over byte for byte.
 */

function edit(model: Uint8Array, change: (graph: GraphProto) => void): Uint8Array {
  const proto = ModelProto.decode(model);
  change(proto.graph);
  return proto.encode();
}

function requireValue(values: readonly ValueInfoProto[], name: string, what: string): ValueInfoProto {
  const hit = values.find((v) => v.name === name);
  if (!hit) throw new Error(`graph has no ${what} '${name}' (has ${values.map((v) => v.name).join(', ')})`);
  return hit;
}

function tensorTypeOf(value: ValueInfoProto): NonNullable<ValueInfoProto['tensorType']> {
  const t = value.tensorType;
  if (!t) throw new Error(`'${value.name}' is not a tensor`);
  return t;
}

/**
 * Re-points every node input reading `from` to `to`, in nested control-flow graphs too (they
 * may read outer values). A subgraph that declares its own value of the same name would be
 * wrongly renamed; exporters of diffusion models emit no such shadowing.
 */
function renameUses(graph: GraphProto, from: string, to: string): void {
  for (const node of graph.nodes) {
    const inputs = node.inputs;
    if (inputs.includes(from)) node.inputs = inputs.map((n) => (n === from ? to : n));
    for (const attr of node.attributes) for (const sub of attr.subgraphs) renameUses(sub, from, to);
  }
}

/**
 * Changes only the declared element type of a graph input. Valid when every consumer is
 * type-generic up to a Cast: optimum's UNet reads `timestep` through Expand → Unsqueeze →
 * Cast(to=float) (time_proj), so float32 and int64 timesteps both run (checked on the tiny
 * fixture with onnx; diffusers' own exports declare int64 there).
 */
export function setInputElemType(model: Uint8Array, inputName: string, elemType: ElemType): Uint8Array {
  return edit(model, (graph) => {
    tensorTypeOf(requireValue(graph.inputs, inputName, 'input')).elemType = elemType;
  });
}

/**
 * Makes the graph take `inputName` as `newElemType`: the input keeps its name and shape, and a
 * Cast back to the original type feeds the old consumers, which now read `<name>__orig`.
 */
export function wrapInputCast(model: Uint8Array, inputName: string, newElemType: ElemType): Uint8Array {
  return edit(model, (graph) => {
    const type = tensorTypeOf(requireValue(graph.inputs, inputName, 'input'));
    const original = type.elemType;
    const inner = `${inputName}__orig`;
    renameUses(graph, inputName, inner);
    type.elemType = newElemType;
    graph.prependNode(NodeProto.create('Cast', `${inputName}__cast`, [inputName], [inner], [AttributeProto.int('to', original)]));
  });
}

/**
 * Makes the graph return `outputName` as `newElemType`: its producer now writes
 * `<name>__orig`, and a final Cast produces the declared output.
 */
export function wrapOutputCast(model: Uint8Array, outputName: string, newElemType: ElemType): Uint8Array {
  return edit(model, (graph) => {
    const type = tensorTypeOf(requireValue(graph.outputs, outputName, 'output'));
    const inner = `${outputName}__orig`;
    const producer = graph.nodes.find((n) => n.outputs.includes(outputName));
    if (!producer) throw new Error(`no node produces '${outputName}' (a graph input or initialiser passed through)`);
    producer.outputs = producer.outputs.map((n) => (n === outputName ? inner : n));
    renameUses(graph, outputName, inner);
    for (const info of graph.valueInfo) if (info.name === outputName) info.name = inner;
    type.elemType = newElemType;
    graph.appendNode(NodeProto.create('Cast', `${outputName}__cast`, [inner], [outputName], [AttributeProto.int('to', newElemType)]));
  });
}

/** Declares one axis of a graph input, output or value_info entry as a fixed size. */
export function fixDim(model: Uint8Array, valueName: string, axis: number, size: number): Uint8Array {
  return edit(model, (graph) => {
    const value = requireValue([...graph.inputs, ...graph.outputs, ...graph.valueInfo], valueName, 'input, output or value_info');
    const dims = tensorTypeOf(value).dims;
    const dim = dims?.[axis];
    if (!dim) throw new Error(`'${valueName}' has no axis ${axis} (rank ${dims?.length ?? 'unknown'})`);
    dim.value = size;
  });
}
