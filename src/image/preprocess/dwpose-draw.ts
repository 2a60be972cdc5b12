// sd-webui-controlnet's draw_poses for dw_openpose_full (annotator/openpose/__init__.py and util.py): on a black RGB
// canvas, per person, the body (draw_bodypose), the left and right hands (draw_handpose) and the face
// (draw_facepose), the ports of openpose-draw.ts and openpose-hand-face-draw.ts. The extension's versions scale each
// part's keypoints by the canvas's size only when every one of them lies within [-1, 1] (is_normalized); DWPose's
// are in pixels, so they are drawn as they are (scale 1).

import { createRaster, type Raster } from '../raster.js';
import { drawBodyKeypoints } from './openpose-draw.js';
import { drawFacePose, drawHandPose, type KeypointScale } from './openpose-hand-face-draw.js';
import type { PoseResult, Shown } from './dwpose-pose.js';

/** util.is_normalized: some keypoint shown, and every shown one within [-1, 1] on both axes. */
function isNormalized(keypoints: readonly Shown[]): boolean {
  const shown = keypoints.filter((k): k is NonNullable<Shown> => k !== undefined);
  return shown.length > 0 && shown.every((k) => Math.abs(k.x) <= 1 && Math.abs(k.y) <= 1);
}

function scaleOf(canvas: Raster, keypoints: readonly Shown[] | undefined): KeypointScale {
  return keypoints && isNormalized(keypoints) ? canvas : { width: 1, height: 1 };
}

/** draw_poses(poses, height, width) with body, hands and face. */
export function drawWholeBodyPoses(poses: readonly PoseResult[], width: number, height: number): Raster {
  const canvas = createRaster(width, height, 3);
  for (const pose of poses) {
    const body = scaleOf(canvas, pose.body);
    drawBodyKeypoints(canvas, pose.body, body.width, body.height);
    drawHandPose(canvas, pose.leftHand, scaleOf(canvas, pose.leftHand));
    drawHandPose(canvas, pose.rightHand, scaleOf(canvas, pose.rightHand));
    drawFacePose(canvas, pose.face, scaleOf(canvas, pose.face));
  }
  return canvas;
}
