// controlnet_aux 0.0.10's pose map of bodies (open_pose: format_body_result, detect_poses' keypoints divided by the
// picture's width and height, draw_poses with util.draw_bodypose): on a black RGB canvas, per person, each of the
// first 17 limbs whose two ends were found as an ellipse (centre int of the ends' mean, half-axes int(length / 2)
// and 4, angle int of its degrees) filled with 0.6 of its colour, then each found joint as a filled circle of
// radius 4 at int(x / W * W), int(y / H * H) in its colour.

import { ellipse2Poly, fillCircle, fillConvexPoly } from '../cv-draw.js';
import { createRaster, type Raster } from '../raster.js';
import { bodyEstimate, LIMBS, peopleJoints, type BodyEstimate, type BodyInput, type BodyMaps, type BodyPoint } from './openpose-body.js';

const DRAWN_LIMBS = 17;
const STICK_WIDTH = 4;
const JOINT_RADIUS = 4;
const COLORS: ReadonlyArray<readonly [number, number, number]> = [
  [255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0], [0, 255, 0], [0, 255, 85], [0, 255, 170],
  [0, 255, 255], [0, 170, 255], [0, 85, 255], [0, 0, 255], [85, 0, 255], [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85],
];

/** A joint as detect_poses hands it to the drawing: x / width, y / height. */
export interface Keypoint {
  x: number;
  y: number;
}

/**
 * draw_bodypose's limbs and joints of one person on `canvas`, each keypoint's x times `width` and y times `height`
 * (the canvas's size for keypoints divided by it, 1 for keypoints in pixels).
 */
export function drawBodyKeypoints(canvas: Raster, keypoints: ReadonlyArray<Keypoint | undefined>, width: number, height: number): void {
  LIMBS.slice(0, DRAWN_LIMBS).forEach(([a, b], k) => {
    const [p, q] = [keypoints[a - 1], keypoints[b - 1]];
    if (!p || !q) return;
    const [y0, y1] = [p.x * width, q.x * width];
    const [x0, x1] = [p.y * height, q.y * height];
    const length = ((x0 - x1) ** 2 + (y0 - y1) ** 2) ** 0.5;
    const angle = Math.atan2(x0 - x1, y0 - y1) * (180 / Math.PI);
    const polygon = ellipse2Poly({ x: Math.trunc((y0 + y1) / 2), y: Math.trunc((x0 + x1) / 2) }, { width: Math.trunc(length / 2), height: STICK_WIDTH }, Math.trunc(angle), 0, 360, 1);
    fillConvexPoly(canvas, polygon, COLORS[k]!.map((c) => Math.trunc(c * 0.6)));
  });
  keypoints.forEach((p, k) => {
    if (p) fillCircle(canvas, { x: Math.trunc(p.x * width), y: Math.trunc(p.y * height) }, JOINT_RADIUS, COLORS[k]!);
  });
}

/** draw_bodypose of one person's joints in pixels, divided by the canvas' width and height as detect_poses divides them. */
export function drawBodyPose(canvas: Raster, joints: readonly BodyPoint[]): void {
  const { width, height } = canvas;
  drawBodyKeypoints(canvas, joints.map((p) => (p ? { x: p.x / width, y: p.y / height } : undefined)), width, height);
}

export function drawBodyPoses(estimate: BodyEstimate, width: number, height: number): Raster {
  const canvas = createRaster(width, height, 3);
  for (const joints of peopleJoints(estimate)) drawBodyPose(canvas, joints);
  return canvas;
}

/** Body.__call__'s assembly and the drawing: the map of the picture `input` was made from, given the network's outputs. */
export function bodyPoseMap(maps: BodyMaps, input: BodyInput): Raster {
  return drawBodyPoses(bodyEstimate(maps, input), input.width, input.height);
}
