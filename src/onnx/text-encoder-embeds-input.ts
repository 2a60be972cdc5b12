import { initializers } from './initializers.js';
import { Message, ModelProto, ValueInfoProto, intField, messageField, type GraphProto } from './proto.js';
import { findTokenGather } from './text-encoder-edit.js';

/**
 * Cuts a CLIP text encoder's token-embedding lookup out of the graph, bytes in, bytes out: the
 * Gather that reads the token table is removed and its consumers read a new graph input
 * `inputs_embeds` [batch, sequence, width] instead (what transformers' CLIPTextModel computes
 * as token_embedding(input_ids)); position embeddings and everything after stay in the graph.
 * A textual-inversion trainer feeds the prompt's embedding rows (the learned vectors among
 * them) and differentiates with respect to them. The table, no longer read, is dropped.
 * input_ids stays an input where other nodes still read it (its shape; the pooler's argmax).
 */

export const INPUTS_EMBEDS = 'inputs_embeds';

export interface EmbedsInputModel {
  model: Uint8Array;
  /** The new input's name. */
  input: string;
  vocab: number;
  width: number;
  /** The token table's initialiser name (in the original model, to read rows from). */
  table: string;
  /** Whether input_ids is still an input (read by nodes besides the lookup). */
  keepsInputIds: boolean;
}

// onnx.proto field numbers.
const GRAPH = { node: 1, initializer: 5, input: 11 } as const;
const TENSOR_TYPE_SHAPE = 2;
const SHAPE_DIM = 1;
const DIM_VALUE = 1;

/** Removes nodes whose outputs nothing reads, then initialisers nothing reads. */
function dropDead(graph: GraphProto): void {
  const outputs = new Set(graph.outputs.map((o) => o.name));
  for (let changed = true; changed; ) {
    const read = new Set(graph.nodes.flatMap((n) => n.inputs));
    const fields = graph.msg.all(GRAPH.node);
    const live = fields.filter((f) => {
      const outs = f.child ? f.child.strings(2) : [];
      return outs.some((o) => read.has(o) || outputs.has(o));
    });
    changed = live.length !== fields.length;
    if (changed) graph.msg.set(GRAPH.node, live);
  }
  const read = new Set(graph.nodes.flatMap((n) => n.inputs));
  const unread = new Set(initializers(graph).filter((i) => !read.has(i.name)).map((i) => i.msg));
  graph.msg.set(
    GRAPH.initializer,
    graph.msg.all(GRAPH.initializer).filter((f) => !f.child || !unread.has(f.child)),
  );
}

export function takeInputsEmbeds(model: Uint8Array): EmbedsInputModel {
  const proto = ModelProto.decode(model);
  const graph = proto.graph;
  const { node, table, vocab, width, elemType } = findTokenGather(graph);
  const looked = node.outputs[0]!;
  const idsInput = graph.inputs.find((i) => i.name === 'input_ids');
  if (!idsInput?.tensorType) throw new Error("text encoder graph has no 'input_ids' input");
  // inputs_embeds: input_ids' (batch, sequence) dimensions, then the width.
  const embeds = Message.decode(idsInput.msg.encode());
  const info = new ValueInfoProto(embeds);
  info.name = INPUTS_EMBEDS;
  info.tensorType!.elemType = elemType;
  info.tensorType!.msg.message(TENSOR_TYPE_SHAPE)!.append(SHAPE_DIM, [messageField(SHAPE_DIM, new Message([intField(DIM_VALUE, width)]))]);
  graph.msg.set(
    GRAPH.node,
    graph.msg.all(GRAPH.node).filter((f) => f.child !== node.msg),
  );
  for (const n of graph.nodes) if (n.inputs.includes(looked)) n.inputs = n.inputs.map((v) => (v === looked ? INPUTS_EMBEDS : v));
  dropDead(graph);
  const keepsInputIds = graph.nodes.some((n) => n.inputs.includes('input_ids'));
  const inputs = graph.msg.all(GRAPH.input).filter((f) => keepsInputIds || f.child !== idsInput.msg);
  graph.msg.set(GRAPH.input, [...inputs, messageField(GRAPH.input, embeds)]);
  return { model: proto.encode(), input: INPUTS_EMBEDS, vocab, width, table, keepsInputIds };
}
