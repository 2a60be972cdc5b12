import { ShapeError } from './errors.js';
import { attr, type IrNode } from './ir.js';
import { DataType, numel, type ConstTensor } from './tensor.js';

/**
 * Output element types and static shapes, op by op, from the inputs' (with the values of
 * small constant inputs where a shape depends on them: Reshape's target, Slice's bounds, ...).
 * The gradient needs every shape on the differentiated path fixed: broadcasting is undone by
 * summing over the axes it added, which must be known when the graph is built.
 */

export interface ValueFacts {
  elemType: number;
  /** Undefined when not inferable (an op this pass does not know, or a dynamic input). */
  dims?: number[];
  /** The value, when it is a small constant (after folding). */
  value?: ConstTensor;
}

export interface ShapeInput {
  node: IrNode;
  opset: number;
  ins: Array<ValueFacts | undefined>;
}

export const normAxis = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

/** numpy-style multidirectional broadcasting. */
export function broadcast(...shapes: ReadonlyArray<readonly number[]>): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  return Array.from({ length: rank }, (_, i) => {
    let size = 1;
    for (const s of shapes) {
      const d = s[i - (rank - s.length)];
      if (d === undefined || d === 1) continue;
      if (size !== 1 && size !== d) throw new ShapeError(`shapes [${shapes.map((x) => x.join(',')).join('] and [')}] do not broadcast`);
      size = d;
    }
    return size;
  });
}

/** numpy matmul's output shape (1-D operands promoted and the added axis dropped). */
export function matmulShape(a: readonly number[], b: readonly number[]): number[] {
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const batch = broadcast(a2.slice(0, -2), b2.slice(0, -2));
  const out = [...batch, a2[a2.length - 2]!, b2[b2.length - 1]!];
  if (a.length === 1) out.splice(out.length - 2, 1);
  if (b.length === 1) out.splice(out.length - 1, 1);
  return out;
}

/** A constant integer input (Reshape's shape, Slice's starts, ...), or undefined. */
function ints(input: ValueFacts | undefined): number[] | undefined {
  return input?.value?.data;
}

const dimsOf = (f: ValueFacts | undefined): number[] | undefined => f?.dims;

/** Reduce ops' axes: an attribute before the opset where they became an input. */
export function reduceAxes(node: IrNode, opset: number, axesInput: ValueFacts | undefined, rank: number): number[] | undefined {
  const asInput = node.opType === 'ReduceSum' ? opset >= 13 : opset >= 18;
  const axes = asInput ? (node.inputs[1] ? ints(axesInput) : []) : (attr.ints(node, 'axes') ?? []);
  if (axes === undefined) return undefined;
  if (axes.length === 0) return attr.int(node, 'noop_with_empty_axes', 0) ? [] : Array.from({ length: rank }, (_, i) => i);
  return axes.map((a) => normAxis(a, rank)).sort((x, y) => x - y);
}

/** Squeeze/Unsqueeze axes: an attribute before opset 13, an input from it. */
export function squeezeAxes(node: IrNode, opset: number, axesInput: ValueFacts | undefined): number[] | undefined {
  return opset >= 13 ? (node.inputs[1] ? ints(axesInput) : undefined) : attr.ints(node, 'axes');
}

export interface SliceSpec {
  /** Per axis of the input: first index, step and count taken. */
  start: number[];
  step: number[];
  count: number[];
}

/** Slice bounds clamped as the spec does, for every axis of an input of shape `dims`. */
export function sliceSpec(dims: readonly number[], starts: number[], ends: number[], axes: number[] | undefined, steps: number[] | undefined): SliceSpec {
  const spec: SliceSpec = { start: dims.map(() => 0), step: dims.map(() => 1), count: [...dims] };
  starts.forEach((s0, k) => {
    const axis = normAxis(axes?.[k] ?? k, dims.length);
    const d = dims[axis]!;
    const step = steps?.[k] ?? 1;
    const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
    let s = s0 < 0 ? s0 + d : s0;
    let e = ends[k]! < 0 ? ends[k]! + d : ends[k]!;
    if (step > 0) {
      s = clamp(s, 0, d);
      e = clamp(e, 0, d);
    } else {
      s = clamp(s, 0, d - 1);
      e = clamp(e, -1, d - 1);
    }
    spec.start[axis] = s;
    spec.step[axis] = step;
    spec.count[axis] = Math.max(0, Math.ceil((e - s) / step));
  });
  return spec;
}

/** Slice's constant bounds (inputs from opset 10), or undefined when one is not constant. */
export function sliceInputs(ins: Array<ValueFacts | undefined>, node: IrNode): { starts: number[]; ends: number[]; axes?: number[]; steps?: number[] } | undefined {
  const [starts, ends] = [ints(ins[1]), ints(ins[2])];
  const axes = node.inputs[3] ? ints(ins[3]) : undefined;
  const steps = node.inputs[4] ? ints(ins[4]) : undefined;
  if (!starts || !ends || (node.inputs[3] && !axes) || (node.inputs[4] && !steps)) return undefined;
  return { starts, ends, ...(axes ? { axes } : {}), ...(steps ? { steps } : {}) };
}

/** Conv's explicit pads (begin..., end...) after auto_pad, for input spatial dims and kernel. */
export function convPads(node: IrNode, spatial: readonly number[], kernel: readonly number[]): number[] {
  const n = spatial.length;
  const strides = attr.ints(node, 'strides') ?? spatial.map(() => 1);
  const dilations = attr.ints(node, 'dilations') ?? spatial.map(() => 1);
  const autoPad = attr.string(node, 'auto_pad', 'NOTSET');
  if (autoPad === 'NOTSET') return attr.ints(node, 'pads') ?? new Array<number>(2 * n).fill(0);
  if (autoPad === 'VALID') return new Array<number>(2 * n).fill(0);
  const pads = new Array<number>(2 * n).fill(0);
  spatial.forEach((d, i) => {
    const out = Math.ceil(d / strides[i]!);
    const total = Math.max((out - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - d, 0);
    const small = Math.floor(total / 2);
    pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
    pads[i + n] = total - pads[i]!;
  });
  return pads;
}

export function convOutput(node: IrNode, x: readonly number[], w: readonly number[]): number[] {
  const spatial = x.slice(2);
  const kernel = attr.ints(node, 'kernel_shape') ?? w.slice(2);
  const strides = attr.ints(node, 'strides') ?? spatial.map(() => 1);
  const dilations = attr.ints(node, 'dilations') ?? spatial.map(() => 1);
  const pads = convPads(node, spatial, kernel);
  const n = spatial.length;
  return [x[0]!, w[0]!, ...spatial.map((d, i) => Math.floor((d + pads[i]! + pads[i + n]! - (kernel[i]! - 1) * dilations[i]! - 1) / strides[i]!) + 1)];
}

/** Einsum's explicit form: operand subscripts and output subscripts, or undefined for what is not supported. */
export function parseEinsum(equation: string): { inputs: string[]; output: string } | undefined {
  const eq = equation.replace(/\s+/g, '');
  const [lhs, rhs] = eq.split('->');
  if (lhs === undefined || rhs === undefined || eq.includes('...')) return undefined;
  const inputs = lhs.split(',');
  const letters = (s: string) => /^[a-zA-Z]*$/.test(s);
  if (!inputs.every(letters) || !letters(rhs)) return undefined;
  return { inputs, output: rhs };
}

/** Repeated-index operands (diagonals) are rejected by the rule, not here. */
function einsumShape(node: IrNode, shapes: number[][]): number[] | undefined {
  const parsed = parseEinsum(attr.string(node, 'equation', ''));
  if (!parsed) return undefined;
  const size = new Map<string, number>();
  parsed.inputs.forEach((sub, k) => [...sub].forEach((c, i) => size.set(c, Math.max(size.get(c) ?? 1, shapes[k]![i]!))));
  return [...parsed.output].map((c) => size.get(c)!);
}

/** Resize's output shape from its scales or sizes (opset 11+ input layout). */
function resizeShape(node: IrNode, ins: Array<ValueFacts | undefined>, x: number[]): number[] | undefined {
  const sizes = node.inputs[3] ? ints(ins[3]) : undefined;
  if (sizes && sizes.length) return sizes;
  const scales = node.inputs[2] ? ins[2]?.value?.data : undefined;
  return scales && scales.length ? x.map((d, i) => Math.floor(d * scales[i]!)) : undefined;
}

function reshapeTarget(x: readonly number[], target: readonly number[], allowZero: boolean): number[] {
  const out = target.map((d, i) => (d === 0 && !allowZero ? x[i]! : d));
  const known = out.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  return out.map((d) => (d === -1 ? numel(x) / known : d));
}

const SAME_SHAPE_UNARY = new Set([
  'Identity', 'Neg', 'Sqrt', 'Exp', 'Log', 'Erf', 'Sigmoid', 'Tanh', 'Relu', 'Sin', 'Cos', 'Abs', 'Reciprocal', 'Softmax',
  'LogSoftmax', 'Floor', 'Ceil', 'Round', 'Gelu', 'Softplus', 'LeakyRelu', 'Elu', 'HardSigmoid', 'Sign', 'Clip', 'Trilu', 'CumSum',
  'InstanceNormalization', 'GroupNormalization', 'Dropout', 'Not',
]);
const BROADCAST_SAME_TYPE = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Mod']);
const BROADCAST_BOOL = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor']);

/** Output facts (type, and shape when inferable) of one node; values are the folding pass's job. */
export function inferNode({ node, opset, ins }: ShapeInput): ValueFacts[] {
  const x = ins[0];
  const xd = dimsOf(x);
  const type0 = x?.elemType ?? 0;
  const one = (elemType: number, dims: number[] | undefined): ValueFacts[] => [dims ? { elemType, dims } : { elemType }];
  const op = node.opType;
  // Ops not known here: type unknown (0), which activity analysis treats as possibly float.
  if (node.domain !== '' && node.domain !== 'ai.onnx') return node.outputs.map(() => ({ elemType: 0 }));
  if (SAME_SHAPE_UNARY.has(op)) return one(type0, xd);
  if (BROADCAST_SAME_TYPE.has(op)) {
    const all = ins.map(dimsOf);
    return one(type0, all.every((d) => d) ? broadcast(...(all as number[][])) : undefined);
  }
  if (BROADCAST_BOOL.has(op)) {
    const all = ins.map(dimsOf);
    return one(DataType.BOOL, all.every((d) => d) ? broadcast(...(all as number[][])) : undefined);
  }
  const d1 = dimsOf(ins[1]);
  switch (op) {
    case 'Constant': {
      const a = [...node.attrs.entries()][0];
      if (!a) return one(0, undefined);
      const [name, v] = a;
      if (name === 'value' && v.t) return [{ elemType: v.t.elemType, dims: v.t.dims, value: v.t }];
      if (name === 'value_float') return [{ elemType: DataType.FLOAT, dims: [], value: { elemType: DataType.FLOAT, dims: [], data: [v.f!] } }];
      if (name === 'value_int') return [{ elemType: DataType.INT64, dims: [], value: { elemType: DataType.INT64, dims: [], data: [v.i!] } }];
      if (name === 'value_floats') return [{ elemType: DataType.FLOAT, dims: [v.floats!.length], value: { elemType: DataType.FLOAT, dims: [v.floats!.length], data: v.floats! } }];
      if (name === 'value_ints') return [{ elemType: DataType.INT64, dims: [v.ints!.length], value: { elemType: DataType.INT64, dims: [v.ints!.length], data: v.ints! } }];
      return one(0, undefined);
    }
    case 'Cast':
      return one(attr.int(node, 'to', 0), xd);
    case 'Where': {
      const all = ins.map(dimsOf);
      return one(ins[1]?.elemType ?? 0, all.every((d) => d) ? broadcast(...(all as number[][])) : undefined);
    }
    case 'Shape': {
      if (!xd) return one(DataType.INT64, undefined);
      const r = xd.length;
      const clampAxis = (v: number) => Math.min(Math.max(normAxis(v, r), 0), r);
      const start = clampAxis(attr.int(node, 'start', 0));
      const end = clampAxis(attr.int(node, 'end', r));
      return one(DataType.INT64, [Math.max(end - start, 0)]);
    }
    case 'Size':
      return one(DataType.INT64, []);
    case 'MatMul':
      return one(type0, xd && d1 ? matmulShape(xd, d1) : undefined);
    case 'Gemm': {
      if (!xd || !d1) return one(type0, undefined);
      const m = attr.int(node, 'transA', 0) ? xd[1]! : xd[0]!;
      const n = attr.int(node, 'transB', 0) ? d1[0]! : d1[1]!;
      return one(type0, [m, n]);
    }
    case 'Conv':
      return one(type0, xd && d1 ? convOutput(node, xd, d1) : undefined);
    case 'LayerNormalization': {
      if (!xd) return node.outputs.map(() => ({ elemType: type0 }));
      const axis = normAxis(attr.int(node, 'axis', -1), xd.length);
      const stats = xd.map((d, i) => (i < axis ? d : 1));
      const statType = attr.int(node, 'stash_type', 1) === 1 ? DataType.FLOAT : type0;
      return [{ elemType: type0, dims: xd }, { elemType: statType, dims: stats }, { elemType: statType, dims: stats }].slice(0, node.outputs.length);
    }
    case 'ReduceMean':
    case 'ReduceSum':
    case 'ReduceMax':
    case 'ReduceMin':
    case 'ReduceProd':
    case 'ReduceL2':
    case 'ReduceSumSquare': {
      if (!xd) return one(type0, undefined);
      const axes = reduceAxes(node, opset, ins[1], xd.length);
      if (!axes) return one(type0, undefined);
      const keep = attr.int(node, 'keepdims', 1) === 1;
      return one(type0, keep ? xd.map((d, i) => (axes.includes(i) ? 1 : d)) : xd.filter((_, i) => !axes.includes(i)));
    }
    case 'ArgMax':
    case 'ArgMin': {
      if (!xd) return one(DataType.INT64, undefined);
      const axis = normAxis(attr.int(node, 'axis', 0), xd.length);
      const keep = attr.int(node, 'keepdims', 1) === 1;
      return one(DataType.INT64, keep ? xd.map((d, i) => (i === axis ? 1 : d)) : xd.filter((_, i) => i !== axis));
    }
    case 'Reshape': {
      const target = ints(ins[1]);
      return one(type0, xd && target ? reshapeTarget(xd, target, attr.int(node, 'allowzero', 0) === 1) : undefined);
    }
    case 'Flatten': {
      if (!xd) return one(type0, undefined);
      const axis = normAxis(attr.int(node, 'axis', 1), xd.length);
      return one(type0, [numel(xd.slice(0, axis)), numel(xd.slice(axis))]);
    }
    case 'Squeeze': {
      const axes = squeezeAxes(node, opset, ins[1]);
      if (!xd) return one(type0, undefined);
      if (axes === undefined && (opset < 13 || node.inputs[1])) return one(type0, undefined);
      const drop = (axes ?? xd.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => normAxis(a, xd.length));
      return one(type0, xd.filter((_, i) => !drop.includes(i)));
    }
    case 'Unsqueeze': {
      const axes = squeezeAxes(node, opset, ins[1]);
      if (!xd || !axes) return one(type0, undefined);
      const rank = xd.length + axes.length;
      const at = axes.map((a) => normAxis(a, rank));
      const rest = [...xd];
      return one(type0, Array.from({ length: rank }, (_, i) => (at.includes(i) ? 1 : rest.shift()!)));
    }
    case 'Transpose': {
      if (!xd) return one(type0, undefined);
      const perm = attr.ints(node, 'perm') ?? xd.map((_, i) => xd.length - 1 - i);
      return one(type0, perm.map((p) => xd[p]!));
    }
    case 'Concat': {
      const all = ins.map(dimsOf);
      if (!all.every((d) => d)) return one(type0, undefined);
      const shapes = all as number[][];
      const axis = normAxis(attr.int(node, 'axis', 0), shapes[0]!.length);
      const out = [...shapes[0]!];
      out[axis] = shapes.reduce((n, s) => n + s[axis]!, 0);
      return one(type0, out);
    }
    case 'Split': {
      if (!xd) return node.outputs.map(() => ({ elemType: type0 }));
      const axis = normAxis(attr.int(node, 'axis', 0), xd.length);
      const sizes = splitSizes(node, opset, ins[1], xd[axis]!);
      return node.outputs.map((_, k) => (sizes ? { elemType: type0, dims: xd.map((d, i) => (i === axis ? sizes[k]! : d)) } : { elemType: type0 }));
    }
    case 'Slice': {
      const bounds = sliceInputs(ins, node);
      if (!xd || !bounds) return one(type0, undefined);
      return one(type0, sliceSpec(xd, bounds.starts, bounds.ends, bounds.axes, bounds.steps).count);
    }
    case 'Gather': {
      if (!xd || !d1) return one(type0, undefined);
      const axis = normAxis(attr.int(node, 'axis', 0), xd.length);
      return one(type0, [...xd.slice(0, axis), ...d1, ...xd.slice(axis + 1)]);
    }
    case 'Expand': {
      const target = ints(ins[1]);
      return one(type0, xd && target ? broadcast(xd, target) : undefined);
    }
    case 'ConstantOfShape': {
      const value = node.attrs.get('value')?.t;
      return one(value?.elemType ?? DataType.FLOAT, ints(x));
    }
    case 'Range': {
      const [s, l, d] = [ins[0]?.value?.data[0], ins[1]?.value?.data[0], ins[2]?.value?.data[0]];
      return one(type0, s === undefined || l === undefined || d === undefined ? undefined : [Math.max(Math.ceil((l - s) / d), 0)]);
    }
    case 'Resize':
      return one(type0, xd ? resizeShape(node, ins, xd) : undefined);
    case 'Tile': {
      const reps = ints(ins[1]);
      return one(type0, xd && reps ? xd.map((d, i) => d * reps[i]!) : undefined);
    }
    case 'Pad': {
      const pads = ints(ins[1]);
      return one(type0, xd && pads && !node.inputs[3] ? xd.map((d, i) => d + pads[i]! + pads[i + xd.length]!) : undefined);
    }
    case 'Einsum': {
      const all = ins.map(dimsOf);
      return one(type0, all.every((d) => d) ? einsumShape(node, all as number[][]) : undefined);
    }
    default:
      return node.outputs.map(() => ({ elemType: 0 }));
  }
}

/** Split's part sizes: an input from opset 13 (attribute before), else num_outputs or the output count. */
export function splitSizes(node: IrNode, opset: number, splitInput: ValueFacts | undefined, length: number): number[] | undefined {
  const given = opset >= 13 ? (node.inputs[1] ? ints(splitInput) : undefined) : attr.ints(node, 'split');
  if (given) return given;
  if (opset >= 13 && node.inputs[1]) return undefined;
  const parts = node.outputs.length;
  const size = Math.ceil(length / parts);
  return Array.from({ length: parts }, (_, k) => Math.max(0, Math.min(size, length - k * size)));
}
