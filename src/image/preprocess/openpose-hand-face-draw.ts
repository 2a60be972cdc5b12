// controlnet_aux 0.0.10's util.draw_handpose and util.draw_facepose, on a canvas the body may already be drawn on:
//   hands: each of the 20 edges (wrist to each finger's four joints) whose two ends are both found and at pixel
//     int(x * W), int(y * H) > 0.01 on both axes, as cv2.line of thickness 2 in matplotlib's hsv_to_rgb(edge / 20,
//     1, 1) * 255 (cv2 rounds each channel half to even); then each keypoint past 0.01 on both axes as a filled circle
//     of radius 4 in blue;
//   face: each keypoint past 0.01 on both axes as a filled circle of radius 3 in white.
// A keypoint is a fraction of the canvas' width and height, multiplied back in float64 (controlnet_aux's OpenPose hands
// and faces hold np.float32 fractions, whose product with the int side numpy takes in float64); `scale` replaces the
// canvas's sides for keypoints in other units (sd-webui-controlnet's DWPose keypoints are pixels: scale 1).

import { fillCircle, thickLine } from '../cv-draw.js';
import { roundHalfEven } from '../../round-half-even.js';
import type { Raster } from '../raster.js';

/** A keypoint as the drawing takes it: x / width, y / height. */
export interface PoseKeypoint {
  x: number;
  y: number;
}

const EPS = 0.01;
const HAND_EDGES: ReadonlyArray<readonly [number, number]> = [
  [0, 1], [1, 2], [2, 3], [3, 4], [0, 5], [5, 6], [6, 7], [7, 8], [0, 9], [9, 10],
  [10, 11], [11, 12], [0, 13], [13, 14], [14, 15], [15, 16], [0, 17], [17, 18], [18, 19], [19, 20],
];
const HAND_JOINT_COLOR = [0, 0, 255] as const;
const FACE_COLOR = [255, 255, 255] as const;

/** matplotlib.colors.hsv_to_rgb([h, 1, 1]) * 255, each channel rounded as cv2 turns a Scalar into 8-bit samples. */
function hueColor(h: number): number[] {
  const i = Math.trunc(h * 6);
  const f = h * 6 - i;
  const [v, p, q, t] = [1, 0, 1 - f, 1 - (1 - f)];
  const rgb = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i % 6]!;
  return rgb.map((c) => roundHalfEven(c * 255));
}
const HAND_EDGE_COLORS = HAND_EDGES.map((_, k) => hueColor(k / HAND_EDGES.length));

const pixel = (k: PoseKeypoint, width: number, height: number) => ({ x: Math.trunc(k.x * width), y: Math.trunc(k.y * height) });

/** What a keypoint's x and y are multiplied by. */
export interface KeypointScale {
  width: number;
  height: number;
}

/** draw_handpose: nothing for no keypoints (undefined or empty). */
export function drawHandPose(canvas: Raster, keypoints: ReadonlyArray<PoseKeypoint | undefined> | undefined, scale: KeypointScale = canvas): void {
  if (!keypoints || keypoints.length === 0) return;
  const { width, height } = scale;
  HAND_EDGES.forEach(([a, b], k) => {
    const [ka, kb] = [keypoints[a], keypoints[b]];
    if (!ka || !kb) return;
    const [p, q] = [pixel(ka, width, height), pixel(kb, width, height)];
    if (p.x > EPS && p.y > EPS && q.x > EPS && q.y > EPS) thickLine(canvas, p, q, HAND_EDGE_COLORS[k]!, 2);
  });
  for (const k of keypoints) {
    if (!k) continue;
    const p = pixel(k, width, height);
    if (p.x > EPS && p.y > EPS) fillCircle(canvas, p, 4, HAND_JOINT_COLOR);
  }
}

/** draw_facepose: nothing for no keypoints (undefined or empty); keypoints not found (undefined) are skipped. */
export function drawFacePose(canvas: Raster, keypoints: ReadonlyArray<PoseKeypoint | undefined> | undefined, scale: KeypointScale = canvas): void {
  if (!keypoints) return;
  for (const k of keypoints) {
    if (!k) continue;
    const p = pixel(k, scale.width, scale.height);
    if (p.x > EPS && p.y > EPS) fillCircle(canvas, p, 3, FACE_COLOR);
  }
}
