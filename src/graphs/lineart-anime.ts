import { ElemType } from '../onnx/proto.js';
import { conv2d, scopeOf, type Net } from './layers.js';
import { instanceNorm } from './lineart.js';
import { GraphBuilder } from './onnx-builder.js';
import { checkStateDict, storedPrefix } from './state-dict-check.js';
import { ComponentWeights, type TensorStore } from './weights.js';

/**
 * The anime lineart network (controlnet_aux.lineart_anime and sd-webui-controlnet's annotator/lineart_anime:
 * pix2pix's UnetGenerator(3, 1, 8, ngf 64) with InstanceNorm2d without affine parameters (so every convolution has a
 * bias) and no dropout; weights netG.pth in lllyasviel/Annotators). Eight levels, each a 4x4 stride-2 convolution
 * down and a 4x4 stride-2 transposed convolution up; every level but the outermost returns its input (after the
 * down path's in-place LeakyReLU(0.2), which the skip therefore sees too) concatenated with its up path. Sides must be
 * multiples of 256 (the preprocessor resizes to them).
 */

/** Channels at each level's output (level 0's input is the picture's 3). */
const WIDTHS = [64, 128, 256, 512, 512, 512, 512, 512];
const LEVELS = WIDTHS.length;

/** Level k's module path: model.model, then model.model.1.model, model.model.1.model.3.model, … */
const levelPath = (k: number): string => (k === 0 ? 'model.model' : `model.model.1${'.model.3'.repeat(k - 1)}.model`);
/** Where the level's down and up convolutions sit in its Sequential. */
const downOf = (k: number): string => `${levelPath(k)}.${k === 0 ? 0 : 1}`;
const upOf = (k: number): string => `${levelPath(k)}.${k === 0 ? 3 : k === LEVELS - 1 ? 3 : 5}`;

/** Every tensor of netG.pth (after `prefix`) and its shape. */
export function lineartAnimeTensorShapes(prefix = ''): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (let k = 0; k < LEVELS; k++) {
    const inner = WIDTHS[k]!;
    const outer = k === 0 ? 1 : WIDTHS[k - 1]!;
    const input = k === 0 ? 3 : outer;
    const upInput = k === LEVELS - 1 ? inner : 2 * inner;
    shapes.set(`${prefix}${downOf(k)}.weight`, [inner, input, 4, 4]);
    shapes.set(`${prefix}${downOf(k)}.bias`, [inner]);
    shapes.set(`${prefix}${upOf(k)}.weight`, [upInput, outer, 4, 4]);
    shapes.set(`${prefix}${upOf(k)}.bias`, [outer]);
  }
  return shapes;
}

const STRIDE2 = { stride: 2, pads: [1, 1, 1, 1] as [number, number, number, number] };

/** torch.nn.ConvTranspose2d(inC, out, 4, stride=2, padding=1): sides doubled. */
function up(net: Net, path: string, x: string, inC: number, out: number): string {
  const { g } = net;
  const weight = g.weight(net.w.take(`${path}.weight`, 'as-is', [inC, out, 4, 4]));
  const bias = g.weight(net.w.take(`${path}.bias`, 'as-is', [out]));
  return g.op('ConvTranspose', [x, weight, bias], scopeOf(path), { kernel_shape: [4, 4], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 });
}

/** Level k (k >= 1) on x [N, outer, h, w] -> [N, 2 * outer, h, w]. */
function level(net: Net, k: number, x: string): string {
  const { g } = net;
  const scope = scopeOf(levelPath(k));
  const inner = WIDTHS[k]!;
  const outer = WIDTHS[k - 1]!;
  const skip = g.op('LeakyRelu', [x], scope, { alpha: { float: 0.2 } });
  const down = conv2d(net, downOf(k), skip, outer, inner, STRIDE2);
  const innermost = k === LEVELS - 1;
  const middle = innermost ? down : level(net, k + 1, instanceNorm(g, down, inner, scope));
  const upped = up(net, upOf(k), g.op('Relu', [middle], scope), innermost ? inner : 2 * inner, outer);
  return g.op('Concat', [skip, instanceNorm(g, upped, outer, scope)], scope, { axis: 1 });
}

/** image [1, 3, H, W] (RGB / 127.5 - 1; sides multiples of 256) -> line [1, 1, H, W] in -1..1 (tanh). */
export function buildLineartAnime(store: TensorStore): GraphBuilder {
  const prefix = storedPrefix(store, `${downOf(0)}.weight`, ['', 'module.']);
  checkStateDict(store, lineartAnimeTensorShapes(prefix), "lineart_anime's netG.pth", "lllyasviel/Annotators' netG.pth");
  const g = new GraphBuilder('lineart-anime', 'float32');
  const net: Net = { g, w: new ComponentWeights('lineart_anime network', store, (name) => ({ key: `${prefix}${name}` })) };
  const image = g.input('image', ElemType.FLOAT, [1, 3, 'height', 'width']);
  const down = conv2d(net, downOf(0), image, 3, WIDTHS[0]!, STRIDE2);
  const upped = up(net, upOf(0), g.op('Relu', [level(net, 1, down)], scopeOf(levelPath(0))), 2 * WIDTHS[0]!, 1);
  g.output(g.op('Tanh', [upped], scopeOf(levelPath(0))), 'line', ElemType.FLOAT, [1, 1, 'height', 'width']);
  return g;
}
