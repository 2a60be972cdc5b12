// DWPose's whole-body keypoints around its pose network (RTMPose with SimCC heads, yzd-v/DWPose's
// dw-ll_ucoco_384.onnx), as sd-webui-controlnet's annotator/openpose/cv_ox_pose.py and wholebody.py compute them, in
// float64 where numpy computes in it:
//   crops: each person box (or, when the detector kept none, the whole picture) as centre and size x 1.25, widened
//     or heightened to 288:384, the three float32 points (centre, centre - half the width upwards, the third at a
//     right angle) mapped to the 288x384 crop's by cv2.getAffineTransform, the picture warped by cv2.warpAffine
//     (INTER_LINEAR, border 0), (v - mean) / std per channel with ImageNet's RGB mean and std, as float32 planes;
//   SimCC: per keypoint the first maximum of its 576 x and 768 y bins at half a pixel each, its score the smaller
//     of the two maxima (a score <= 0 puts the bins at -1), mapped back: bin / 2 / (288, 384) x size + centre -
//     size / 2;
//   people: 133 keypoints (COCO-WholeBody: 17 body, 6 feet, 68 face, 2 x 21 hands), the neck inserted at 17 (the
//     shoulders' mean, score 1 when both score above 0.3, else 0), the body moved to OpenPose's order; a keypoint
//     is shown when its score is 0.3 or more: body 0-17, face 24-91 plus the eyes (14, 15), hands 92-112 and
//     113-133.

import { getAffineTransform, warpAffineLinear, type Point2 } from '../cv-warp-affine.js';
import { DwposeOutputError } from '../errors.js';
import type { Raster } from '../raster.js';
import type { Box } from './dwpose-detect.js';

const f = Math.fround;
export const POSE_WIDTH = 288;
export const POSE_HEIGHT = 384;
export const KEYPOINTS = 133;
export const SIMCC_X = POSE_WIDTH * 2;
export const SIMCC_Y = POSE_HEIGHT * 2;
const PADDING = 1.25;
const MEAN = [123.675, 116.28, 103.53];
const STD = [58.395, 57.12, 57.375];
const SHOWN = 0.3;

/** A crop's centre and size in the picture, as the keypoints go back through them. */
interface Crop {
  center: [number, number];
  scale: [number, number];
}

export interface PoseInput {
  /** [people, 3, 384, 288] float32. */
  image: Float32Array;
  crops: Crop[];
}

/** cv_ox_pose.preprocess: the crops of the boxes (none: the whole picture). */
export function poseInput(picture: Raster, boxes: readonly Box[]): PoseInput {
  const regions: Box[] = boxes.length > 0 ? [...boxes] : [[0, 0, picture.width, picture.height]];
  const plane = POSE_WIDTH * POSE_HEIGHT;
  const image = new Float32Array(regions.length * 3 * plane);
  const crops = regions.map(([x0, y0, x1, y1], n): Crop => {
    const center: [number, number] = [(x0 + x1) * 0.5, (y0 + y1) * 0.5];
    const [w, h] = [(x1 - x0) * PADDING, (y1 - y0) * PADDING];
    const aspect = POSE_WIDTH / POSE_HEIGHT;
    const scale: [number, number] = w > h * aspect ? [w, w / aspect] : [h * aspect, h];
    const src0 = { x: f(center[0]), y: f(center[1]) };
    const src1 = { x: f(center[0] + 0), y: f(center[1] + scale[0] * -0.5) };
    const src: Point2[] = [src0, src1, thirdPoint(src0, src1)];
    const dst: Point2[] = [{ x: 144, y: 192 }, { x: 144, y: 48 }, { x: 0, y: 48 }];
    const matrix = getAffineTransform(src, dst);
    if (!matrix) throw new DwposeOutputError(`a person box of ${x1 - x0}x${y1 - y0} pixels is too small to crop for the pose network`);
    const crop = warpAffineLinear(picture, matrix, POSE_WIDTH, POSE_HEIGHT);
    const base = n * 3 * plane;
    for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) image[base + c * plane + i] = (crop.data[i * crop.channels + c]! - MEAN[c]!) / STD[c]!;
    return { center, scale };
  });
  return { image, crops };
}

/** _get_3rd_point in float32: b plus a - b turned a quarter anticlockwise. */
function thirdPoint(a: Point2, b: Point2): Point2 {
  const d = { x: f(a.x - b.x), y: f(a.y - b.y) };
  return { x: f(b.x - d.y), y: f(b.y + d.x) };
}

/** One keypoint: position in the picture's pixels and score (float32). */
export interface Keypoint {
  x: number;
  y: number;
  score: number;
}

/** Index of the first maximum of values[from, from + length) and that maximum. */
function argmax(values: Float32Array, from: number, length: number): [number, number] {
  let best = 0;
  let max = values[from]!;
  for (let i = 1; i < length; i++) {
    const v = values[from + i]!;
    if (v > max || (Number.isNaN(v) && !Number.isNaN(max))) [best, max] = [i, v];
  }
  return [best, max];
}

/** get_simcc_maximum, decode and postprocess: each person's 133 keypoints in the picture's pixels. */
export function decodeSimcc(simccX: Float32Array, simccY: Float32Array, crops: readonly Crop[]): Keypoint[][] {
  return crops.map(({ center, scale }, n) =>
    Array.from({ length: KEYPOINTS }, (_, k) => {
      let [bx, mx] = argmax(simccX, (n * KEYPOINTS + k) * SIMCC_X, SIMCC_X);
      let [by, my] = argmax(simccY, (n * KEYPOINTS + k) * SIMCC_Y, SIMCC_Y);
      const score = mx > my ? my : mx;
      if (score <= 0) [bx, by] = [-1, -1];
      return { x: ((bx / 2) / POSE_WIDTH) * scale[0] + center[0] - scale[0] / 2, y: ((by / 2) / POSE_HEIGHT) * scale[1] + center[1] - scale[1] / 2, score };
    }),
  );
}

/** Wholebody.__call__'s last steps: the neck inserted at 17, mmpose's body order moved to OpenPose's (134 keypoints). */
export function openposeOrder(keypoints: readonly Keypoint[]): Keypoint[] {
  const [l, r] = [keypoints[5]!, keypoints[6]!];
  const neck = { x: (l.x + r.x) / 2, y: (l.y + r.y) / 2, score: l.score > SHOWN && r.score > SHOWN ? 1 : 0 };
  const all = [...keypoints.slice(0, 17), neck, ...keypoints.slice(17)];
  const moved = [...all];
  const MMPOSE = [17, 6, 8, 10, 7, 9, 12, 14, 16, 13, 15, 2, 1, 4, 3];
  const OPENPOSE = [1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17];
  OPENPOSE.forEach((to, i) => (moved[to] = all[MMPOSE[i]!]!));
  return moved;
}

/** A shown keypoint's position (None in the extension: undefined). */
export type Shown = { x: number; y: number } | undefined;

/** Wholebody.format_result's person: the parts drawn, a part with no keypoint shown absent (the body then all undefined). */
export interface PoseResult {
  body: Shown[];
  leftHand?: Shown[];
  rightHand?: Shown[];
  face?: Shown[];
}

function part(keypoints: readonly Keypoint[]): Shown[] | undefined {
  const shown = keypoints.map((k) => (k.score >= SHOWN ? { x: k.x, y: k.y } : undefined));
  return shown.some((k) => k) ? shown : undefined;
}

export function formatPose(keypoints: readonly Keypoint[]): PoseResult {
  const body = part(keypoints.slice(0, 18)) ?? new Array<Shown>(18).fill(undefined);
  const face = part(keypoints.slice(24, 92));
  return {
    body,
    leftHand: part(keypoints.slice(92, 113)),
    rightHand: part(keypoints.slice(113, 134)),
    // OpenPose's face has 70 points, DWPose's 68: the eyes come from the body.
    face: face && [...face, body[14], body[15]],
  };
}
