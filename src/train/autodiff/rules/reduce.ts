import { attr } from '../ir.js';
import { normAxis, reduceAxes } from '../shapes.js';
import { DataType, numel } from '../tensor.js';
import { FIRST_INPUT, upstream, type GradientRule, type VjpContext } from './rule.js';

/** Reductions spread the gradient back over the reduced axes; softmaxes need the output's own weighting. */

function reduceBack(ctx: VjpContext, mean: boolean): Array<string | undefined> {
  const { node, e } = ctx;
  const x = ctx.dims(node.inputs[0]!);
  const axesValue = node.inputs[1] ? ctx.constant(node.inputs[1]) : undefined;
  const axes = reduceAxes(node, ctx.opset, axesValue && { elemType: DataType.INT64, value: axesValue }, x.length);
  if (!axes) ctx.unsupported('its axes are not constant');
  const kept = x.map((d, i) => (axes.includes(i) ? 1 : d));
  let g = upstream(ctx);
  if (attr.int(node, 'keepdims', 1) === 0) g = e.reshape(g, kept);
  if (mean) {
    const count = numel(axes.map((a) => x[a]!));
    g = e.mul(g, e.scalar(1 / count, ctx.elemType(node.outputs[0]!)));
  }
  return [e.expand(g, x)];
}

/** Softmax from opset 13 normalises along one axis (before, over a flattened tail: refused by the caller). */
function softmaxAxis(ctx: VjpContext): number[] {
  return [normAxis(attr.int(ctx.node, 'axis', -1), ctx.dims(ctx.node.inputs[0]!).length)];
}

export const REDUCE_RULES: Record<string, GradientRule> = {
  ReduceSum: { differentiable: FIRST_INPUT, vjp: (ctx) => reduceBack(ctx, false) },
  ReduceMean: { differentiable: FIRST_INPUT, vjp: (ctx) => reduceBack(ctx, true) },
  // dx = y · (g − Σ g·y)
  Softmax: {
    differentiable: FIRST_INPUT,
    vjp: (ctx) => {
      const { e } = ctx;
      const y = ctx.fwd(ctx.node.outputs[0]!);
      const g = upstream(ctx);
      return [e.mul(y, e.sub(g, e.reduceSum(e.mul(g, y), softmaxAxis(ctx), true)))];
    },
  },
  // dx = g − exp(y) · Σ g
  LogSoftmax: {
    differentiable: FIRST_INPUT,
    vjp: (ctx) => {
      const { e } = ctx;
      const g = upstream(ctx);
      return [e.sub(g, e.mul(e.op1('Exp', [ctx.fwd(ctx.node.outputs[0]!)]), e.reduceSum(g, softmaxAxis(ctx), true)))];
    },
  },
};
