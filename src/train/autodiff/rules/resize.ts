import { attr } from '../ir.js';
import { FIRST_INPUT, upstream, type GradientRule, type VjpContext } from './rule.js';

/**
 * Resize by whole factors in nearest mode, as every UNet upsampler exports it
 * (F.interpolate(scale_factor=2, mode='nearest'): asymmetric coordinates, floor): each input
 * value is copied into a k×k block, so its gradient is the block's sum — a reshape that splits
 * each axis into (n, k) and a ReduceSum over the k axes. The rule checks, output index by
 * output index, that the op's coordinate and rounding modes really give that copy pattern.
 */

/** Where output index j reads from along an axis of n → m, per the ONNX Resize spec. */
function sourceIndex(mode: string, rounding: string, j: number, n: number, m: number, scale: number): number | undefined {
  let x: number;
  switch (mode) {
    case 'half_pixel':
    case 'half_pixel_symmetric': // equal to half_pixel when the output size is exactly n·scale
      x = (j + 0.5) / scale - 0.5;
      break;
    case 'pytorch_half_pixel':
      x = m > 1 ? (j + 0.5) / scale - 0.5 : 0;
      break;
    case 'align_corners':
      x = m > 1 ? (j * (n - 1)) / (m - 1) : 0;
      break;
    case 'asymmetric':
      x = j / scale;
      break;
    case 'tf_half_pixel_for_nn':
      x = (j + 0.5) / scale;
      break;
    default:
      return undefined;
  }
  const f = Math.floor(x);
  const frac = x - f;
  let i: number;
  switch (rounding) {
    case 'round_prefer_floor':
      i = frac <= 0.5 ? f : f + 1;
      break;
    case 'round_prefer_ceil':
      i = frac < 0.5 ? f : f + 1;
      break;
    case 'floor':
      i = f;
      break;
    case 'ceil':
      i = Math.ceil(x);
      break;
    default:
      return undefined;
  }
  return Math.min(Math.max(i, 0), n - 1);
}

function resize(ctx: VjpContext): Array<string | undefined> {
  const { node, e } = ctx;
  if (attr.string(node, 'mode', 'nearest') !== 'nearest') ctx.unsupported(`mode '${attr.string(node, 'mode', '')}' has no rule (only nearest)`);
  if (attr.int(node, 'antialias', 0) !== 0 || attr.ints(node, 'axes')) ctx.unsupported('antialias and axes have no rule');
  const coordinates = attr.string(node, 'coordinate_transformation_mode', 'half_pixel');
  const rounding = attr.string(node, 'nearest_mode', 'round_prefer_floor');
  const x = ctx.dims(node.inputs[0]!);
  const y = ctx.dims(node.outputs[0]!);
  const scales = node.inputs[2] ? ctx.constant(node.inputs[2])?.data : undefined;
  const factors = x.map((n, axis) => {
    const m = y[axis]!;
    const k = m / n;
    const scale = scales?.length ? scales[axis]! : k;
    if (!Number.isInteger(k)) ctx.unsupported(`axis ${axis} resizes ${n} to ${m}, not by a whole factor`);
    for (let j = 0; j < m; j++) {
      if (sourceIndex(coordinates, rounding, j, n, m, scale) !== Math.floor(j / k)) {
        ctx.unsupported(`'${coordinates}' coordinates with '${rounding}' rounding do not copy each value into a block`);
      }
    }
    return k;
  });
  // [.., n, k, ..] for every enlarged axis; ReduceSum drops the k axes.
  const split = x.flatMap((n, i) => (factors[i]! > 1 ? [n, factors[i]!] : [n]));
  const kAxes: number[] = [];
  x.forEach((_, i) => {
    if (factors[i]! > 1) kAxes.push(i + kAxes.length + 1);
  });
  const g = upstream(ctx);
  return [kAxes.length ? e.reduceSum(e.reshape(g, split), kAxes, false) : g, undefined, undefined, undefined];
}

export const RESIZE_RULES: Record<string, GradientRule> = {
  Resize: { differentiable: FIRST_INPUT, vjp: resize },
};
