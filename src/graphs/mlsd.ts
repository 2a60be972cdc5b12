import { ElemType } from '../onnx/proto.js';
import { conv2d, scopeOf, type ConvOptions, type Net } from './layers.js';
import { GraphBuilder } from './onnx-builder.js';
import { checkStateDict } from './state-dict-check.js';
import { ComponentWeights, type TensorStore } from './weights.js';

/**
 * M-LSD's line network (Gu et al. 2021; MobileV2_MLSD_Large in controlnet_aux.mlsd and sd-webui-controlnet's
 * annotator/mlsd; weights mlsd_large_512_fp32.pth in lllyasviel/Annotators): a MobileNetV2 cut after its 96-channel
 * stage (the first convolution takes four channels: RGB and a plane of ones), its features at 1/2 .. 1/16 of the
 * picture merged top-down (BlockTypeA: 1x1 convolutions, the coarser one upsampled bilinearly with align_corners;
 * BlockTypeB: two 3x3 convolutions, the first residual), then BlockTypeC (a 3x3 convolution dilated by 5, a 3x3, a
 * 1x1 to 16 channels). Every convolution but the heads' last is followed by BatchNorm2d (eval, eps 1e-5) and ReLU
 * (ReLU6 in the backbone). Stride-2 convolutions pad only right and bottom, TFLite's way. The network keeps channels
 * 7.. of its 16: the graph returns 7..11, the line centres' logits and the four end displacements, at half the
 * picture's size. Sides must be multiples of 32 (the preprocessor pads to 64).
 */

/** MobileNetV2's inverted residual stages kept: expansion, channels, blocks, first stride. */
const STAGES: ReadonlyArray<readonly [number, number, number, number]> = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
];
const STEM = 32;
/** The backbone features the top-down path reads (c1..c5). */
const FPN_SELECTED = [1, 3, 6, 10, 13];
/** The merging blocks: BlockTypeA's path, its finer feature (index into c1..c5) and its channels, then BlockTypeB's. */
const MERGES: ReadonlyArray<{ a: string; b: string; fine: number; fineChannels: number; coarseChannels: number; upscale: boolean }> = [
  { a: 'block15', b: 'block16', fine: 3, fineChannels: 64, coarseChannels: 96, upscale: false },
  { a: 'block17', b: 'block18', fine: 2, fineChannels: 32, coarseChannels: 64, upscale: true },
  { a: 'block19', b: 'block20', fine: 1, fineChannels: 24, coarseChannels: 64, upscale: true },
  { a: 'block21', b: 'block22', fine: 0, fineChannels: 16, coarseChannels: 64, upscale: true },
];
const WIDTH = 64;
const HEAD_CHANNELS = 16;
/** x[:, 7:]'s channels 0..4: the centre logit and the displacements (x_start, y_start, x_end, y_end). */
const KEPT = [7, 12];

interface Backbone {
  /** Each block's (features.i) input channels, output channels, stride and expansion. */
  blocks: Array<{ inp: number; oup: number; stride: number; expand: number }>;
}

function backbone(): Backbone {
  const blocks: Backbone['blocks'] = [];
  let inp = STEM;
  for (const [expand, channels, count, stride] of STAGES) {
    for (let i = 0; i < count; i++) {
      blocks.push({ inp, oup: channels, stride: i === 0 ? stride : 1, expand });
      inp = channels;
    }
  }
  return { blocks };
}

/**
 * Every tensor of mlsd_large_512_fp32.pth and its shape; `counters`: with BatchNorm's num_batches_tracked (int64
 * scalars torch saves in state dicts; a file saved without them loads too).
 */
export function mlsdTensorShapes(counters = true): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const conv = (path: string, out: number, inC: number, k: number, bias: boolean): void => {
    shapes.set(`${path}.weight`, [out, inC, k, k]);
    if (bias) shapes.set(`${path}.bias`, [out]);
  };
  const bn = (path: string, channels: number): void => {
    for (const p of ['weight', 'bias', 'running_mean', 'running_var']) shapes.set(`${path}.${p}`, [channels]);
    if (counters) shapes.set(`${path}.num_batches_tracked`, []);
  };
  conv('backbone.features.0.0', STEM, 4, 3, false);
  bn('backbone.features.0.1', STEM);
  backbone().blocks.forEach(({ inp, oup, expand }, i) => {
    const path = `backbone.features.${i + 1}.conv`;
    const hidden = inp * expand;
    let at = 0;
    if (expand !== 1) {
      conv(`${path}.0.0`, hidden, inp, 1, false);
      bn(`${path}.0.1`, hidden);
      at = 1;
    }
    conv(`${path}.${at}.0`, hidden, 1, 3, false);
    bn(`${path}.${at}.1`, hidden);
    conv(`${path}.${at + 1}`, oup, hidden, 1, false);
    bn(`${path}.${at + 2}`, oup);
  });
  for (const m of MERGES) {
    conv(`${m.a}.conv1.0`, WIDTH, m.coarseChannels, 1, true);
    bn(`${m.a}.conv1.1`, WIDTH);
    conv(`${m.a}.conv2.0`, WIDTH, m.fineChannels, 1, true);
    bn(`${m.a}.conv2.1`, WIDTH);
    conv(`${m.b}.conv1.0`, 2 * WIDTH, 2 * WIDTH, 3, true);
    bn(`${m.b}.conv1.1`, 2 * WIDTH);
    conv(`${m.b}.conv2.0`, WIDTH, 2 * WIDTH, 3, true);
    bn(`${m.b}.conv2.1`, WIDTH);
  }
  conv('block23.conv1.0', WIDTH, WIDTH, 3, true);
  bn('block23.conv1.1', WIDTH);
  conv('block23.conv2.0', WIDTH, WIDTH, 3, true);
  bn('block23.conv2.1', WIDTH);
  conv('block23.conv3', HEAD_CHANNELS, WIDTH, 1, true);
  return shapes;
}

type Activation = 'relu' | 'relu6' | 'none';

/** Convolution (`path`.0, or `conv` itself), BatchNorm2d in eval (`norm`) and the activation. */
function convNorm(net: Net, conv: string, norm: string, x: string, inC: number, out: number, activation: Activation, options: ConvOptions = {}): string {
  const { g } = net;
  const scope = scopeOf(norm);
  const y = conv2d(net, conv, x, inC, out, options);
  const param = (p: string) => g.weight(net.w.take(`${norm}.${p}`, 'as-is', [out]));
  const normed = g.op('BatchNormalization', [y, param('weight'), param('bias'), param('running_mean'), param('running_var')], scope, { epsilon: { float: 1e-5 } });
  if (activation === 'relu') return g.op('Relu', [normed], scope);
  return activation === 'relu6' ? g.op('Clip', [normed, g.floats([0], []), g.floats([6], [])], scope) : normed;
}

/** The backbone's 3x3 convolutions (no bias) at `stride`: stride 2 pads one zero row and column after, none before. */
const strided = (stride: number): ConvOptions => (stride === 2 ? { stride, pads: [0, 0, 1, 1], bias: false } : { stride, bias: false });

/** image [1, 4, H, W] (RGB and ones, / 127.5 - 1) -> maps [1, 5, H / 2, W / 2] (centre logit, displacements). */
export function buildMlsd(store: TensorStore): GraphBuilder {
  const counters = store.describe('backbone.features.0.1.num_batches_tracked') !== undefined;
  checkStateDict(store, mlsdTensorShapes(counters), "M-LSD's mlsd_large_512_fp32.pth", "lllyasviel/Annotators' mlsd_large_512_fp32.pth");
  const g = new GraphBuilder('mlsd', 'float32');
  const net: Net = { g, w: new ComponentWeights('M-LSD network', store, (name) => ({ key: name })) };
  const image = g.input('image', ElemType.FLOAT, [1, 4, 'height', 'width']);
  let h = convNorm(net, 'backbone.features.0.0', 'backbone.features.0.1', image, 4, STEM, 'relu6', strided(2));
  const features: string[] = [];
  backbone().blocks.forEach(({ inp, oup, stride, expand }, i) => {
    const path = `backbone.features.${i + 1}.conv`;
    const hidden = inp * expand;
    let y = h;
    let at = 0;
    if (expand !== 1) {
      y = convNorm(net, `${path}.0.0`, `${path}.0.1`, y, inp, hidden, 'relu6', { bias: false });
      at = 1;
    }
    y = convNorm(net, `${path}.${at}.0`, `${path}.${at}.1`, y, 1, hidden, 'relu6', { ...strided(stride), groups: hidden });
    y = convNorm(net, `${path}.${at + 1}`, `${path}.${at + 2}`, y, hidden, oup, 'none', { bias: false });
    h = stride === 1 && inp === oup ? g.op('Add', [h, y], scopeOf(`backbone.features.${i + 1}`)) : y;
    if (FPN_SELECTED.includes(i + 1)) features.push(h);
  });
  let x = features[4]!;
  for (const m of MERGES) {
    let coarse = convNorm(net, `${m.a}.conv1.0`, `${m.a}.conv1.1`, x, m.coarseChannels, WIDTH, 'relu');
    const fine = convNorm(net, `${m.a}.conv2.0`, `${m.a}.conv2.1`, features[m.fine]!, m.fineChannels, WIDTH, 'relu');
    if (m.upscale) coarse = g.op('Resize', [coarse, '', g.floats([1, 1, 2, 2])], scopeOf(m.a), { mode: 'linear', coordinate_transformation_mode: 'align_corners' });
    x = g.op('Concat', [fine, coarse], scopeOf(m.a), { axis: 1 });
    x = g.op('Add', [convNorm(net, `${m.b}.conv1.0`, `${m.b}.conv1.1`, x, 2 * WIDTH, 2 * WIDTH, 'relu'), x], scopeOf(m.b));
    x = convNorm(net, `${m.b}.conv2.0`, `${m.b}.conv2.1`, x, 2 * WIDTH, WIDTH, 'relu');
  }
  x = convNorm(net, 'block23.conv1.0', 'block23.conv1.1', x, WIDTH, WIDTH, 'relu', { dilation: 5 });
  x = convNorm(net, 'block23.conv2.0', 'block23.conv2.1', x, WIDTH, WIDTH, 'relu');
  x = conv2d(net, 'block23.conv3', x, WIDTH, HEAD_CHANNELS);
  const maps = g.op('Slice', [x, g.ints([KEPT[0]!]), g.ints([KEPT[1]!]), g.ints([1])], '/head');
  g.output(maps, 'maps', ElemType.FLOAT, [1, KEPT[1]! - KEPT[0]!, 'half_height', 'half_width']);
  return g;
}
