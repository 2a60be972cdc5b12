import { GraphIndex } from './fuse-attention.js';
import { GraphEmitter } from './graph-emitter.js';
import { MS_DOMAIN, intAttr, makeNode } from './node-builders.js';
import { ModelProto, NodeProto } from './proto.js';

/**
 * A projection whose output is only read in slices, computed slice by slice from the weights
 * (bytes in, bytes out). diffusers' GEGLU is `proj(x).chunk(2, dim=-1)`: the export runs one
 * [.., 2N] MatMul and bias Add, then two Slice nodes copy its halves out, about 2% of an SD 1.5
 * step at 512² on the CPU. Here y = Add(b, MatMul(x, W)) read only by Slices along its last axis
 * (and by the Shape that computes the chunk size) becomes, per Slice [a, e),
 * Add(b[a:e], MatMul(x, W[:, a:e])): no activation is copied, and ONNX Runtime then fuses the
 * gate's bias Add with its Gelu (BiasGelu). The weight and bias Slices read initialisers, so ONNX
 * Runtime folds them into constants when it optimises the graph, and the optimised-graph cache
 * keeps those. Same numbers: every output element is the same dot product plus the same bias.
 * A projection whose slice ranges do not follow from the weights' shape is left as it was.
 *
 * The int8 graph's form of the same projection, com.microsoft.DynamicQuantizeMatMul(x, W, scale,
 * zero point, bias) with per-column scales, splits the same way: each slice quantizes x from the
 * same range, and its columns' integer sums, scales and bias are the ones the whole node used.
 */

export interface SplitProjectionsModel {
  model: Uint8Array;
  /** Projections now computed per slice. */
  split: number;
}

type Range = { start: number; end: number };

interface Projection {
  slices: Array<{ node: NodeProto; range: Range }>;
  /** The projection's nodes and what only they fed (the Slices and their shape arithmetic). */
  gone: Set<NodeProto>;
  /** Emits the nodes computing columns [start, end) (int64 constants; `last` is [-1]) into `output`. */
  emit: (b: GraphEmitter, cut: { start: string; end: string; last: string }, output: string) => void;
}

export function splitProjections(model: Uint8Array): SplitProjectionsModel {
  const proto = ModelProto.decode(model);
  const graph = proto.graph;
  const index = new GraphIndex(graph);
  const projections = index.nodes.flatMap((n) => (n.opType === 'Add' ? floatProjectionAt(index, n) : n.opType === 'DynamicQuantizeMatMul' ? int8ProjectionAt(index, n) : undefined) ?? []);
  if (projections.length === 0) return { model, split: 0 };
  const removed = new Set(projections.flatMap((p) => [...p.gone]));
  const added = new Map<NodeProto, NodeProto[]>();
  projections.forEach((p, k) => {
    for (const { node, range } of p.slices) {
      const b = new GraphEmitter(graph, `${node.name}/split${k}`);
      p.emit(b, { start: b.int64([range.start]), end: b.int64([range.end]), last: b.int64([-1]) }, node.outputs[0]!);
      added.set(node, b.nodes);
    }
  });
  // Each slice's nodes take its Slice's place: x and the weights exist there, its readers come after.
  const ordered = index.nodes.flatMap((n) => added.get(n) ?? (removed.has(n) ? [] : [n]));
  graph.filter({ node: () => false, input: () => true });
  for (const node of ordered) graph.appendNode(node);
  return { model: proto.encode(), split: projections.length };
}

/** y = Add(b, MatMul(x, W)), in either input order (kept, so each slice adds in the same order). */
function floatProjectionAt(index: GraphIndex, add: NodeProto): Projection | undefined {
  if (add.inputs.length !== 2) return undefined;
  const biasFirst = index.initializerDims(add.inputs[0]) !== undefined;
  const [bias, product] = biasFirst ? add.inputs : [add.inputs[1]!, add.inputs[0]!];
  const matmul = index.op(product, 'MatMul');
  const [x, weight] = matmul?.inputs ?? [];
  const w = index.initializerDims(weight);
  const b = index.initializerDims(bias);
  if (!matmul || !x || !weight || !bias || !w || w.length !== 2 || !b || b.length !== 1 || b[0] !== w[1]) return undefined;
  if ((index.consumers.get(product!) ?? []).length !== 1) return undefined;
  return slicedProjection(index, add, [matmul], x, w[1]!, (b, { start, end, last }, output) => {
    const columns = b.op('MatMul', [x, b.op('Slice', [weight, start, end, last])]);
    const slicedBias = b.op('Slice', [bias, start, end, last]);
    b.nodes.push(NodeProto.create('Add', `${b.prefix}/Add`, biasFirst ? [slicedBias, columns] : [columns, slicedBias], [output], []));
  });
}

/** y = DynamicQuantizeMatMul(x, W, scale, zero point, bias): per-column scale, zero point and bias are sliced with W's columns. */
function int8ProjectionAt(index: GraphIndex, node: NodeProto): Projection | undefined {
  const [x, weight, ...params] = node.inputs;
  const w = index.initializerDims(weight);
  if (!x || !weight || !w || w.length !== 2) return undefined;
  const width = w[1]!;
  const perColumn = params.map((p) => {
    const dims = p ? index.initializerDims(p) : [];
    return dims === undefined ? undefined : dims.length === 1 && dims[0] === width && width > 1;
  });
  // A parameter that is not a constant, or the scale missing, and the node is not one this reads.
  if (perColumn.some((c) => c === undefined) || !params[0]) return undefined;
  return slicedProjection(index, node, [], x, width, (b, { start, end, last }, output) => {
    const inputs = [x, b.op('Slice', [weight, start, end, last]), ...params.map((p, i) => (p && perColumn[i] ? b.op('Slice', [p, start, end, last]) : p!))];
    b.nodes.push(new NodeProto(makeNode('DynamicQuantizeMatMul', `${b.prefix}/DynamicQuantizeMatMul`, inputs, [output], [], MS_DOMAIN)));
  });
}

/**
 * The projection ending in `last` (its output y, `width` columns wide, computed from x by `last`
 * and `inner`), when y is read only by Slices along its last axis whose ranges follow from the
 * width, and by the Shape that computes them.
 */
function slicedProjection(index: GraphIndex, last: NodeProto, inner: NodeProto[], x: string, width: number, emit: Projection['emit']): Projection | undefined {
  const y = last.outputs[0];
  if (!y || index.graphOutputs.has(y)) return undefined;
  const readers = index.consumers.get(y) ?? [];
  const slices = readers.filter((r) => r.opType === 'Slice');
  if (slices.length === 0 || readers.some((r) => r.opType !== 'Slice' && r.opType !== 'Shape')) return undefined;
  const ranges = slices.map((s) => ({ node: s, range: sliceRange(index, s, y, width) }));
  if (ranges.some((r) => r.range === undefined)) return undefined;
  const gone = index.withDeadProducers(slices, new Set([x]));
  // Everything that read y (the Shape too) and the projection must go with the slices, or y is still needed.
  if (![last, ...inner, ...readers].every((n) => gone.has(n))) return undefined;
  return { slices: ranges as Projection['slices'], gone, emit };
}

/** The [start, end) a Slice (opset 10+: ranges as inputs) takes of y's last axis, when computable. */
function sliceRange(index: GraphIndex, slice: NodeProto, y: string, width: number): Range | undefined {
  const [data, starts, ends, axes, steps] = slice.inputs;
  if (data !== y || !starts || !ends || !axes) return undefined;
  if (steps && !sameInts(index.constant(steps), [1])) return undefined;
  if (!sameInts(index.constant(axes), [-1])) return undefined;
  const a = shapeInts(index, starts, y, width);
  const e = shapeInts(index, ends, y, width);
  if (a?.length !== 1 || e?.length !== 1) return undefined;
  const clamp = (v: number) => Math.min(width, Math.max(0, v < 0 ? v + width : v));
  const range = { start: clamp(a[0]!), end: clamp(e[0]!) };
  return range.end > range.start ? range : undefined;
}

/**
 * An int64 value made of constants and y's last dimension, as torch's chunk exports the chunk
 * size: Mul(Div(Add(Gather(Shape(y), -1), 1), 2), k). Integer Div truncates, as ONNX Runtime's.
 */
function shapeInts(index: GraphIndex, value: string, y: string, width: number): number[] | undefined {
  const constant = index.constant(value);
  if (constant) return constant.every(Number.isInteger) ? constant : undefined;
  const p = index.producer.get(value);
  if (!p) return undefined;
  const args = () => {
    const values = p.inputs.map((v) => shapeInts(index, v, y, width));
    return values.every((v): v is number[] => v !== undefined) ? values : undefined;
  };
  switch (p.opType) {
    case 'Gather': {
      const shape = index.op(p.inputs[0], 'Shape');
      if (shape?.inputs[0] !== y || shape.attributes.length > 0 || (intAttr(p, 'axis') ?? 0) !== 0) return undefined;
      return sameInts(index.constant(p.inputs[1]), [-1]) ? [width] : undefined;
    }
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div': {
      const values = args();
      if (!values || values.length !== 2 || values.some((v) => v.length !== 1)) return undefined;
      const [l, r] = [values[0]![0]!, values[1]![0]!];
      if (p.opType === 'Div') return r === 0 ? undefined : [Math.trunc(l / r)];
      return [p.opType === 'Add' ? l + r : p.opType === 'Sub' ? l - r : l * r];
    }
    case 'Unsqueeze':
    case 'Squeeze': {
      const v = shapeInts(index, p.inputs[0]!, y, width);
      return v?.length === 1 ? v : undefined;
    }
    default:
      return undefined;
  }
}

function sameInts(values: number[] | undefined, expected: readonly number[]): boolean {
  return values !== undefined && values.length === expected.length && values.every((v, i) => v === expected[i]);
}
