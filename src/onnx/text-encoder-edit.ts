import { AttributeProto, ElemType, Message, ModelProto, NodeProto, ValueInfoProto, messageField, type GraphProto } from './proto.js';
import { appendInitializer, floatInitializer, initializers } from './initializers.js';

/**
 * Graph surgery on a CLIP text encoder export (transformers CLIPTextModel through torch.onnx /
 * optimum), bytes in, bytes out:
 * - CLIP skip: a new output holding final_layer_norm(hidden_states[-k]), computed by a copy of
 *   the graph's own final-norm nodes (same op pattern, same weight initialisers) fed from the
 *   residual stream k-1 layers before the end, as A1111 (and diffusers' clip_skip = k-1) do;
 * - textual inversion: the token-embedding table the input Gather reads grows by the embedding
 *   rows (Concat of the original table and the new rows, both constants, which ONNX Runtime
 *   folds at load), so ids vocab, vocab+1, ... select the new vectors.
 * Existing outputs are untouched.
 */

export const LAST_HIDDEN_STATE = 'last_hidden_state';

// onnx.proto field numbers of what this file adds.
const GRAPH_NODE = 1;
const GRAPH_OUTPUT = 12;
const NODE_NAME = 3;

/** The rows one embedding adds: [count, width] row-major. */
export interface EmbeddingRows {
  vectors: Float32Array;
  count: number;
  width: number;
}

export interface TextEncoderEdit {
  /** A1111 numbering: 1 = last layer (no change), 2 = penultimate, ... */
  clipSkip?: number;
  embeddings?: readonly EmbeddingRows[];
}

export interface EditedTextEncoder {
  model: Uint8Array;
  /** The output to read the prompt's hidden states from. */
  hiddenOutput: string;
  /** Per embedding, in the given order, the token ids its vectors got. */
  embeddingIds: number[][];
}

/** Thrown when the graph is not the CLIP text encoder structure the edits understand. */
export class TextEncoderStructureError extends Error {}

function fail(message: string): never {
  throw new TextEncoderStructureError(`text encoder graph not recognised: ${message}`);
}

/** Who produces each value, and the graph's initialiser names. */
class GraphIndex {
  readonly producer = new Map<string, NodeProto>();
  readonly nodes: NodeProto[];

  constructor(readonly graph: GraphProto) {
    this.nodes = graph.nodes;
    for (const node of this.nodes) for (const out of node.outputs) this.producer.set(out, node);
  }

  /** Whether value `a` is reachable backwards from value `b` (a = b counts). */
  feeds(a: string, b: string): boolean {
    const seen = new Set<string>();
    const todo = [b];
    while (todo.length) {
      const v = todo.pop()!;
      if (v === a) return true;
      if (seen.has(v)) continue;
      seen.add(v);
      const p = this.producer.get(v);
      if (p) todo.push(...p.inputs.filter((n) => n !== ''));
    }
    return false;
  }

  /** For a residual Add (skip + branch(skip)), the skip input; undefined for any other node. */
  residualSkip(value: string): string | undefined {
    const node = this.producer.get(value);
    if (!node || node.opType !== 'Add') return undefined;
    const [a, b] = node.inputs;
    if (!a || !b) return undefined;
    if (a !== b && this.feeds(a, b)) return a;
    if (a !== b && this.feeds(b, a)) return b;
    return undefined;
  }
}

export interface EncoderStructure {
  /** HF `hidden_states`: the embeddings' output, then each encoder layer's output. */
  hiddenStates: string[];
  /** The output final_layer_norm is applied to (= hiddenStates at the end). */
  finalNormInput: string;
  layers: number;
}

/**
 * Finds the residual stream: walking back from last_hidden_state to the first residual Add
 * (the last layer's output), then from Add to Add along each skip connection. A CLIP layer has
 * two (attention, MLP), so the stream holds 2N+1 values from the embeddings to the last layer.
 * Where node names carry torch's module path (/text_model/encoder/layers.3/...), they must agree.
 */
export function findEncoderStructure(graph: GraphProto, index = new GraphIndex(graph)): EncoderStructure {
  if (!graph.outputs.some((o) => o.name === LAST_HIDDEN_STATE)) fail(`no '${LAST_HIDDEN_STATE}' output`);
  const top = lastResidual(index);
  const stream = [top];
  for (let skip = index.residualSkip(top); skip !== undefined; skip = index.residualSkip(skip)) stream.unshift(skip);
  if (stream.length < 3 || stream.length % 2 === 0) {
    fail(`found ${stream.length - 1} residual connections; a CLIP encoder has two per layer`);
  }
  const hiddenStates = stream.filter((_, i) => i % 2 === 0);
  hiddenStates.slice(1).forEach((value, layer) => {
    const named = /\/layers\.(\d+)\//.exec(index.producer.get(value)?.name ?? '');
    if (named && Number(named[1]) !== layer) fail(`residual stream layer ${layer} is produced by node ${index.producer.get(value)!.name}`);
  });
  return { hiddenStates, finalNormInput: top, layers: hiddenStates.length - 1 };
}

/** The residual Add nearest to last_hidden_state, searching backwards breadth-first. */
function lastResidual(index: GraphIndex): string {
  const seen = new Set<string>();
  const queue = [LAST_HIDDEN_STATE];
  while (queue.length) {
    const value = queue.shift()!;
    if (seen.has(value)) continue;
    seen.add(value);
    if (index.residualSkip(value) !== undefined) return value;
    const p = index.producer.get(value);
    if (p) queue.push(...p.inputs.filter((n) => n !== ''));
  }
  fail(`no residual Add feeds '${LAST_HIDDEN_STATE}'`);
}

/** The nodes computing `output` from `input` (in graph order); constants they read are shared, not copied. */
function nodesBetween(index: GraphIndex, input: string, output: string): NodeProto[] {
  const upstream = new Set<NodeProto>();
  const todo = [output];
  const seen = new Set<string>();
  while (todo.length) {
    const v = todo.pop()!;
    if (v === input || seen.has(v)) continue;
    seen.add(v);
    const p = index.producer.get(v);
    if (!p) continue;
    upstream.add(p);
    todo.push(...p.inputs.filter((n) => n !== ''));
  }
  const dependent = new Set<string>([input]);
  const out: NodeProto[] = [];
  for (const node of index.nodes) {
    if (!upstream.has(node) || !node.inputs.some((n) => dependent.has(n))) continue;
    out.push(node);
    for (const o of node.outputs) dependent.add(o);
  }
  return out;
}

function clipSkipOutputName(k: number): string {
  return `hidden_state_clip_skip_${k}`;
}

function addClipSkip(graph: GraphProto, k: number): string {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`clip skip must be a whole number >= 1, got ${k}`);
  if (k === 1) return LAST_HIDDEN_STATE;
  const index = new GraphIndex(graph);
  const structure = findEncoderStructure(graph, index);
  if (k > structure.layers) throw new RangeError(`clip skip ${k} needs more than this text encoder's ${structure.layers} layers`);
  const source = structure.hiddenStates[structure.hiddenStates.length - k]!;
  const norm = nodesBetween(index, structure.finalNormInput, LAST_HIDDEN_STATE);
  if (norm.length === 0) fail('nothing between the last layer and last_hidden_state');
  const outputName = clipSkipOutputName(k);
  const suffix = `__clip_skip_${k}`;
  const renamed = new Map<string, string>([[structure.finalNormInput, source]]);
  for (const node of norm) for (const o of node.outputs) renamed.set(o, o === LAST_HIDDEN_STATE ? outputName : o + suffix);
  for (const node of norm) {
    const copy = new NodeProto(Message.decode(node.msg.encode()));
    copy.inputs = node.inputs.map((n) => renamed.get(n) ?? n);
    copy.outputs = node.outputs.map((n) => renamed.get(n)!);
    copy.msg.setString(NODE_NAME, node.name + suffix);
    graph.appendNode(copy);
  }
  const declared = graph.outputs.find((o) => o.name === LAST_HIDDEN_STATE)!;
  // Same type and shape as last_hidden_state (float16 exports stay float16).
  const output = new ValueInfoProto(Message.decode(declared.msg.encode()));
  output.name = outputName;
  graph.msg.append(GRAPH_OUTPUT, [messageField(GRAPH_OUTPUT, output.msg)]);
  return outputName;
}

const TOKEN_TABLE = 'text_model.embeddings.token_embedding.weight';
/** Ops that pass token ids through unchanged in value. */
const SAME_VALUES = new Set(['Cast', 'Reshape', 'Identity', 'Flatten', 'Squeeze', 'Unsqueeze']);

/**
 * The Gather that looks token ids up: the one reading the conventional table name, else the
 * only Gather whose table is a 2-D initialiser and whose indices come from input_ids.
 */
function tokenGather(graph: GraphProto, index: GraphIndex): { node: NodeProto; table: string; vocab: number; width: number; elemType: number } {
  const inits = new Map(initializers(graph).map((i) => [i.name, i]));
  // optimum de-duplicates equal weights through Identity nodes: look through them.
  const tableOf = (value: string): string => {
    const p = index.producer.get(value);
    return p?.opType === 'Identity' && p.inputs[0] ? tableOf(p.inputs[0]) : value;
  };
  // Indices that are input_ids themselves, up to casts and reshapes (not, e.g., positions from its shape).
  const isIds = (value: string): boolean => {
    if (graph.inputs.some((i) => i.name === value && value === 'input_ids')) return true;
    const p = index.producer.get(value);
    return p !== undefined && SAME_VALUES.has(p.opType) && isIds(p.inputs[0] ?? '');
  };
  const candidates = index.nodes.filter((n) => {
    if (n.opType !== 'Gather') return false;
    const table = inits.get(tableOf(n.inputs[0] ?? ''));
    return table?.dims.length === 2 && (table.name === TOKEN_TABLE || isIds(n.inputs[1] ?? ''));
  });
  const named = candidates.filter((n) => tableOf(n.inputs[0]!) === TOKEN_TABLE);
  const hits = named.length ? named : candidates;
  if (hits.length !== 1) fail(`expected one token-embedding Gather, found ${hits.length}`);
  const table = inits.get(tableOf(hits[0]!.inputs[0]!))!;
  if (table.elemType !== ElemType.FLOAT && table.elemType !== ElemType.FLOAT16) fail(`token table ${table.name} has element type ${table.elemType}`);
  return { node: hits[0]!, table: table.name, vocab: table.dims[0]!, width: table.dims[1]!, elemType: table.elemType };
}

/** The token-embedding lookup of a CLIP text encoder graph: its Gather, the table's size and element type. */
export function findTokenGather(graph: GraphProto): ReturnType<typeof tokenGather> {
  return tokenGather(graph, new GraphIndex(graph));
}

function addEmbeddings(graph: GraphProto, embeddings: readonly EmbeddingRows[]): number[][] {
  if (embeddings.length === 0) return [];
  const index = new GraphIndex(graph);
  const { node, vocab, width, elemType } = tokenGather(graph, index);
  const total = embeddings.reduce((n, e) => n + e.count, 0);
  const rows = new Float32Array(total * width);
  const ids: number[][] = [];
  let next = 0;
  for (const e of embeddings) {
    if (e.width !== width) throw new RangeError(`embedding width ${e.width} differs from the token table's ${width}`);
    if (e.vectors.length !== e.count * width) throw new RangeError(`embedding has ${e.vectors.length} values for ${e.count} x ${width}`);
    rows.set(e.vectors, next * width);
    ids.push(Array.from({ length: e.count }, (_, i) => vocab + next + i));
    next += e.count;
  }
  const rowsName = 'diffuse.textual_inversion.rows';
  const tableName = 'diffuse.textual_inversion.token_table';
  appendInitializer(graph, floatInitializer(rowsName, elemType, [total, width], rows));
  const concat = NodeProto.create('Concat', 'diffuse.textual_inversion.concat', [node.inputs[0]!, rowsName], [tableName], [AttributeProto.int('axis', 0)]);
  node.inputs = [tableName, ...node.inputs.slice(1)];
  insertBefore(graph, node, concat);
  return ids;
}

/** Nodes must stay topologically sorted: the new node goes right before its consumer. */
function insertBefore(graph: GraphProto, anchor: NodeProto, node: NodeProto): void {
  const fields = graph.msg.all(GRAPH_NODE);
  const at = fields.findIndex((f) => f.child === anchor.msg);
  if (at < 0) throw new Error('anchor node not in graph');
  fields.splice(at, 0, messageField(GRAPH_NODE, node.msg));
  graph.msg.set(GRAPH_NODE, fields);
}

export function editTextEncoder(model: Uint8Array, edit: TextEncoderEdit): EditedTextEncoder {
  const proto = ModelProto.decode(model);
  const graph = proto.graph;
  const hiddenOutput = addClipSkip(graph, edit.clipSkip ?? 1);
  const embeddingIds = addEmbeddings(graph, edit.embeddings ?? []);
  return { model: proto.encode(), hiddenOutput, embeddingIds };
}
