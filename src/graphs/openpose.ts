import { ElemType } from '../onnx/proto.js';
import { conv2d, scopeOf, type Net } from './layers.js';
import { GraphBuilder } from './onnx-builder.js';
import { checkStateDict } from './state-dict-check.js';
import { ComponentWeights, type TensorStore } from './weights.js';

/**
 * CMU's OpenPose body network (bodypose_model in controlnet_aux.open_pose.model and sd-webui-controlnet's
 * annotator/openpose; weights body_pose_model.pth in lllyasviel/Annotators, whose keys are the layer names
 * without the Sequential's prefix, as util.transfer reads them): VGG-19's first ten 3x3 convolutions with
 * three 2x2 max pools and two more convolutions to 128 channels (the features, at 1/8 of the picture), then
 * six stages of two branches, part affinity fields (38 channels) and heatmaps (19), each stage after the
 * first reading both branches of the one before beside the features (185 channels). Every convolution has a
 * ReLU but the branches' last; the heatmaps' last of stage 6 keeps its ReLU, because the model's no-ReLU
 * list names Mconv7_stage6_L1 twice and Mconv7_stage6_L2 never.
 */

export type Layer = [name: string, inChannels: number, outChannels: number, kernel: number];

const FEATURES: ReadonlyArray<Layer | 'pool'> = [
  ['conv1_1', 3, 64, 3], ['conv1_2', 64, 64, 3], 'pool',
  ['conv2_1', 64, 128, 3], ['conv2_2', 128, 128, 3], 'pool',
  ['conv3_1', 128, 256, 3], ['conv3_2', 256, 256, 3], ['conv3_3', 256, 256, 3], ['conv3_4', 256, 256, 3], 'pool',
  ['conv4_1', 256, 512, 3], ['conv4_2', 512, 512, 3], ['conv4_3_CPM', 512, 256, 3], ['conv4_4_CPM', 256, 128, 3],
];

/** Branch L1 (part affinity fields) and L2 (heatmaps) and their output channels. */
const BRANCHES = [
  { branch: 'L1', channels: 38 },
  { branch: 'L2', channels: 19 },
] as const;
const STAGES = 6;
const FEATURE_CHANNELS = 128;
const STAGE_INPUT = 38 + 19 + FEATURE_CHANNELS;

function stageLayers(stage: number, branch: string, channels: number): Layer[] {
  if (stage === 1) {
    const name = (k: number) => `conv5_${k}_CPM_${branch}`;
    return [[name(1), 128, 128, 3], [name(2), 128, 128, 3], [name(3), 128, 128, 3], [name(4), 128, 512, 1], [name(5), 512, channels, 1]];
  }
  const name = (k: number) => `Mconv${k}_stage${stage}_${branch}`;
  return [[name(1), STAGE_INPUT, 128, 7], [name(2), 128, 128, 7], [name(3), 128, 128, 7], [name(4), 128, 128, 7], [name(5), 128, 128, 7], [name(6), 128, 128, 1], [name(7), 128, channels, 1]];
}

/** The weight and bias shapes of convolution layers, as a state dict holds them. */
export function layerShapes(layers: Iterable<Layer | 'pool'>): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const layer of layers) {
    if (layer === 'pool') continue;
    const [name, inC, out, k] = layer;
    shapes.set(`${name}.weight`, [out, inC, k, k]);
    shapes.set(`${name}.bias`, [out]);
  }
  return shapes;
}

/** The convolutions, and 2x2 max pools, of VGG-19's first layers as the OpenPose networks start. */
export function featureStack(net: Net, layers: ReadonlyArray<Layer | 'pool'>, x: string): string {
  let h = x;
  layers.forEach((layer, i) => {
    h = layer === 'pool' ? net.g.op('MaxPool', [h], `/pool${i}`, { kernel_shape: [2, 2], strides: [2, 2] }) : net.g.op('Relu', [conv2d(net, layer[0], h, layer[1], layer[2])], scopeOf(layer[0]));
  });
  return h;
}

/** Every tensor of body_pose_model.pth and its shape. */
export function openposeTensorShapes(): Map<string, number[]> {
  const stages = Array.from({ length: STAGES }, (_, s) => BRANCHES.flatMap(({ branch, channels }) => stageLayers(s + 1, branch, channels))).flat();
  return layerShapes([...FEATURES, ...stages]);
}

/** A stage's branch: its convolutions, each but the last with a ReLU (stage 6's heatmaps: that one too). */
export function runBranch(net: Net, layers: readonly Layer[], x: string, reluLast: boolean): string {
  let h = x;
  layers.forEach(([name, inC, out], i) => {
    h = conv2d(net, name, h, inC, out);
    if (i < layers.length - 1 || reluLast) h = net.g.op('Relu', [h], scopeOf(name));
  });
  return h;
}

/** image [1, 3, H, W] (BGR / 256 - 0.5) -> pafs [1, 38, H/8, W/8], heatmaps [1, 19, H/8, W/8] (sides floored at each pool). */
export function buildOpenpose(store: TensorStore): GraphBuilder {
  checkStateDict(store, openposeTensorShapes(), "OpenPose's body_pose_model.pth", "lllyasviel/Annotators' body_pose_model.pth");
  const g = new GraphBuilder('openpose', 'float32');
  const net: Net = { g, w: new ComponentWeights('OpenPose body network', store, (name) => ({ key: name })) };
  const features = featureStack(net, FEATURES, g.input('image', ElemType.FLOAT, [1, 3, 'height', 'width']));
  let outputs: string[] = [];
  for (let stage = 1; stage <= STAGES; stage++) {
    const input = stage === 1 ? features : g.op('Concat', [...outputs, features], `/stage${stage}`, { axis: 1 });
    outputs = BRANCHES.map(({ branch, channels }) => runBranch(net, stageLayers(stage, branch, channels), input, stage === STAGES && branch === 'L2'));
  }
  g.output(outputs[0]!, 'pafs', ElemType.FLOAT, [1, 38, 'h8', 'w8']);
  g.output(outputs[1]!, 'heatmaps', ElemType.FLOAT, [1, 19, 'h8', 'w8']);
  return g;
}
