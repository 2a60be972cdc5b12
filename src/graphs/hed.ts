import { ElemType } from '../onnx/proto.js';
import { conv2d, type Net } from './layers.js';
import { GraphBuilder } from './onnx-builder.js';
import { checkStateDict } from './state-dict-check.js';
import { ComponentWeights, type TensorStore } from './weights.js';

/**
 * lllyasviel's HED edge network (ControlNetHED_Apache2 in controlnet_aux.hed and sd-webui-controlnet's
 * annotator/hed; weights ControlNetHED.pth in lllyasviel/Annotators): the RGB picture in 0..255 minus a
 * learnt `norm`, then five blocks of 3x3 convolutions with ReLU (the last four after a 2x2 max pool,
 * floor-sized as torch's max_pool2d), each ending in a 1x1 projection to one channel. The graph
 * returns the five projections at their own sizes; resizing and mixing them is the preprocessor's
 * (src/image/preprocess/hed-edges.ts).
 */

/** Each block's output channels and convolution count, as ControlNetHED_Apache2 fixes them. */
const BLOCKS: ReadonlyArray<{ channels: number; convs: number }> = [
  { channels: 64, convs: 2 },
  { channels: 128, convs: 2 },
  { channels: 256, convs: 3 },
  { channels: 512, convs: 3 },
  { channels: 512, convs: 3 },
];

/** Every tensor of ControlNetHED.pth and its shape. */
export function hedTensorShapes(): Map<string, number[]> {
  const shapes = new Map<string, number[]>([['norm', [1, 3, 1, 1]]]);
  let inChannels = 3;
  BLOCKS.forEach(({ channels, convs }, b) => {
    for (let c = 0; c < convs; c++) {
      shapes.set(`block${b + 1}.convs.${c}.weight`, [channels, c === 0 ? inChannels : channels, 3, 3]);
      shapes.set(`block${b + 1}.convs.${c}.bias`, [channels]);
    }
    shapes.set(`block${b + 1}.projection.weight`, [1, channels, 1, 1]);
    shapes.set(`block${b + 1}.projection.bias`, [1]);
    inChannels = channels;
  });
  return shapes;
}

/** image [1, 3, H, W] (RGB, 0..255) -> projection1..5 [1, 1, H / 2^k, W / 2^k] (k = 0..4, floored). */
export function buildHed(store: TensorStore): GraphBuilder {
  checkStateDict(store, hedTensorShapes(), "HED's ControlNetHED.pth", "lllyasviel/Annotators' ControlNetHED.pth");
  const g = new GraphBuilder('hed', 'float32');
  const net: Net = { g, w: new ComponentWeights('HED network', store, (name) => ({ key: name })) };
  const image = g.input('image', ElemType.FLOAT, [1, 3, 'height', 'width']);
  let h = g.op('Sub', [image, g.weight(net.w.take('norm', 'as-is', [1, 3, 1, 1]))], '/norm');
  let inChannels = 3;
  BLOCKS.forEach(({ channels, convs }, b) => {
    const path = `block${b + 1}`;
    if (b > 0) h = g.op('MaxPool', [h], `/${path}`, { kernel_shape: [2, 2], strides: [2, 2] });
    for (let c = 0; c < convs; c++) h = g.op('Relu', [conv2d(net, `${path}.convs.${c}`, h, c === 0 ? inChannels : channels, channels)], `/${path}/convs.${c}`);
    const projection = conv2d(net, `${path}.projection`, h, channels, 1);
    g.output(projection, `projection${b + 1}`, ElemType.FLOAT, [1, 1, `height${b}`, `width${b}`]);
    inChannels = channels;
  });
  return g;
}
