import { initializers, isExternal } from './initializers.js';
import { Message, ModelProto, messageField, type GraphProto, type NodeProto } from './proto.js';
import { MS_DOMAIN, defaultOpset, ensureOpsetImport, floatAttribute, intAttribute, intsAttr, intAttr, makeNode, varintValues } from './node-builders.js';

export { MS_DOMAIN };

/**
 * Replaces the attention torch exports from scaled_dot_product_attention with ONNX Runtime's
 * fused com.microsoft.MultiHeadAttention, bytes in, bytes out. The export materialises the
 * [B, heads, S, L] scores and runs a separate Softmax over them (a quarter of an SD 1.5 step on
 * the CPU and most of its peak memory); the fused kernel never holds all the scores at once.
 *
 * Recognised (torch 2.x SDPA export, as optimum writes diffusers' UNets):
 *   q = Transpose[0,2,1,3](Reshape(Q, [B,-1,H,D]))   k = Transpose[0,2,3,1](Reshape(K, ...))
 *   v = Transpose[0,2,1,3](Reshape(V, ...))
 *   out = Reshape(Transpose[0,2,1,3](MatMul(Softmax(MatMul(q * sqrt(s), k * sqrt(s))), v)), [B,-1,H*D])
 * where s is a constant (SDPA's explicit `scale`) or computed from q's last dimension as
 * 1/sqrt(D) (SDPA's default). Q, K, V are the [B, S|L, hidden] projections; the fused node
 * reads them and writes `out` under its original name, so to_out is untouched. The nodes only
 * the pattern used (its Reshape/Transpose/scale shape arithmetic) go with it. Anything else is
 * left as it is and counted. Initialisers are never touched, so a graph with external data
 * keeps working when written next to its original data file.
 */

export interface FusedAttentionModel {
  model: Uint8Array;
  /** Attention blocks replaced by a MultiHeadAttention node. */
  fused: number;
  /** Softmax nodes left as they were because the pattern around them was not recognised. */
  skipped: number;
}

// onnx.proto field numbers used here.
const GRAPH_NODE = 1;
const ATTRIBUTE = { t: 5 } as const;
const TENSOR = { dataType: 2, floatData: 4, int64Data: 7, rawData: 9 } as const;
const DATA_TYPE = { FLOAT: 1, INT64: 7 } as const;

export interface Attention {
  query: string;
  key: string;
  value: string;
  output: string;
  numHeads: number;
  scale: number;
  /** The Reshape producing `output`: the fused node takes its place in the node order. */
  anchor: NodeProto;
  /** The nodes the pattern consists of (the removal of their dead inputs follows). */
  core: NodeProto[];
  /** Its two products: the scores q·kᵀ before Softmax and the context probs·v after it. */
  scores: NodeProto;
  context: NodeProto;
}

/** Producers, consumers and constants of one graph, read once. */
export class GraphIndex {
  readonly producer = new Map<string, NodeProto>();
  readonly consumers = new Map<string, NodeProto[]>();
  readonly nodes: NodeProto[];
  readonly graphOutputs: Set<string>;
  private readonly inits: Map<string, ReturnType<typeof initializers>[number]>;

  constructor(graph: GraphProto) {
    this.nodes = graph.nodes;
    for (const node of this.nodes) {
      for (const out of node.outputs) this.producer.set(out, node);
      for (const input of node.inputs) {
        if (input === '') continue;
        const list = this.consumers.get(input) ?? [];
        list.push(node);
        this.consumers.set(input, list);
      }
    }
    this.graphOutputs = new Set(graph.outputs.map((o) => o.name));
    this.inits = new Map(initializers(graph).map((i) => [i.name, i]));
  }

  /** The producer of `value` if it is an `opType` node. */
  op(value: string | undefined, opType: string): NodeProto | undefined {
    const p = value === undefined ? undefined : this.producer.get(value);
    return p?.opType === opType ? p : undefined;
  }

  /** The values of an inline int64 or float constant (Constant node or initialiser), else undefined. */
  constant(value: string | undefined): number[] | undefined {
    if (value === undefined) return undefined;
    const init = this.inits.get(value);
    if (init) return tensorValues(init.msg);
    const node = this.op(value, 'Constant');
    const tensor = node?.attributes.find((a) => a.name === 'value')?.msg.message(ATTRIBUTE.t);
    return tensor ? tensorValues(tensor) : undefined;
  }

  /**
   * `already` and `seeds` plus every node, upstream of the seeds, whose outputs only removed nodes
   * read (transitively: the shape arithmetic a removed pattern carried). Values in `kept` stay
   * (their producers are not followed), and so do nodes holding subgraphs.
   */
  withDeadProducers(seeds: readonly NodeProto[], kept: ReadonlySet<string>, already: ReadonlySet<NodeProto> = new Set()): Set<NodeProto> {
    const gone = new Set([...already, ...seeds]);
    const todo = seeds.flatMap((n) => n.inputs).filter((v) => !kept.has(v));
    while (todo.length) {
      const p = this.producer.get(todo.pop()!);
      if (!p || gone.has(p) || p.attributes.some((a) => a.subgraphs.length > 0)) continue;
      const dead = p.outputs.every((o) => !this.graphOutputs.has(o) && (this.consumers.get(o) ?? []).every((c) => gone.has(c)));
      if (!dead) continue;
      gone.add(p);
      todo.push(...p.inputs.filter((v) => !kept.has(v)));
    }
    return gone;
  }

  /** The shape of `value` if it is an initialiser. */
  initializerDims(value: string | undefined): readonly number[] | undefined {
    return value === undefined ? undefined : this.inits.get(value)?.dims;
  }

  /** The size of the last axis of `value` when a weight fixes it: MatMul by, or Add of, an initialiser. */
  lastDim(value: string): number | undefined {
    const p = this.producer.get(value);
    if (!p || (p.opType !== 'MatMul' && p.opType !== 'Add')) return undefined;
    for (const input of p.inputs) {
      const dims = this.initializerDims(input);
      if (dims && dims.length >= (p.opType === 'MatMul' ? 2 : 1)) return dims[dims.length - 1];
    }
    return undefined;
  }
}

function tensorValues(tensor: Message): number[] | undefined {
  if (isExternal(tensor)) return undefined;
  const type = Number(tensor.int(TENSOR.dataType) ?? 0n);
  const raw = tensor.first(TENSOR.rawData)?.data;
  if (type === DATA_TYPE.INT64) {
    if (raw) {
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      return Array.from({ length: raw.length / 8 }, (_, i) => Number(view.getBigInt64(i * 8, true)));
    }
    return varintValues(tensor.all(TENSOR.int64Data));
  }
  if (type === DATA_TYPE.FLOAT) {
    const bytes = raw ?? concat(tensor.all(TENSOR.floatData).map((f) => f.data));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return Array.from({ length: bytes.length / 4 }, (_, i) => view.getFloat32(i * 4, true));
  }
  return undefined;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

const same = (a: readonly number[] | undefined, b: readonly number[]): boolean => a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);

/** A head split: Transpose[perm](Reshape(x, [B, -1, H, D])). Returns x, H and the two nodes. */
function headSplit(index: GraphIndex, value: string | undefined, perm: readonly number[]): { source: string; heads: number; nodes: NodeProto[] } | undefined {
  const transpose = index.op(value, 'Transpose');
  if (!transpose || !same(intsAttr(transpose, 'perm'), perm)) return undefined;
  const reshape = index.op(transpose.inputs[0], 'Reshape');
  const [source, shape] = reshape?.inputs ?? [];
  if (!reshape || !source || !shape) return undefined;
  const heads = reshapeHeads(index, shape);
  return heads === undefined ? undefined : { source, heads, nodes: [transpose, reshape] };
}

/** H from a [B, -1, H, D] target shape: a constant, or the Concat torch builds it with. */
function reshapeHeads(index: GraphIndex, shape: string): number | undefined {
  const whole = index.constant(shape);
  if (whole) return whole.length === 4 ? whole[2] : undefined;
  const concat = index.op(shape, 'Concat');
  if (!concat || concat.inputs.length !== 4) return undefined;
  const heads = index.constant(concat.inputs[2]);
  return heads?.length === 1 && heads[0]! > 0 ? heads[0] : undefined;
}

/** One Mul input is `of`, the other is returned (the scale factor), or undefined. */
function mulOperand(mul: NodeProto | undefined, of: string): string | undefined {
  if (!mul || mul.inputs.length !== 2) return undefined;
  const [a, b] = mul.inputs;
  return a === of ? b : b === of ? a : undefined;
}

/** Steps back through Casts (the export casts scalar arithmetic to float and back). */
function throughCasts(index: GraphIndex, value: string | undefined): string | undefined {
  let v = value;
  for (let cast = index.op(v, 'Cast'); cast; cast = index.op(v, 'Cast')) v = cast.inputs[0];
  return v;
}

/**
 * The softmax scale s, from the value both sides are multiplied by, sqrt(s): Sqrt of a constant
 * s, or of SDPA's default 1/sqrt(D) computed from q's shape (Div(1, Sqrt(Slice(Shape(q), -1)))),
 * where D is hidden / heads, in float32 as the export computes it; or sqrt(s) already folded
 * into one constant.
 */
function softmaxScale(index: GraphIndex, sqrtQ: string, sqrtK: string, q: string, hidden: number | undefined, heads: number): number | undefined {
  const folded = [index.constant(sqrtQ), index.constant(sqrtK)];
  if (folded.every((c) => c?.length === 1 && c[0] === folded[0]![0])) return Math.fround(folded[0]![0]! ** 2);
  const sq = index.op(sqrtQ, 'Sqrt');
  const sk = index.op(sqrtK, 'Sqrt');
  if (!sq || !sk || sq.inputs[0] !== sk.inputs[0] || !sq.inputs[0]) return undefined;
  const s = sq.inputs[0];
  const constant = index.constant(throughCasts(index, s));
  if (constant) return constant.length === 1 ? constant[0] : undefined;
  const div = index.op(throughCasts(index, s), 'Div');
  if (!div || !same(index.constant(div.inputs[0]), [1])) return undefined;
  const slice = index.op(throughCasts(index, index.op(div.inputs[1], 'Sqrt')?.inputs[0]), 'Slice');
  const shape = index.op(slice?.inputs[0], 'Shape');
  if (!slice || shape?.inputs[0] !== q || !same(index.constant(slice.inputs[1]), [-1])) return undefined;
  if (hidden === undefined || hidden % heads !== 0) return undefined;
  return Math.fround(1 / Math.fround(Math.sqrt(hidden / heads)));
}

/** `softmaxDefaultAxis`: -1 from opset 13; before, a missing axis meant 1 (over a flattened tail). */
export function matchAttention(index: GraphIndex, softmax: NodeProto, softmaxDefaultAxis: number): Attention | undefined {
  const axis = intAttr(softmax, 'axis') ?? softmaxDefaultAxis;
  if (axis !== -1 && axis !== 3) return undefined;
  const scores = index.op(softmax.inputs[0], 'MatMul');
  const [scaledQ, scaledK] = scores?.inputs ?? [];
  const mulQ = index.op(scaledQ, 'Mul');
  const mulK = index.op(scaledK, 'Mul');
  if (!scores || !mulQ || !mulK) return undefined;
  const qT = mulQ.inputs.find((i) => index.op(i, 'Transpose'));
  const kT = mulK.inputs.find((i) => index.op(i, 'Transpose'));
  const q = headSplit(index, qT, [0, 2, 1, 3]);
  const k = headSplit(index, kT, [0, 2, 3, 1]);
  const probsUse = index.consumers.get(softmax.outputs[0] ?? '') ?? [];
  const context = probsUse.length === 1 && probsUse[0]!.opType === 'MatMul' && probsUse[0]!.inputs[0] === softmax.outputs[0] ? probsUse[0] : undefined;
  const v = headSplit(index, context?.inputs[1], [0, 2, 1, 3]);
  if (!q || !k || !v || !context || !qT || !kT) return undefined;
  if (q.heads !== k.heads || q.heads !== v.heads) return undefined;
  const sqrtQ = mulOperand(mulQ, qT);
  const sqrtK = mulOperand(mulK, kT);
  if (!sqrtQ || !sqrtK) return undefined;
  const hidden = index.lastDim(q.source);
  const scale = softmaxScale(index, sqrtQ, sqrtK, qT, hidden, q.heads);
  if (scale === undefined) return undefined;
  // Heads merged back: Reshape(Transpose[0,2,1,3](context), [B, -1, H*D]).
  const uses = index.consumers.get(context.outputs[0] ?? '') ?? [];
  const merge = uses.length === 1 && uses[0]!.opType === 'Transpose' && same(intsAttr(uses[0]!, 'perm'), [0, 2, 1, 3]) ? uses[0] : undefined;
  const mergeUses = index.consumers.get(merge?.outputs[0] ?? '') ?? [];
  const anchor = mergeUses.length === 1 && mergeUses[0]!.opType === 'Reshape' && mergeUses[0]!.inputs[0] === merge?.outputs[0] ? mergeUses[0] : undefined;
  if (!merge || !anchor || !mergeShapeOk(index, anchor.inputs[1], hidden)) return undefined;
  return {
    query: q.source,
    key: k.source,
    value: v.source,
    output: anchor.outputs[0]!,
    numHeads: q.heads,
    scale,
    anchor,
    core: [...q.nodes, ...k.nodes, ...v.nodes, mulQ, mulK, scores, softmax, context, merge, anchor],
    scores,
    context,
  };
}

/** The merge Reshape goes to rank 3, [B, -1, H*D]: a 3-element constant or Concat of three. */
function mergeShapeOk(index: GraphIndex, shape: string | undefined, hidden: number | undefined): boolean {
  const whole = index.constant(shape);
  if (whole) return whole.length === 3 && (hidden === undefined || whole[2] === hidden || whole[2] === -1);
  return index.op(shape, 'Concat')?.inputs.length === 3;
}

/**
 * The core nodes plus every node whose outputs only removed nodes read (the shape arithmetic
 * the pattern carried), or undefined when a core value other than the output is read elsewhere.
 */
function removalSet(index: GraphIndex, attention: Attention, removed: ReadonlySet<NodeProto>): Set<NodeProto> | undefined {
  // The fused node reads the projections: they stay.
  const gone = index.withDeadProducers(attention.core, new Set([attention.query, attention.key, attention.value]), removed);
  for (const node of attention.core) {
    for (const out of node.outputs) {
      if (out === attention.output) continue;
      if (index.graphOutputs.has(out) || (index.consumers.get(out) ?? []).some((c) => !gone.has(c))) return undefined;
    }
  }
  return gone;
}

function multiHeadAttentionNode(a: Attention): Message {
  const attributes = [intAttribute('num_heads', a.numHeads), floatAttribute('scale', a.scale)];
  return makeNode('MultiHeadAttention', `${a.anchor.name}/MultiHeadAttention`, [a.query, a.key, a.value], [a.output], attributes, MS_DOMAIN);
}

export function fuseAttention(model: Uint8Array): FusedAttentionModel {
  const proto = ModelProto.decode(model);
  const graph = proto.graph;
  const index = new GraphIndex(graph);
  let removed = new Set<NodeProto>();
  const replacement = new Map<Message, Message>();
  let skipped = 0;
  for (const softmax of index.nodes.filter((n) => n.opType === 'Softmax')) {
    const attention = matchAttention(index, softmax, defaultOpset(proto) >= 13 ? -1 : 1);
    const gone = attention && removalSet(index, attention, removed);
    if (!attention || !gone) {
      skipped++;
      continue;
    }
    removed = gone;
    replacement.set(attention.anchor.msg, multiHeadAttentionNode(attention));
  }
  if (replacement.size === 0) return { model, fused: 0, skipped };
  const removedMsgs = new Set([...removed].map((n) => n.msg));
  // The fused node sits where the merge Reshape was: after its inputs, before its consumers.
  const nodes = graph.msg
    .all(GRAPH_NODE)
    .filter((f) => f.child === undefined || !removedMsgs.has(f.child) || replacement.has(f.child))
    .map((f) => (f.child && replacement.has(f.child) ? messageField(GRAPH_NODE, replacement.get(f.child)!) : f));
  graph.msg.set(GRAPH_NODE, nodes);
  ensureOpsetImport(proto, MS_DOMAIN);
  return { model: proto.encode(), fused: replacement.size, skipped };
}
