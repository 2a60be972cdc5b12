import { ElemType } from '../onnx/proto.js';
import { conv2d, scopeOf, type Net } from './layers.js';
import { GraphBuilder } from './onnx-builder.js';
import { checkStateDict } from './state-dict-check.js';
import { ComponentWeights, type TensorStore } from './weights.js';

/**
 * lllyasviel's lineart network (controlnet_aux.lineart and sd-webui-controlnet's annotator/lineart:
 * Generator(3, 1, 3); weights sk_model.pth, "lineart_realistic", and sk_model2.pth, "lineart_coarse",
 * in lllyasviel/Annotators): a 7x7 convolution on the reflection-padded picture, two stride-2
 * convolutions, three residual blocks (reflection pad, 3x3 convolution, twice), two transposed
 * stride-2 convolutions back up, a 7x7 convolution to one channel and a sigmoid; every convolution
 * but the last followed by InstanceNorm2d (no affine, eps 1e-5) and, outside the blocks' second
 * half, ReLU. Sides must be multiples of 4 (the preprocessor pads to 64).
 */

const BLOCKS = 3;

/** Every tensor of sk_model.pth and its shape. */
export function lineartTensorShapes(): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const conv = (path: string, out: number, inC: number, k: number, transposed = false): void => {
    shapes.set(`${path}.weight`, transposed ? [inC, out, k, k] : [out, inC, k, k]);
    shapes.set(`${path}.bias`, [out]);
  };
  conv('model0.1', 64, 3, 7);
  conv('model1.0', 128, 64, 3);
  conv('model1.3', 256, 128, 3);
  for (let b = 0; b < BLOCKS; b++) {
    conv(`model2.${b}.conv_block.1`, 256, 256, 3);
    conv(`model2.${b}.conv_block.5`, 256, 256, 3);
  }
  conv('model3.0', 128, 256, 3, true);
  conv('model3.3', 64, 128, 3, true);
  conv('model4.1', 1, 64, 7);
  return shapes;
}

function reflectPad(g: GraphBuilder, x: string, pad: number, scope: string): string {
  return g.op('Pad', [x, g.ints([0, 0, pad, pad, 0, 0, pad, pad])], scope, { mode: 'reflect' });
}

/** torch.nn.InstanceNorm2d(channels) as its defaults are: no affine parameters, eps 1e-5. */
export function instanceNorm(g: GraphBuilder, x: string, channels: number, scope: string): string {
  return g.op('InstanceNormalization', [x, g.floats(new Array<number>(channels).fill(1)), g.floats(new Array<number>(channels).fill(0))], scope, { epsilon: { float: 1e-5 } });
}

/** Convolution, instance norm and (unless `relu` is false) ReLU. */
function stage(net: Net, path: string, x: string, inC: number, out: number, options: { pad?: number; stride?: number; relu?: boolean }): string {
  const scope = scopeOf(path);
  const padded = options.pad ? reflectPad(net.g, x, options.pad, scope) : x;
  const conv = conv2d(net, path, padded, inC, out, options.pad ? { pads: [0, 0, 0, 0] } : { stride: options.stride ?? 1 });
  const normed = instanceNorm(net.g, conv, out, scope);
  return options.relu === false ? normed : net.g.op('Relu', [normed], scope);
}

/** torch.nn.ConvTranspose2d(inC, out, 3, stride=2, padding=1, output_padding=1): sides doubled. */
function upStage(net: Net, path: string, x: string, inC: number, out: number): string {
  const { g } = net;
  const scope = scopeOf(path);
  const weight = g.weight(net.w.take(`${path}.weight`, 'as-is', [inC, out, 3, 3]));
  const bias = g.weight(net.w.take(`${path}.bias`, 'as-is', [out]));
  const y = g.op('ConvTranspose', [x, weight, bias], scope, { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1], dilations: [1, 1], group: 1 });
  return g.op('Relu', [instanceNorm(g, y, out, scope)], scope);
}

/** image [1, 3, H, W] (RGB / 255) -> lines [1, 1, H, W] in 0..1 (1 where there is no line). */
export function buildLineart(store: TensorStore): GraphBuilder {
  checkStateDict(store, lineartTensorShapes(), "lineart's sk_model.pth", "lllyasviel/Annotators' sk_model.pth or sk_model2.pth");
  const g = new GraphBuilder('lineart', 'float32');
  const net: Net = { g, w: new ComponentWeights('lineart network', store, (name) => ({ key: name })) };
  const image = g.input('image', ElemType.FLOAT, [1, 3, 'height', 'width']);
  let h = stage(net, 'model0.1', image, 3, 64, { pad: 3 });
  h = stage(net, 'model1.0', h, 64, 128, { stride: 2 });
  h = stage(net, 'model1.3', h, 128, 256, { stride: 2 });
  for (let b = 0; b < BLOCKS; b++) {
    const path = `model2.${b}.conv_block`;
    const inner = stage(net, `${path}.1`, h, 256, 256, { pad: 1 });
    h = g.op('Add', [h, stage(net, `${path}.5`, inner, 256, 256, { pad: 1, relu: false })], scopeOf(`model2.${b}`));
  }
  h = upStage(net, 'model3.0', h, 256, 128);
  h = upStage(net, 'model3.3', h, 128, 64);
  const last = conv2d(net, 'model4.1', reflectPad(g, h, 3, scopeOf('model4.0')), 64, 1, { pads: [0, 0, 0, 0] });
  g.output(g.op('Sigmoid', [last], scopeOf('model4.2')), 'lines', ElemType.FLOAT, [1, 1, 'height', 'width']);
  return g;
}
