import type * as ort from 'onnxruntime-node';
import { UsageError } from '../errors.js';
import { hedEdges } from '../image/preprocess/hed-edges.js';
import { cvResizeU8 } from '../image/cv-resize-u8.js';
import { lineartAnimeLines, lineartLines } from '../image/preprocess/lineart-lines.js';
import { mlsdLines, type MlsdThresholds } from '../image/preprocess/mlsd-lines.js';
import { pidinetEdges } from '../image/preprocess/pidinet-edges.js';
import { bodyEstimate, bodyInput, type BodyMaps } from '../image/preprocess/openpose-body.js';
import { FACE_INPUT } from '../image/preprocess/openpose-face.js';
import { poseMap, type PoseParts } from '../image/preprocess/openpose-full.js';
import { DETECTOR_COLUMNS, DETECTOR_ROWS, DETECTOR_SIDE, detectorInput, detectPeople } from '../image/preprocess/dwpose-detect.js';
import { drawWholeBodyPoses } from '../image/preprocess/dwpose-draw.js';
import { decodeSimcc, formatPose, KEYPOINTS, openposeOrder, POSE_HEIGHT, POSE_WIDTH, poseInput, SIMCC_X, SIMCC_Y } from '../image/preprocess/dwpose-pose.js';
import { cropTopLeft, pad64, padEdgeTo64 } from '../image/pad-edge.js';
import { processorResolutionSize } from '../image/preprocess/processor-resolution.js';
import type { Raster } from '../image/raster.js';
import { floatTensor, toFloat32 } from '../onnx/dtype.js';
import { inputInfo, openSession, outputInfo, type SessionSettings, type TensorInfo } from '../onnx/session.js';

/**
 * ControlNet pictures made by a preprocessor's network (a graph src/graphs/detector-convert.ts built),
 * as sd-webui-controlnet's hed()/pidinet()/lineart()/openpose()/mlsd() make them at Preprocessor Resolution = the picture's
 * shorter side: the picture edge-padded to multiples of 64 (resize_image_with_pad at scale 1), the
 * network run on it, its output made 8-bit by the annotator's rules, the padding cropped off. The
 * session is opened for the one picture and released.
 */

/**
 * The largest padded picture a detector runs on: 2048x2048, sd-webui-controlnet's largest Preprocessor
 * Resolution squared. HED's and lineart's first layers hold 64 float32 channels at full size (1 GiB
 * here; PiDiNet's 60), so memory grows with the area.
 */
export const DETECTOR_MAX_PIXELS = 2048 * 2048;

/**
 * Refuses, before any weight is read (and before the picture is scaled), a picture whose padded size at the unit's
 * Preprocessor Resolution (`res`; undefined: the picture as it is) the network could not run on in bounded memory.
 */
export function checkDetectorPictureSize(picture: { width: number; height: number }, label: string, type: string, res?: number): void {
  const runs = res === undefined ? picture : processorResolutionSize(picture.width, picture.height, res);
  const width = runs.width + pad64(runs.width);
  const height = runs.height + pad64(runs.height);
  if (width * height > DETECTOR_MAX_PIXELS) {
    const on = res === undefined ? `the picture as it is, and ${picture.width}x${picture.height}` : `the picture scaled to res=${res}, ${runs.width}x${runs.height}`;
    throw new UsageError(`${label}: type=${type} runs its network on ${on} (padded ${width}x${height}) is more than ${DETECTOR_MAX_PIXELS / 2 ** 20} megapixels (2048x2048); ${res === undefined ? 'scale the picture down first' : 'lower res='}`);
  }
}

/** x / 127.5 - 1 in float32 (numpy's and torch's): lineart_anime's and M-LSD's input scale. */
const minusOneToOne = (v: number): number => Math.fround(Math.fround(v / 127.5) - 1);

/** The network's input [1, 3 (+ extra), h, w]: RGB planes of the samples through `scale` (float32 arithmetic), then `extra` planes filled with `fill`. */
function planes(image: Raster, scale: (v: number) => number, extra = 0, fill = 0): ort.Tensor {
  const plane = image.width * image.height;
  const data = new Float32Array((3 + extra) * plane);
  for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) data[c * plane + i] = scale(image.data[i * image.channels + c]!);
  data.fill(fill, 3 * plane);
  return floatTensor('float32', data, [1, 3 + extra, image.height, image.width]);
}

/**
 * The network on the padded picture (first through `resize` when the network needs other sides; made its input by
 * `encode`), its outputs made into a map of the padded size by `finish`, cropped.
 */
async function runPadded(model: string, picture: Raster, settings: SessionSettings, encode: (input: Raster) => ort.Tensor, outputs: readonly string[], finish: (out: ort.Tensor[], width: number, height: number) => Raster, resize?: (padded: Raster) => Raster): Promise<Raster> {
  const padded = padEdgeTo64(picture);
  const input = resize ? resize(padded) : padded;
  const out = await runOnce(model, settings, (session) => session.run({ image: encode(input) }, [...outputs]));
  return cropTopLeft(finish(outputs.map((name) => out[name]!), padded.width, padded.height), picture.width, picture.height);
}

/** softedge: HED on RGB 0..255 (the network subtracts its own `norm`), its five projections mixed as annotator/hed does. */
export function hedControlPicture(model: string, picture: Raster, safe: boolean, settings: SessionSettings): Promise<Raster> {
  const names = [1, 2, 3, 4, 5].map((k) => `projection${k}`);
  return runPadded(model, picture, settings, (input) => planes(input, (v) => v), names, (out, width, height) =>
    hedEdges(out.map((t) => ({ values: toFloat32(t), height: t.dims[2]!, width: t.dims[3]! })), width, height, safe));
}

/** lineart: the network on RGB / 255 (torch's float32 division), its map inverted as sd-webui-controlnet's lineart() does. */
export function lineartControlPicture(model: string, picture: Raster, settings: SessionSettings): Promise<Raster> {
  return runPadded(model, picture, settings, (input) => planes(input, (v) => Math.fround(v / 255)), ['lines'], ([t], width, height) => lineartLines(toFloat32(t!), width, height));
}

/** softedge-pidinet: PiDiNet on RGB / 255 (the graph reads the BGR-trained first layer in RGB order), its edge made 8-bit as apply_pidinet does. */
export function pidinetControlPicture(model: string, picture: Raster, safe: boolean, settings: SessionSettings): Promise<Raster> {
  return runPadded(model, picture, settings, (input) => planes(input, (v) => Math.fround(v / 255)), ['edge'], ([t], width, height) => pidinetEdges(toFloat32(t!), width, height, safe));
}

/**
 * openpose (and its hand and face types): controlnet_aux's body estimation on the edge-padded picture
 * (src/image/preprocess/openpose-body.ts: the picture scaled to 184 rows for the network, its outputs back to the
 * picture's size, peaks, limbs, people), then the hand and face networks on the boxes the people give
 * (openpose-full.ts), drawn as its draw_poses does, the padding cropped off. Each network's session is opened when its
 * turn comes and released after.
 */
export async function openposeControlPicture(model: string, picture: Raster, settings: SessionSettings, parts: PoseParts = { body: true, hands: false, face: false }, graphs: { hand?: string; face?: string } = {}): Promise<Raster> {
  const padded = padEdgeTo64(picture);
  const input = bodyInput(padded);
  const maps = await runOnce(model, settings, async (session) => {
    const image = floatTensor('float32', input.image, [1, 3, input.paddedHeight, input.paddedWidth]);
    const { pafs, heatmaps } = await session.run({ image }, ['pafs', 'heatmaps']);
    return { pafs: toFloat32(pafs!), heatmaps: toFloat32(heatmaps!), width: heatmaps!.dims[3]!, height: heatmaps!.dims[2]! } satisfies BodyMaps;
  });
  const estimate = bodyEstimate(maps, input);
  const opened: Partial<Record<'hand' | 'face', Awaited<ReturnType<typeof openSession>>>> = {};
  const heatmapsOf = async (name: 'hand' | 'face', input: Float32Array, side: number): Promise<Float32Array> => {
    const graph = graphs[name];
    if (!graph) throw new UsageError(`type=openpose with ${name}s needs the ${name} network`);
    opened[name] ??= await openSession(graph, settings);
    const out = await opened[name].session.run({ image: floatTensor('float32', input, [1, 3, side, side]) }, ['heatmaps']);
    return toFloat32(out.heatmaps!);
  };
  try {
    const map = await poseMap(estimate, padded, parts, { hand: (x, side) => heatmapsOf('hand', x, side), face: (x) => heatmapsOf('face', x, FACE_INPUT) });
    return cropTopLeft(map, picture.width, picture.height);
  } finally {
    for (const o of Object.values(opened)) await o.session.release();
  }
}

/** One session of `model` for `use`, released after. */
async function runOnce<T>(model: string, settings: SessionSettings, use: (session: Awaited<ReturnType<typeof openSession>>['session']) => Promise<T>): Promise<T> {
  const opened = await openSession(model, settings);
  try {
    return await use(opened.session);
  } finally {
    await opened.session.release();
  }
}

/**
 * mlsd: M-LSD on the padded picture as pred_lines feeds it (at its own size: RGB and a plane of ones, / 127.5 - 1), its
 * half-size centre and displacement maps decoded and drawn as apply_mlsd does (src/image/preprocess/mlsd-lines.ts).
 */
export function mlsdControlPicture(model: string, picture: Raster, thresholds: MlsdThresholds, settings: SessionSettings): Promise<Raster> {
  return runPadded(model, picture, settings, (input) => planes(input, minusOneToOne, 1, minusOneToOne(1)), ['maps'], ([t], width, height) =>
    mlsdLines({ maps: toFloat32(t!), width: t!.dims[3]!, height: t!.dims[2]! }, width, height, thresholds));
}

/** 256 * ceil(side / 256): the sides annotator/lineart_anime resizes the picture to (its UNet halves them eight times). */
const anime = (side: number): number => 256 * Math.ceil(side / 256);

/**
 * lineart-anime: the padded picture resized by cv2.INTER_CUBIC to multiples of 256, the network on RGB / 127.5 - 1
 * (torch's float32 division and subtraction), its map scaled, resized back and inverted as annotator/lineart_anime and
 * sd-webui-controlnet's lineart_anime() do.
 */
export function lineartAnimeControlPicture(model: string, picture: Raster, settings: SessionSettings): Promise<Raster> {
  return runPadded(
    model,
    picture,
    settings,
    (input) => planes(input, minusOneToOne),
    ['line'],
    ([t], width, height) => lineartAnimeLines(toFloat32(t!), t!.dims[3]!, t!.dims[2]!, width, height),
    (padded) => cvResizeU8(padded, anime(padded.width), anime(padded.height), 'cubic'),
  );
}

/** DWPose's two networks: yzd-v/DWPose's yolox_l.onnx (person boxes) and dw-ll_ucoco_384.onnx (133 keypoints per person). */
export interface DwposeModels {
  detector: string;
  pose: string;
}

/** The tensor's rank is that of `dims` and each fixed dimension is its (-1 in `dims`: any; symbolic ones pass). */
function fits(tensor: TensorInfo | undefined, dims: readonly number[]): boolean {
  return !!tensor && tensor.shape.length === dims.length && tensor.shape.every((d, i) => dims[i] === -1 || typeof d !== 'number' || d === dims[i]);
}

const describe = (tensors: readonly TensorInfo[]): string => tensors.map((t) => `${t.name} [${t.shape.join(', ')}]`).join(', ') || 'nothing';

/** Refuses, before it runs, a graph that is not the expected network: its one input and its outputs by shape. */
function checkGraph(session: ort.InferenceSession, path: string, what: string, input: readonly number[], outputs: ReadonlyArray<readonly number[]>): void {
  const inputs = inputInfo(session);
  const outs = outputInfo(session);
  if (inputs.length !== 1 || !fits(inputs[0], input) || outs.length !== outputs.length || outputs.some((dims, i) => !fits(outs[i], dims))) {
    const want = `one input [${input.join(', ')}] and ${outputs.map((d) => `[${d.join(', ')}]`).join(' and ')} (-1: any)`;
    throw new UsageError(`${path} is not ${what}: it takes ${describe(inputs)} and gives ${describe(outs)}; DWPose's has ${want}`);
  }
}

/** The output's values when its shape is `dims`, else the one-line refusal (a graph whose shapes are symbolic can still lie). */
function outputOf(tensor: ort.Tensor, dims: readonly number[], path: string): Float32Array {
  if (tensor.dims.length !== dims.length || tensor.dims.some((d, i) => d !== dims[i])) throw new UsageError(`${path} gave a [${tensor.dims.join(', ')}] output where DWPose's gives [${dims.join(', ')}]; it is not DWPose's network`);
  return toFloat32(tensor);
}

async function runOne(path: string, settings: SessionSettings, what: string, input: readonly number[], outputs: ReadonlyArray<readonly number[]>, image: Float32Array, dims: readonly number[]): Promise<Float32Array[]> {
  return runOnce(path, settings, async (session) => {
    checkGraph(session, path, what, input, outputs);
    const out = await session.run({ [session.inputNames[0]!]: floatTensor('float32', image, dims) });
    return session.outputNames.map((name, i) => outputOf(out[name]!, outputs[i]!.map((d) => (d === -1 ? dims[0]! : d)), path));
  });
}

/**
 * dw_openpose_full: sd-webui-controlnet's DWPose on the edge-padded picture (RGB as it is): the person detector
 * (src/image/preprocess/dwpose-detect.ts), the pose network on each person's crop (or the whole picture when the
 * detector found something but no person; dwpose-pose.ts), bodies, hands and faces drawn (dwpose-draw.ts), the
 * padding cropped off. Each network's session is opened for its one run and released.
 */
export async function dwposeControlPicture(models: DwposeModels, picture: Raster, settings: SessionSettings): Promise<Raster> {
  const padded = padEdgeTo64(picture);
  const det = detectorInput(padded);
  const side = DETECTOR_SIDE;
  const [rows] = await runOne(models.detector, settings, "DWPose's person detector (yolox_l.onnx)", [1, 3, side, side], [[1, DETECTOR_ROWS, DETECTOR_COLUMNS]], det.image, [1, 3, side, side]);
  const boxes = detectPeople(rows!, det.ratio);
  if (!boxes) return cropTopLeft(drawWholeBodyPoses([], padded.width, padded.height), picture.width, picture.height);
  const input = poseInput(padded, boxes);
  const people = input.crops.length;
  const [simccX, simccY] = await runOne(models.pose, settings, "DWPose's pose network (dw-ll_ucoco_384.onnx)", [-1, 3, POSE_HEIGHT, POSE_WIDTH], [[-1, KEYPOINTS, SIMCC_X], [-1, KEYPOINTS, SIMCC_Y]], input.image, [people, 3, POSE_HEIGHT, POSE_WIDTH]);
  const poses = decodeSimcc(simccX!, simccY!, input.crops).map((keypoints) => formatPose(openposeOrder(keypoints)));
  return cropTopLeft(drawWholeBodyPoses(poses, padded.width, padded.height), picture.width, picture.height);
}
