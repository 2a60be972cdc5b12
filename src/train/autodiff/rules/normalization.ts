import { attr } from '../ir.js';
import { normAxis } from '../shapes.js';
import { upstream, type GradientRule, type VjpContext } from './rule.js';

/**
 * Normalisations y = x̂·scale + bias, x̂ = (x − μ)·rstd over some axes. With ĝ = g·scale:
 *   dx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂))
 * μ and rstd are recomputed from x with ReduceMean (no standard op exposes InstanceNorm's).
 * GroupNorm exports reach here as Reshape → InstanceNormalization(scale 1, bias 0) → Reshape →
 * Mul → Add; a scale of constant ones is skipped.
 */

function normBackward(ctx: VjpContext, x: string, gHat: string, axes: readonly number[], epsilon: number, elemType: number): string {
  const { e } = ctx;
  const mean = e.reduceMean(x, axes, true);
  const centred = e.sub(x, mean);
  const variance = e.reduceMean(e.mul(centred, centred), axes, true);
  const rstd = e.op1('Reciprocal', [e.op1('Sqrt', [e.add(variance, e.scalar(epsilon, elemType))])]);
  const xHat = e.mul(centred, rstd);
  const meanG = e.reduceMean(gHat, axes, true);
  const meanGx = e.reduceMean(e.mul(gHat, xHat), axes, true);
  return e.mul(rstd, e.sub(e.sub(gHat, meanG), e.mul(xHat, meanGx)));
}

function frozenAffine(ctx: VjpContext): void {
  if (ctx.needs.slice(1).some(Boolean)) ctx.unsupported('gradients of the scale or bias are not built (weights are frozen)');
}

/** g·scale, with scale reshaped to broadcast from `shapeForScale`; a constant scale of ones is skipped. */
function scaled(ctx: VjpContext, g: string, scale: string, shapeForScale: readonly number[]): string {
  const value = ctx.constant(scale);
  if (value?.data.every((v) => v === 1)) return g;
  return ctx.e.mul(g, ctx.e.reshape(ctx.fwd(scale), shapeForScale));
}

function instanceNorm(ctx: VjpContext): Array<string | undefined> {
  frozenAffine(ctx);
  const { node } = ctx;
  const x = ctx.dims(node.inputs[0]!);
  const gHat = scaled(ctx, upstream(ctx), node.inputs[1]!, [x[1]!, ...x.slice(2).map(() => 1)]);
  const axes = x.slice(2).map((_, i) => i + 2);
  return [normBackward(ctx, ctx.fwd(node.inputs[0]!), gHat, axes, attr.float(node, 'epsilon', 1e-5), ctx.elemType(node.outputs[0]!)), undefined, undefined];
}

function layerNorm(ctx: VjpContext): Array<string | undefined> {
  frozenAffine(ctx);
  const { node } = ctx;
  if (node.outputs.slice(1).some((o) => o !== '' && ctx.gradOut[node.outputs.indexOf(o)] !== undefined)) {
    ctx.unsupported('its Mean/InvStdDev outputs are on the differentiated path');
  }
  const x = ctx.dims(node.inputs[0]!);
  const axis = normAxis(attr.int(node, 'axis', -1), x.length);
  const scale = node.inputs[1]!;
  const value = ctx.constant(scale);
  const gHat = value?.data.every((v) => v === 1) ? upstream(ctx) : ctx.e.mul(upstream(ctx), ctx.fwd(scale));
  const axes = x.slice(axis).map((_, i) => i + axis);
  return [normBackward(ctx, ctx.fwd(node.inputs[0]!), gHat, axes, attr.float(node, 'epsilon', 1e-5), ctx.elemType(node.outputs[0]!)), undefined, undefined];
}

/** GroupNormalization: scale and bias per group in opset 18, per channel from 21. */
function groupNorm(ctx: VjpContext): Array<string | undefined> {
  frozenAffine(ctx);
  const { node, e } = ctx;
  const x = ctx.dims(node.inputs[0]!);
  const groups = attr.int(node, 'num_groups', 0);
  if (groups <= 0 || x[1]! % groups !== 0) ctx.unsupported(`num_groups ${groups} does not divide ${x[1]} channels`);
  const grouped = [x[0]!, groups, x.slice(1).reduce((a, b) => a * b, 1) / groups];
  const perChannel = ctx.opset >= 21;
  const g = upstream(ctx);
  const gHat = perChannel
    ? e.reshape(scaled(ctx, g, node.inputs[1]!, [x[1]!, ...x.slice(2).map(() => 1)]), grouped)
    : scaled(ctx, e.reshape(g, grouped), node.inputs[1]!, [groups, 1]);
  const gx = normBackward(ctx, e.reshape(ctx.fwd(node.inputs[0]!), grouped), gHat, [2], attr.float(node, 'epsilon', 1e-5), ctx.elemType(node.outputs[0]!));
  return [e.reshape(gx, x), undefined, undefined];
}

export const NORMALIZATION_RULES: Record<string, GradientRule> = {
  InstanceNormalization: { differentiable: () => [0, 1, 2], vjp: instanceNorm },
  LayerNormalization: { differentiable: () => [0, 1, 2], vjp: layerNorm },
  GroupNormalization: { differentiable: () => [0, 1, 2], vjp: groupNorm },
};
