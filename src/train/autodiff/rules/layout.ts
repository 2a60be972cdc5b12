import { intAttribute } from '../../../onnx/node-builders.js';
import { attr } from '../ir.js';
import { normAxis, sliceInputs, sliceSpec, splitSizes } from '../shapes.js';
import { DataType, numel } from '../tensor.js';
import { FIRST_INPUT, upstream, type GradientRule, type VjpContext } from './rule.js';

/**
 * Ops that move values without computing on them: their gradient moves the upstream gradient
 * back (reshape, inverse permutation, the slice a Concat took, zeros where a Slice or Pad dropped
 * or added values), or sums where a Gather read a row more than once.
 */

const reshapeBack: GradientRule = { differentiable: FIRST_INPUT, vjp: (ctx) => [ctx.e.reshape(upstream(ctx), ctx.dims(ctx.node.inputs[0]!))] };

function transpose(ctx: VjpContext): Array<string | undefined> {
  const rank = ctx.dims(ctx.node.inputs[0]!).length;
  const perm = attr.ints(ctx.node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const inverse = new Array<number>(rank);
  perm.forEach((p, i) => (inverse[p] = i));
  return [ctx.e.transpose(upstream(ctx), inverse)];
}

function concat(ctx: VjpContext): Array<string | undefined> {
  const { node, e } = ctx;
  const rank = ctx.dims(node.outputs[0]!).length;
  const axis = normAxis(attr.int(node, 'axis', 0), rank);
  let offset = 0;
  return node.inputs.map((input, i) => {
    const size = ctx.dims(input)[axis]!;
    const start = offset;
    offset += size;
    return ctx.needs[i] ? e.op1('Slice', [upstream(ctx), e.ints([start]), e.ints([start + size]), e.ints([axis])]) : undefined;
  });
}

function split(ctx: VjpContext): Array<string | undefined> {
  const { node, e } = ctx;
  const x = ctx.dims(node.inputs[0]!);
  const axis = normAxis(attr.int(node, 'axis', 0), x.length);
  const splitValue = node.inputs[1] ? ctx.constant(node.inputs[1]) : undefined;
  const sizes = splitSizes(node, ctx.opset, splitValue && { elemType: DataType.INT64, value: splitValue }, x[axis]!);
  if (!sizes) ctx.unsupported('its split sizes are not constant');
  const elemType = ctx.elemType(node.inputs[0]!);
  const parts = sizes.map((size, k) => ctx.gradOut[k] ?? e.zeros(x.map((d, i) => (i === axis ? size : d)), elemType));
  return [parts.length === 1 ? parts[0] : e.op1('Concat', parts, [intAttribute('axis', axis)])];
}

/**
 * Slice with positive steps: each strided axis is spread back by interleaving zeros (append
 * an axis, pad it to the step, merge), then one Pad puts the slice at its offsets.
 */
function slice(ctx: VjpContext): Array<string | undefined> {
  const { node, e } = ctx;
  const x = ctx.dims(node.inputs[0]!);
  const bounds = sliceInputs(
    node.inputs.map((v) => {
      const value = v ? ctx.constant(v) : undefined;
      return value && { elemType: value.elemType, value };
    }),
    node,
  );
  if (!bounds) ctx.unsupported('its starts/ends/axes/steps are not constant');
  const spec = sliceSpec(x, bounds.starts, bounds.ends, bounds.axes, bounds.steps);
  if (spec.step.some((s) => s < 1)) ctx.unsupported('negative steps have no rule');
  let g = upstream(ctx);
  const span = [...spec.count];
  spec.step.forEach((step, axis) => {
    if (step === 1 || span[axis]! === 0) return;
    const m = span[axis]!;
    const withStep = [...span.slice(0, axis + 1), 1, ...span.slice(axis + 1)];
    const pads = new Array<number>(2 * withStep.length).fill(0);
    pads[withStep.length + axis + 1] = step - 1;
    const spread = e.op1('Pad', [e.reshape(g, withStep), e.ints(pads)]);
    const merged = [...span];
    merged[axis] = m * step;
    g = e.reshape(spread, merged);
    // Positions past the input's end held only padding.
    const fit = Math.min(m * step, x[axis]! - spec.start[axis]!);
    if (fit < m * step) g = e.op1('Slice', [g, e.ints([0]), e.ints([fit]), e.ints([axis])]);
    span[axis] = fit;
  });
  const pads = [...spec.start, ...x.map((d, i) => d - spec.start[i]! - span[i]!)];
  return [pads.every((p) => p === 0) ? g : e.op1('Pad', [g, e.ints(pads)]), undefined, undefined, undefined, undefined];
}

/**
 * Gather's data gradient: dX[.., j, ..] = Σ_q [I_q = j] · g[.., q, ..], written as a one-hot
 * matrix [n, Q] times the gradient viewed as [P, Q, R] (OneHot wraps negative indices as Gather
 * does). Exact in any opset from 11; ScatterND's add reduction would need opset 16. ONNX
 * Runtime's OneHot has kernels for int64 indices and float32 values only: the 0/1 matrix is
 * built so and cast when the data is float64.
 */
function gather(ctx: VjpContext): Array<string | undefined> {
  const { node, e } = ctx;
  const [X, I] = node.inputs as [string, string];
  const x = ctx.dims(X);
  const axis = normAxis(attr.int(node, 'axis', 0), x.length);
  const q = numel(ctx.dims(I));
  const [P, n, R] = [numel(x.slice(0, axis)), x[axis]!, numel(x.slice(axis + 1))];
  const elemType = ctx.elemType(X);
  let indices = e.reshape(ctx.fwd(I), [q]);
  if (ctx.elemType(I) !== DataType.INT64) indices = e.op1('Cast', [indices], [intAttribute('to', DataType.INT64)]);
  const onOff = e.constant({ elemType: DataType.FLOAT, dims: [2], data: [0, 1] });
  let oneHot = e.op1('OneHot', [indices, e.ints([n]), onOff], [intAttribute('axis', 0)]);
  if (elemType !== DataType.FLOAT) oneHot = e.op1('Cast', [oneHot], [intAttribute('to', elemType)]);
  const gX = e.op1('MatMul', [oneHot, e.reshape(upstream(ctx), [P, q, R])]);
  return [e.reshape(gX, x), undefined];
}

function pad(ctx: VjpContext): Array<string | undefined> {
  const { node, e } = ctx;
  if (attr.string(node, 'mode', 'constant') !== 'constant') ctx.unsupported('only constant padding has a rule');
  if (node.inputs[3]) ctx.unsupported('the axes input has no rule');
  const pads = ctx.constant(node.inputs[1]!)?.data;
  if (!pads) ctx.unsupported('its pads are not constant');
  const x = ctx.dims(node.inputs[0]!);
  const y = ctx.dims(node.outputs[0]!);
  const axes = x.map((_, i) => i);
  // Negative pads cropped the input: those positions get zero gradient, put back with a Pad.
  const starts = axes.map((i) => Math.max(pads[i]!, 0));
  const ends = axes.map((i) => y[i]! - Math.max(pads[i + x.length]!, 0));
  let g = e.op1('Slice', [upstream(ctx), e.ints(starts), e.ints(ends), e.ints(axes)]);
  const restore = [...axes.map((i) => Math.max(-pads[i]!, 0)), ...axes.map((i) => Math.max(-pads[i + x.length]!, 0))];
  if (restore.some((p) => p > 0)) g = e.op1('Pad', [g, e.ints(restore)]);
  return [g, undefined, undefined];
}

export const LAYOUT_RULES: Record<string, GradientRule> = {
  Reshape: reshapeBack,
  Flatten: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Transpose: { differentiable: FIRST_INPUT, vjp: transpose },
  Concat: { differentiable: (node) => node.inputs.map((_, i) => i), vjp: concat },
  Split: { differentiable: FIRST_INPUT, vjp: split },
  Slice: { differentiable: FIRST_INPUT, vjp: slice },
  Gather: { differentiable: FIRST_INPUT, vjp: gather },
  Expand: {
    differentiable: FIRST_INPUT,
    vjp: (ctx) => [ctx.e.unbroadcast(upstream(ctx), ctx.dims(ctx.node.outputs[0]!), ctx.dims(ctx.node.inputs[0]!)), undefined],
  },
  Pad: { differentiable: FIRST_INPUT, vjp: pad },
};
