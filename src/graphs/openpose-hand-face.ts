import { ElemType } from '../onnx/proto.js';
import { type Net } from './layers.js';
import { GraphBuilder } from './onnx-builder.js';
import { featureStack, layerShapes, runBranch, type Layer } from './openpose.js';
import { checkStateDict } from './state-dict-check.js';
import { ComponentWeights, type TensorStore } from './weights.js';

/**
 * CMU's OpenPose hand and face networks, one shape with two widths: handpose_model (controlnet_aux.open_pose.model;
 * hand_pose_model.pth, 22 maps: 21 joints and the background) and FaceNet (controlnet_aux.open_pose.face; facenet.pth,
 * 71 maps: 70 landmarks and the background). VGG-19's first twelve 3x3 convolutions with three 2x2 max pools, two more
 * to 512 and one to 128 channels (the features, at 1/8 of the picture), then six stages of one branch, each after the
 * first reading the one before beside the features. Every convolution has a ReLU but each stage's last. The files'
 * keys are the layer names (the hand's without its Sequential's prefix, as util.transfer reads them; the face's as
 * FaceNet names them), the same names in both: only the widths tell the two apart.
 */

export type HandFaceKind = 'openpose-hand' | 'openpose-face';

/** Each network's maps, name, file and the --control field that takes it (for a refusal's advice). */
const NETWORKS: Readonly<Record<HandFaceKind, { maps: number; label: string; file: string; field: string }>> = {
  'openpose-hand': { maps: 22, label: "OpenPose's hand_pose_model.pth", file: "lllyasviel/Annotators' hand_pose_model.pth", field: 'hand-detector' },
  'openpose-face': { maps: 71, label: "OpenPose's facenet.pth", file: "lllyasviel/Annotators' facenet.pth", field: 'face-detector' },
};

const FEATURES: ReadonlyArray<Layer | 'pool'> = [
  ['conv1_1', 3, 64, 3], ['conv1_2', 64, 64, 3], 'pool',
  ['conv2_1', 64, 128, 3], ['conv2_2', 128, 128, 3], 'pool',
  ['conv3_1', 128, 256, 3], ['conv3_2', 256, 256, 3], ['conv3_3', 256, 256, 3], ['conv3_4', 256, 256, 3], 'pool',
  ['conv4_1', 256, 512, 3], ['conv4_2', 512, 512, 3], ['conv4_3', 512, 512, 3], ['conv4_4', 512, 512, 3],
  ['conv5_1', 512, 512, 3], ['conv5_2', 512, 512, 3], ['conv5_3_CPM', 512, 128, 3],
];
const FEATURE_CHANNELS = 128;
const STAGES = 6;

function stageLayers(stage: number, maps: number): Layer[] {
  if (stage === 1) return [['conv6_1_CPM', FEATURE_CHANNELS, 512, 1], ['conv6_2_CPM', 512, maps, 1]];
  const name = (k: number) => `Mconv${k}_stage${stage}`;
  const input = maps + FEATURE_CHANNELS;
  return [[name(1), input, 128, 7], [name(2), 128, 128, 7], [name(3), 128, 128, 7], [name(4), 128, 128, 7], [name(5), 128, 128, 7], [name(6), 128, 128, 1], [name(7), 128, maps, 1]];
}

const stagesOf = (maps: number): Layer[][] => Array.from({ length: STAGES }, (_, s) => stageLayers(s + 1, maps));

/** Every tensor of the network's file and its shape. */
export function handFaceTensorShapes(kind: HandFaceKind): Map<string, number[]> {
  return layerShapes([...FEATURES, ...stagesOf(NETWORKS[kind].maps).flat()]);
}

/** image [1, 3, H, W] (BGR / 256 - 0.5) -> heatmaps [1, maps, H/8, W/8] of the last stage (sides floored at each pool). */
export function buildHandFace(kind: HandFaceKind, store: TensorStore): GraphBuilder {
  const { maps, label, file, field } = NETWORKS[kind];
  checkStateDict(store, handFaceTensorShapes(kind), label, file, field);
  const g = new GraphBuilder(kind, 'float32');
  const net: Net = { g, w: new ComponentWeights(`${label} network`, store, (name) => ({ key: name })) };
  const features = featureStack(net, FEATURES, g.input('image', ElemType.FLOAT, [1, 3, 'height', 'width']));
  let h = '';
  for (const layers of stagesOf(maps)) h = runBranch(net, layers, h === '' ? features : g.op('Concat', [h, features], `/${layers[0]![0]}`, { axis: 1 }), false);
  g.output(h, 'heatmaps', ElemType.FLOAT, [1, maps, 'h8', 'w8']);
  return g;
}
