import { attr, CONST_LIMIT, type IrNode } from './ir.js';
import { broadcast, normAxis, sliceInputs, sliceSpec, squeezeAxes, type ValueFacts } from './shapes.js';
import { DataType, numel, roundTo, type ConstTensor } from './tensor.js';

/**
 * Constant folding of the shape arithmetic exports carry (Shape → Gather → Unsqueeze → Concat
 * → Reshape, the attention scale from q's last dimension, masks built from Range/Less/Where):
 * once the input shapes are pinned, these are constants and become initialisers. Only ops whose
 * result here is exactly what ONNX Runtime computes are folded: integer arithmetic, data
 * movement, and the correctly rounded float operations (+ − × ÷ √) in float32 or float64.
 * Transcendental functions stay in the graph.
 */

const FOLDABLE_TYPES: ReadonlySet<number> = new Set([DataType.FLOAT, DataType.DOUBLE, DataType.INT64, DataType.INT32, DataType.BOOL, DataType.UINT8, DataType.INT8]);

function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1]! * dims[i + 1]!;
  return s;
}

/** Calls `f` with each output index's flat offsets into every (broadcast) input. */
function forEachBroadcast(out: readonly number[], ins: ReadonlyArray<readonly number[]>, f: (offsets: number[], k: number) => void): void {
  const inStrides = ins.map((d) => {
    const s = strides(d);
    // Right-aligned; broadcast axes read offset 0.
    return out.map((_, i) => {
      const j = i - (out.length - d.length);
      return j < 0 || d[j] === 1 ? 0 : s[j]!;
    });
  });
  const n = numel(out);
  const index = new Array<number>(out.length).fill(0);
  for (let k = 0; k < n; k++) {
    f(
      inStrides.map((s) => index.reduce((acc, v, i) => acc + v * s[i]!, 0)),
      k,
    );
    for (let i = out.length - 1; i >= 0; i--) {
      if (++index[i]! < out[i]!) break;
      index[i] = 0;
    }
  }
}

function elementwise(ins: ConstTensor[], elemType: number, f: (...v: number[]) => number): ConstTensor {
  const dims = broadcast(...ins.map((t) => t.dims));
  const data = new Array<number>(numel(dims));
  forEachBroadcast(dims, ins.map((t) => t.dims), (offsets, k) => {
    data[k] = roundTo(elemType, f(...offsets.map((o, i) => ins[i]!.data[o]!)));
  });
  return { elemType, dims, data };
}

const isFloat = (t: number) => t === DataType.FLOAT || t === DataType.DOUBLE;

function arithmetic(op: string, elemType: number): ((...v: number[]) => number) | undefined {
  const float = isFloat(elemType);
  switch (op) {
    case 'Add':
      return (a, b) => a! + b!;
    case 'Sub':
      return (a, b) => a! - b!;
    case 'Mul':
      return (a, b) => a! * b!;
    case 'Div':
      // Integer division truncates toward zero (C++ `/`).
      return float ? (a, b) => a! / b! : (a, b) => Math.trunc(a! / b!);
    case 'Neg':
      return (a) => -a!;
    case 'Abs':
      return (a) => Math.abs(a!);
    case 'Sqrt':
      return float ? (a) => Math.sqrt(a!) : undefined;
    case 'Floor':
      return float ? (a) => Math.floor(a!) : undefined;
    case 'Ceil':
      return float ? (a) => Math.ceil(a!) : undefined;
    case 'Max':
      return (...v) => Math.max(...v);
    case 'Min':
      return (...v) => Math.min(...v);
    case 'Equal':
      return (a, b) => Number(a === b);
    case 'Less':
      return (a, b) => Number(a! < b!);
    case 'Greater':
      return (a, b) => Number(a! > b!);
    case 'LessOrEqual':
      return (a, b) => Number(a! <= b!);
    case 'GreaterOrEqual':
      return (a, b) => Number(a! >= b!);
    case 'And':
      return (a, b) => Number(Boolean(a) && Boolean(b));
    case 'Or':
      return (a, b) => Number(Boolean(a) || Boolean(b));
    case 'Not':
      return (a) => Number(!a);
    default:
      return undefined;
  }
}

function gather(x: ConstTensor, indices: ConstTensor, axis: number): ConstTensor {
  const a = normAxis(axis, x.dims.length);
  const outer = numel(x.dims.slice(0, a));
  const inner = numel(x.dims.slice(a + 1));
  const n = x.dims[a]!;
  const data: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (const i0 of indices.data) {
      const i = i0 < 0 ? i0 + n : i0;
      for (let j = 0; j < inner; j++) data.push(x.data[(o * n + i) * inner + j]!);
    }
  }
  return { elemType: x.elemType, dims: [...x.dims.slice(0, a), ...indices.dims, ...x.dims.slice(a + 1)], data };
}

function slice(x: ConstTensor, spec: ReturnType<typeof sliceSpec>): ConstTensor {
  const s = strides(x.dims);
  const data: number[] = [];
  const index = new Array<number>(x.dims.length).fill(0);
  const total = numel(spec.count);
  for (let k = 0; k < total; k++) {
    data.push(x.data[index.reduce((acc, v, i) => acc + (spec.start[i]! + v * spec.step[i]!) * s[i]!, 0)]!);
    for (let i = index.length - 1; i >= 0; i--) {
      if (++index[i]! < spec.count[i]!) break;
      index[i] = 0;
    }
  }
  return { elemType: x.elemType, dims: spec.count, data };
}

function concat(parts: ConstTensor[], axis: number): ConstTensor {
  const a = normAxis(axis, parts[0]!.dims.length);
  const outer = numel(parts[0]!.dims.slice(0, a));
  const data: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (const p of parts) {
      const block = numel(p.dims.slice(a));
      for (let j = 0; j < block; j++) data.push(p.data[o * block + j]!);
    }
  }
  const dims = [...parts[0]!.dims];
  dims[a] = parts.reduce((n, p) => n + p.dims[a]!, 0);
  return { elemType: parts[0]!.elemType, dims, data };
}

function transpose(x: ConstTensor, perm: number[]): ConstTensor {
  const dims = perm.map((p) => x.dims[p]!);
  const s = strides(x.dims);
  const data: number[] = [];
  const index = new Array<number>(dims.length).fill(0);
  for (let k = 0; k < x.data.length; k++) {
    data.push(x.data[index.reduce((acc, v, i) => acc + v * s[perm[i]!]!, 0)]!);
    for (let i = dims.length - 1; i >= 0; i--) {
      if (++index[i]! < dims[i]!) break;
      index[i] = 0;
    }
  }
  return { elemType: x.elemType, dims, data };
}

/**
 * The node's outputs as constants, given its inputs' facts and its outputs' inferred facts;
 * undefined when it is not foldable (an input not constant, an op or type not folded here,
 * or a result above the size limit).
 */
export function foldNode(node: IrNode, opset: number, ins: Array<ValueFacts | undefined>, outs: ValueFacts[]): ConstTensor[] | undefined {
  if (node.domain !== '' && node.domain !== 'ai.onnx') return undefined;
  const out = outs[0];
  if (!out?.dims || outs.length !== 1 || !FOLDABLE_TYPES.has(out.elemType) || numel(out.dims) > CONST_LIMIT) return undefined;
  const { elemType, dims } = out;
  const op = node.opType;
  // Shape and Size need only the input's shape.
  if (op === 'Shape') {
    const xd = ins[0]?.dims;
    const r = xd!.length;
    const start = Math.min(Math.max(normAxis(attr.int(node, 'start', 0), r), 0), r);
    return [{ elemType, dims, data: xd!.slice(start, start + dims[0]!) }];
  }
  if (op === 'Size') return ins[0]?.dims ? [{ elemType, dims, data: [numel(ins[0].dims)] }] : undefined;
  if (op === 'ConstantOfShape') {
    const fill = node.attrs.get('value')?.t?.data[0] ?? 0;
    return [{ elemType, dims, data: new Array<number>(numel(dims)).fill(fill) }];
  }
  const values = node.inputs.map((name, i) => (name === '' ? undefined : ins[i]?.value));
  const x = values[0];
  if (!x) return undefined;
  const fn = arithmetic(op, elemType);
  if (fn) {
    const operands = values.filter((v, i) => node.inputs[i] !== '' && v !== undefined) as ConstTensor[];
    if (operands.length !== node.inputs.filter((n) => n !== '').length || !FOLDABLE_TYPES.has(x.elemType)) return undefined;
    return [elementwise(operands, elemType, fn)];
  }
  switch (op) {
    case 'Identity':
    case 'Reshape':
    case 'Flatten':
    case 'Squeeze':
    case 'Unsqueeze':
      if (op === 'Squeeze' || op === 'Unsqueeze') {
        if (opset >= 13 && node.inputs[1] && !values[1]) return undefined;
        if (op === 'Unsqueeze' && !squeezeAxes(node, opset, ins[1])) return undefined;
      }
      if (op === 'Reshape' && !values[1]) return undefined;
      return [{ elemType, dims, data: [...x.data] }];
    case 'Cast':
      return FOLDABLE_TYPES.has(x.elemType) ? [{ elemType, dims, data: x.data.map((v) => roundTo(elemType, v)) }] : undefined;
    case 'Where': {
      const [c, a, b] = values;
      return c && a && b ? [elementwise([c, a, b], elemType, (cv, av, bv) => (cv ? av! : bv!))] : undefined;
    }
    case 'Gather':
      return values[1] ? [gather(x, values[1], attr.int(node, 'axis', 0))] : undefined;
    case 'Concat':
      return values.every((v) => v) ? [concat(values as ConstTensor[], attr.int(node, 'axis', 0))] : undefined;
    case 'Slice': {
      const bounds = sliceInputs(ins, node);
      return bounds ? [slice(x, sliceSpec(x.dims, bounds.starts, bounds.ends, bounds.axes, bounds.steps))] : undefined;
    }
    case 'Transpose':
      return [transpose(x, attr.ints(node, 'perm') ?? x.dims.map((_, i) => x.dims.length - 1 - i))];
    case 'Expand':
      return values[1] ? [expandTo(x, dims)] : undefined;
    case 'Range': {
      // Floating ranges accumulate (value += delta) in ONNX Runtime: left to it.
      const [s, , d] = values.map((v) => v?.data[0]);
      if (isFloat(elemType) || s === undefined || d === undefined || !values[1]) return undefined;
      return [{ elemType, dims, data: Array.from({ length: dims[0]! }, (_, i) => s + i * d) }];
    }
    default:
      return undefined;
  }
}

function expandTo(t: ConstTensor, dims: number[]): ConstTensor {
  const data = new Array<number>(numel(dims));
  forEachBroadcast(dims, [t.dims], ([o], k) => (data[k] = t.data[o!]!));
  return { elemType: t.elemType, dims, data };
}
