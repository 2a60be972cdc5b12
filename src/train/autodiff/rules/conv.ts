import { intAttribute, intsAttribute } from '../../../onnx/node-builders.js';
import { attr } from '../ir.js';
import { convPads } from '../shapes.js';
import { upstream, type GradientRule, type VjpContext } from './rule.js';

/**
 * Conv's input gradient is the transposed convolution of the upstream gradient with the same
 * weight tensor (ConvTranspose reads W [M, C/group, k...] in exactly Conv's layout), with the
 * forward's strides, dilations, pads and groups. A strided convolution drops the last rows
 * when (in + pads − extent) is not a multiple of the stride; output_padding restores them
 * (their gradient is zero), so the result has the input's shape exactly.
 */
function conv(ctx: VjpContext): Array<string | undefined> {
  const { node, e } = ctx;
  if (ctx.needs[1] || ctx.needs[2]) ctx.unsupported('gradients of the weight or bias are not built (weights are frozen)');
  const [X, W] = node.inputs as [string, string];
  const x = ctx.dims(X);
  const w = ctx.dims(W);
  const y = ctx.dims(node.outputs[0]!);
  const spatial = x.slice(2);
  const n = spatial.length;
  const kernel = attr.ints(node, 'kernel_shape') ?? w.slice(2);
  const strides = attr.ints(node, 'strides') ?? spatial.map(() => 1);
  const dilations = attr.ints(node, 'dilations') ?? spatial.map(() => 1);
  const pads = convPads(node, spatial, kernel);
  const outputPadding = spatial.map((d, i) => d - ((y[i + 2]! - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - pads[i]! - pads[i + n]!));
  const gX = e.op1(
    'ConvTranspose',
    [upstream(ctx), ctx.fwd(W)],
    [
      intAttribute('group', attr.int(node, 'group', 1)),
      intsAttribute('kernel_shape', kernel),
      intsAttribute('strides', strides),
      intsAttribute('dilations', dilations),
      intsAttribute('pads', pads),
      intsAttribute('output_padding', outputPadding),
    ],
  );
  return [gX, undefined, undefined];
}

export const CONV_RULES: Record<string, GradientRule> = {
  Conv: { differentiable: () => [0, 1, 2], vjp: conv },
};
