import { GRAPH_INITIALIZER } from '../../onnx/initializers.js';
import { Message, intField, messageField, stringField, type Field } from '../../onnx/proto.js';
import { AutodiffError } from './errors.js';
import type { IrGraph, IrNode } from './ir.js';
import type { ValueFacts } from './shapes.js';
import { encodeTensor } from './tensor.js';

/**
 * Writes the combined forward+backward model: the original ModelProto with its graph's nodes,
 * initialisers, inputs and outputs replaced. Forward nodes and initialisers are carried as their
 * original bytes (an external-data weight stays a reference to the same file and offset, so the
 * model must sit next to the source's data files: see edited-model-cache.ts); folded values
 * become small inline initialisers; whatever no output needs is dropped.
 */

const GRAPH = { node: 1, input: 11, output: 12, valueInfo: 13 } as const;
const VALUE_INFO = { name: 1, type: 2 } as const;
/** protobuf messages (and ONNX Runtime's parser) stop at 2 GiB. */
export const PROTOBUF_LIMIT = 2 ** 31 - 1;

export interface TensorSpec {
  name: string;
  elemType: number;
  dims: number[];
}

export function valueInfo(spec: TensorSpec): Message {
  const shape = new Message(spec.dims.map((d) => messageField(1, new Message([intField(1, d)]))));
  const tensorType = new Message([intField(1, spec.elemType), messageField(2, shape)]);
  return new Message([stringField(VALUE_INFO.name, spec.name), messageField(VALUE_INFO.type, new Message([messageField(1, tensorType)]))]);
}

export interface Assembly {
  graph: IrGraph;
  facts: ReadonlyMap<string, ValueFacts>;
  folded: ReadonlySet<IrNode>;
  /** Nodes after the forward ones (backward), in order. */
  extraNodes: readonly Message[];
  extraInitializers: readonly Message[];
  /** Graph inputs in order; those no kept node reads are dropped unless listed in `keepInputs`. */
  inputs: readonly TensorSpec[];
  keepInputs: ReadonlySet<string>;
  outputs: readonly TensorSpec[];
}

export interface Assembled {
  model: Uint8Array;
  inputs: TensorSpec[];
  nodes: number;
}

const outputsOf = (msg: Message): string[] => msg.strings(2);
const inputsOf = (msg: Message): string[] => msg.strings(1);
const tensorName = (msg: Message): string => msg.string(8) ?? '';

export function assemble(a: Assembly): Assembled {
  const { graph } = a;
  const graphMsg = graph.proto.graph.msg;
  const nodeField = new Map(graphMsg.all(GRAPH.node).map((f) => [f.child, f]));
  const forward = graph.nodes.filter((n) => !a.folded.has(n));
  const candidates: Array<{ msg: Message; reads: string[]; field?: Field }> = [
    ...forward.map((n) => ({ msg: n.msg, reads: [...n.inputs, ...n.implicitInputs], ...(nodeField.get(n.msg) ? { field: nodeField.get(n.msg)! } : {}) })),
    ...a.extraNodes.map((msg) => ({ msg, reads: inputsOf(msg) })),
  ];
  // Liveness from the outputs back.
  const needed = new Set(a.outputs.map((o) => o.name));
  const kept: typeof candidates = [];
  for (let k = candidates.length - 1; k >= 0; k--) {
    const c = candidates[k]!;
    if (!outputsOf(c.msg).some((o) => needed.has(o))) continue;
    kept.push(c);
    for (const v of c.reads) if (v !== '') needed.add(v);
  }
  kept.reverse();
  const foldedOutputs = [...a.folded].flatMap((n) => n.outputs.filter((o) => needed.has(o)));
  const initFields = [
    ...graphMsg.all(GRAPH_INITIALIZER).filter((f) => f.child && needed.has(tensorName(f.child))),
    ...foldedOutputs.map((name) => messageField(GRAPH_INITIALIZER, encodeTensor(name, a.facts.get(name)!.value!))),
    ...a.extraInitializers.filter((m) => needed.has(tensorName(m))).map((m) => messageField(GRAPH_INITIALIZER, m)),
  ];
  const inputs = a.inputs.filter((i) => needed.has(i.name) || a.keepInputs.has(i.name));
  graphMsg.set(GRAPH.node, kept.map((c) => c.field ?? messageField(GRAPH.node, c.msg)));
  graphMsg.set(GRAPH_INITIALIZER, initFields);
  graphMsg.set(GRAPH.input, inputs.map((i) => messageField(GRAPH.input, valueInfo(i))));
  graphMsg.set(GRAPH.output, a.outputs.map((o) => messageField(GRAPH.output, valueInfo(o))));
  // Shapes are re-inferred by ONNX Runtime; the export's symbolic ones no longer apply.
  graphMsg.set(GRAPH.valueInfo, []);
  const model = graph.proto.encode();
  if (model.length > PROTOBUF_LIMIT) {
    throw new AutodiffError(`the combined graph is ${(model.length / 2 ** 30).toFixed(2)} GiB, over protobuf's 2 GiB limit: export the model with its weights as external data`);
  }
  return { model, inputs: [...inputs], nodes: kept.length };
}
