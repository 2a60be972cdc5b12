import { ModelLoadError } from '../errors.js';
import { GraphIndex, matchAttention } from './fuse-attention.js';
import { GraphEmitter } from './graph-emitter.js';
import { initializers, rawInitializer } from './initializers.js';
import { ElemType, ModelProto, NodeProto, type GraphProto, type Message } from './proto.js';
import { defaultOpset, intAttribute, intsAttr, intsAttribute, raiseDefaultOpset, stringAttribute, tensorAttribute } from './node-builders.js';

/**
 * Token merging for Stable Diffusion (Bolya & Hoffman 2023, the `tomesd` package) as a graph
 * edit of the UNet, bytes in, bytes out, with the settings A1111 applies (`apply_patch` with
 * use_rand=False, merge_attn only, max_downsample 1, sx = sy = 2):
 *
 * In every transformer block working at the latent's own resolution, before self-attention, the
 * block's input tokens x [B, N, C] are split into dst (the top-left token of each 2x2 window) and
 * src (the rest); each src finds its most cosine-similar dst; the r = int(N * ratio) src tokens
 * most similar to their dst are merged into it (the mean of the dst and its srcs, over the
 * normalised tokens that go into attention); self-attention (to_q .. to_out) runs on the N - r
 * tokens left; its output is copied back to every token a merged one stands for, before the
 * residual add. Everything is computed from the runtime shapes, so one graph serves every latent
 * size and batch.
 *
 * In ONNX all of a block's bookkeeping reduces to one index `inv` [B, N]: the merged slot of each
 * token. Merging is ScatterElements(reduction='add') of the tokens into their slots divided by
 * the slots' counts (opset 16, so the default opset is raised to 16 where it is lower: the UNet's
 * operators mean the same there); unmerging is GatherElements by `inv`.
 *
 * Blocks are found by structure: a self-attention (fuse-attention's pattern, whose q, k and v
 * are MatMuls of one value n) whose output, through to_out, is added back to a value x that n is
 * computed from (norm1). The resolution comes from following the sample through the graph: each
 * stride-2 convolution halves it, each Resize doubles it back.
 */

export interface TokenMergingModel {
  model: Uint8Array;
  /** Self-attention blocks merged (at full latent resolution). */
  merged: number;
  /** Self-attention blocks left alone because they work at a lower resolution. */
  lower: number;
}

export class TokenMergingError extends ModelLoadError {}

/** A1111's settings for tomesd.apply_patch (modules/sd_models.py apply_token_merging; the rest are tomesd's defaults). */
export const TOME_SETTINGS = { maxDownsample: 1, sx: 2, sy: 2, useRand: false, mergeAttn: true, mergeCrossattn: false, mergeMlp: false } as const;

/** ScatterElements' reduction attribute arrived with opset 16. */
const SCATTER_REDUCTION_OPSET = 16;

interface Block {
  /** The block's input (the residual; tomesd's merge metric). */
  x: string;
  /** norm1(x): what q, k and v are computed from. */
  n: string;
  /** The Add of the attention output and x; `attnOut` is its input from attention. */
  residualAdd: NodeProto;
  attnOut: string;
}

function fail(message: string): never {
  throw new TokenMergingError(`cannot apply --token-merging to this UNet: ${message}`);
}

/**
 * log2 of the downsampling of every value computed from the sample: a stride-2 Conv adds one, a
 * Resize takes one away; other nodes carry the level of their first input that has one.
 */
function resolutionLevels(graph: GraphProto): Map<string, number> {
  const level = new Map<string, number>([['sample', 0]]);
  for (const node of graph.nodes) {
    const from = node.inputs.find((i) => level.has(i));
    if (from === undefined) continue;
    let l = level.get(from)!;
    if (node.opType === 'Conv') l += Math.log2(Math.max(1, ...(intsAttr(node, 'strides') ?? [1])));
    if (node.opType === 'Resize' || node.opType === 'Upsample') l -= 1;
    for (const out of node.outputs) level.set(out, l);
  }
  return level;
}

/** Whether `ancestor` is among the values `value` is computed from, within `depth` nodes. */
function computedFrom(index: GraphIndex, value: string, ancestor: string, depth: number): boolean {
  if (depth < 0) return false;
  const p = index.producer.get(value);
  return p !== undefined && p.inputs.some((i) => i === ancestor || computedFrom(index, i, ancestor, depth - 1));
}

/** Elementwise steps between an attention's output and its residual add: to_out's MatMul and bias, rescale, casts. */
const OUTPUT_PATH = new Set(['Cast', 'MatMul', 'Add', 'Div', 'Mul']);

function findBlocks(graph: GraphProto, opset: number): { blocks: Block[]; lower: number } {
  const index = new GraphIndex(graph);
  const levels = resolutionLevels(graph);
  const blocks: Block[] = [];
  let lower = 0;
  for (const softmax of index.nodes.filter((node) => node.opType === 'Softmax')) {
    const attention = matchAttention(index, softmax, opset >= 13 ? -1 : 1);
    if (!attention) continue;
    const projections = [attention.query, attention.key, attention.value].map((v) => index.op(v, 'MatMul'));
    const n = projections[0]?.inputs[0];
    if (!n || projections.some((p) => p?.inputs[0] !== n)) continue; // cross-attention
    const block = residualOf(index, attention.output, n);
    if (!block) continue;
    if ((levels.get(block.x) ?? -1) !== 0) {
      lower++;
      continue;
    }
    blocks.push({ ...block, n });
  }
  return { blocks, lower };
}

/** Follows the attention output through to_out to the Add with x (from which n is computed). */
function residualOf(index: GraphIndex, output: string, n: string): Omit<Block, 'n'> | undefined {
  let value = output;
  for (let step = 0; step < 8; step++) {
    const uses = index.consumers.get(value) ?? [];
    if (uses.length !== 1 || !OUTPUT_PATH.has(uses[0]!.opType)) return undefined;
    const node = uses[0]!;
    if (node.opType === 'Add') {
      const other = node.inputs.find((i) => i !== value);
      if (other && index.producer.has(other) && computedFrom(index, n, other, 12)) return { x: other, residualAdd: node, attnOut: value };
    }
    value = node.outputs[0]!;
  }
  return undefined;
}

/** What every merged block shares: the dst/src split of the latent grid and r, from the sample's shape. */
interface Split {
  /** Token positions of dst [Nd] and src [Ns], row-major. */
  dstPos: string;
  srcPos: string;
  /** r (tokens merged away), Ns, Ns - r and N - r as [1] tensors; Ns - r also as a scalar. */
  r: string;
  ns: string;
  unmerged: string;
  unmergedScalar: string;
  kept: string;
  /** Merged slots of the unmerged src tokens [1, Ns - r] and of the dst tokens [1, Nd]. */
  unmSlots: string;
  dstSlots: string;
}

function splitNodes(b: GraphEmitter, ratio: number): Split {
  const shape = b.op('Shape', ['sample']);
  const h = b.op('Gather', [shape, b.int64([2], [])], [intAttribute('axis', 0)]);
  const w = b.op('Gather', [shape, b.int64([3], [])], [intAttribute('axis', 0)]);
  const n = b.op('Mul', [h, w]);
  const zero = b.int64([0], []);
  const one = b.int64([1], []);
  const two = b.int64([2], []);
  const pos = b.op('Range', [zero, n, one]);
  const row = b.op('Div', [pos, w]);
  const col = b.op('Mod', [pos, w], [intAttribute('fmod', 0)]);
  // dst: the top-left token of each whole sy x sx window (tomesd without randomness); a last odd row or column is all src.
  const even = (v: string) => b.op('Equal', [b.op('Mod', [v, two], [intAttribute('fmod', 0)]), zero]);
  const inWindows = (v: string, size: string) => b.op('Less', [v, b.op('Mul', [b.op('Div', [size, two]), two])]);
  const isDst = b.op('And', [b.op('And', [even(row), even(col)]), b.op('And', [inWindows(row, h), inWindows(col, w)])]);
  const flat = b.int64([-1]);
  const dstPos = b.op('Reshape', [b.op('NonZero', [isDst]), flat]);
  const srcPos = b.op('Reshape', [b.op('NonZero', [b.op('Not', [isDst])]), flat]);
  const ns = b.op('Shape', [srcPos]);
  const nd = b.op('Shape', [dstPos]);
  const n1 = b.op('Reshape', [n, b.int64([1])]);
  // r = int(N * ratio) in float64 as Python computes it, at most Ns.
  const wanted = b.op('Cast', [b.op('Mul', [b.op('Cast', [n1], [intAttribute('to', ElemType.DOUBLE)]), b.double(ratio)])], [intAttribute('to', ElemType.INT64)]);
  const r = b.op('Min', [wanted, ns]);
  const unmerged = b.op('Sub', [ns, r]);
  const unmergedScalar = b.op('Squeeze', [unmerged, b.int64([0])]);
  const kept = b.op('Sub', [n1, r]);
  const row0 = b.int64([0]);
  const unmSlots = b.op('Unsqueeze', [b.op('Range', [zero, unmergedScalar, one]), row0]);
  const dstSlots = b.op('Unsqueeze', [b.op('Add', [b.op('Range', [zero, b.op('Squeeze', [nd, row0]), one]), unmergedScalar]), row0]);
  return { dstPos, srcPos, r, ns, unmerged, unmergedScalar, kept, unmSlots, dstSlots };
}

/** tomesd's bipartite soft matching on x, as `inv` [B, N]: each token's slot among the N - r merged ones. */
function mergeSlots(b: GraphEmitter, s: Split, x: string): string {
  const axis = (a: number) => intAttribute('axis', a);
  const norm = b.op('Sqrt', [b.op('ReduceSum', [b.op('Mul', [x, x]), b.int64([-1])], [intAttribute('keepdims', 1)])]);
  const metric = b.op('Div', [x, norm]);
  const a = b.op('Gather', [metric, s.srcPos], [axis(1)]);
  const dst = b.op('Gather', [metric, s.dstPos], [axis(1)]);
  const scores = b.op('MatMul', [a, b.op('Transpose', [dst], [intsAttribute('perm', [0, 2, 1])])]);
  const best = b.op('ArgMax', [scores], [axis(-1), intAttribute('keepdims', 1)]);
  const bestScore = b.op('Squeeze', [b.op('GatherElements', [scores, best], [axis(2)]), b.int64([2])]);
  // The src tokens by the similarity to their best dst, most similar first (TopK's indices).
  const order = b.ops('TopK', [bestScore, s.ns], 2, [axis(-1), intAttribute('largest', 1), intAttribute('sorted', 1)])[1]!;
  const merged = b.op('Slice', [order, b.int64([0]), s.r, b.int64([1])]);
  const unmerged = b.op('Slice', [order, s.r, b.int64([Number.MAX_SAFE_INTEGER]), b.int64([1])]);
  const into = b.op('GatherElements', [b.op('Squeeze', [best, b.int64([2])]), merged], [axis(1)]);
  const batch = b.op('Slice', [b.op('Shape', [x]), b.int64([0]), b.int64([1])]);
  const perImage = (v: string) => b.op('Expand', [v, b.op('Concat', [batch, b.int64([1])], [axis(0)])]);
  const positions = b.op('Concat', [b.op('Gather', [s.srcPos, unmerged], [axis(0)]), perImage(b.op('Unsqueeze', [s.dstPos, b.int64([0])])), b.op('Gather', [s.srcPos, merged], [axis(0)])], [axis(1)]);
  const slots = b.op('Concat', [perImage(s.unmSlots), perImage(s.dstSlots), b.op('Add', [into, s.unmerged])], [axis(1)]);
  // Every position appears once in `positions`, so the scatter overwrites all of its data input.
  return b.op('ScatterElements', [positions, positions, slots], [axis(1)]);
}

function constantOfShape(b: GraphEmitter, shape: string, value: number): string {
  const tensor = rawInitializer('', ElemType.FLOAT, [1], new Uint8Array(Float32Array.of(value).buffer));
  return b.op('ConstantOfShape', [shape], [tensorAttribute('value', tensor)]);
}

/** merge(n): the mean of the tokens sharing a slot, [B, N - r, C]; unmerge: GatherElements by `inv` expanded over C. */
function mergeNodes(b: GraphEmitter, s: Split, block: Block, inv: string): { merged: string; expandedInv: string } {
  const axis1 = intAttribute('axis', 1);
  const add = stringAttribute('reduction', 'add');
  const shape = b.op('Shape', [block.n]);
  const batch = b.op('Slice', [shape, b.int64([0]), b.int64([1])]);
  const channels = b.op('Slice', [shape, b.int64([2]), b.int64([3])]);
  const expandedInv = b.op('Expand', [b.op('Unsqueeze', [inv, b.int64([2])]), shape]);
  const sums = b.op('ScatterElements', [constantOfShape(b, b.op('Concat', [batch, s.kept, channels], [intAttribute('axis', 0)]), 0), expandedInv, block.n], [axis1, add]);
  const unit = b.int64([1]);
  const ones = constantOfShape(b, b.op('Concat', [batch, b.op('Slice', [shape, unit, b.int64([2])]), unit], [intAttribute('axis', 0)]), 1);
  const countShape = b.op('Concat', [batch, s.kept, unit], [intAttribute('axis', 0)]);
  const counts = b.op('ScatterElements', [constantOfShape(b, countShape, 0), b.op('Unsqueeze', [inv, b.int64([2])]), ones], [axis1, add]);
  return { merged: b.op('Div', [sums, counts]), expandedInv };
}

export function applyTokenMerging(model: Uint8Array, ratio: number): TokenMergingModel {
  if (!(ratio > 0 && ratio < 1)) throw new RangeError(`token merging ratio must be above 0 and below 1 (got ${ratio})`);
  const proto = ModelProto.decode(model);
  const graph = proto.graph;
  if (!graph.inputs.some((i) => i.name === 'sample')) fail('the graph has no input named sample');
  // ArgMax, TopK and ScatterElements' reduction lack float16 CPU kernels in ONNX Runtime, and the edit is checked on float32 only.
  const weights = new Map(initializers(graph).map((i) => [i.name, i.elemType]));
  const convWeight = graph.nodes.find((n) => n.opType === 'Conv' && weights.has(n.inputs[1] ?? ''));
  if (convWeight && weights.get(convWeight.inputs[1]!) !== ElemType.FLOAT) fail('its weights are not float32 (token merging is checked on float32 UNets only; use a float32 export)');
  const opset = defaultOpset(proto);
  const { blocks, lower } = findBlocks(graph, opset);
  if (blocks.length === 0) fail(`no self-attention block works at the latent's resolution (${lower} at lower resolutions; ToMe merges at full resolution only, as A1111 applies it)`);

  const shared = new GraphEmitter(graph, 'tome');
  const split = splitNodes(shared, ratio);
  const after = new Map<string, NodeProto[]>();
  const before = new Map<Message, NodeProto[]>();
  blocks.forEach((block, k) => {
    const b = new GraphEmitter(graph, `tome/block${k}`);
    const inv = mergeSlots(b, split, block.x);
    const { merged, expandedInv } = mergeNodes(b, split, block, inv);
    const mergeNodesList = [...b.nodes];
    b.nodes.length = 0;
    const restored = b.op('GatherElements', [block.attnOut, expandedInv], [intAttribute('axis', 1)]);
    before.set(block.residualAdd.msg, [...b.nodes]);
    for (const node of graph.nodes) if (node.inputs.includes(block.n)) node.inputs = node.inputs.map((i) => (i === block.n ? merged : i));
    block.residualAdd.inputs = block.residualAdd.inputs.map((i) => (i === block.attnOut ? restored : i));
    after.set(block.n, mergeNodesList);
  });
  // New nodes go where their inputs exist: the split first, a block's merge after norm1, its unmerge before the residual add.
  const ordered: NodeProto[] = [...shared.nodes];
  for (const node of graph.nodes) {
    ordered.push(...(before.get(node.msg) ?? []), node);
    for (const out of node.outputs) ordered.push(...(after.get(out) ?? []));
  }
  setNodes(graph, ordered);
  raiseDefaultOpset(proto, SCATTER_REDUCTION_OPSET);
  return { model: proto.encode(), merged: blocks.length, lower };
}

function setNodes(graph: GraphProto, nodes: readonly NodeProto[]): void {
  graph.filter({ node: () => false, input: () => true });
  for (const node of nodes) graph.appendNode(node);
}
