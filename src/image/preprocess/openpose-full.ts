// controlnet_aux 0.0.10's OpenposeDetector.detect_poses with include_hand / include_face and draw_poses: per person
// found by the body (in its order), the hands' boxes run through the hand network (left, then right) and the face's box
// through the face network; their peaks as float32 fractions of the picture (a peak on the box's first row or column,
// or none, becomes -1 / side, as np.where(p < 1e-6, -1, p + corner) / side makes it); then on one black canvas, person
// by person, the body (unless face-only), the left hand, the right hand, the face.
// Each hand costs four network runs of up to 736x736 and a face one of 384x384: MAX_POSE_BOXES bounds them.

import { PoseBoxesError } from '../errors.js';
import { createRaster, type Raster } from '../raster.js';
import { peopleJoints, type BodyEstimate } from './openpose-body.js';
import { drawBodyPose } from './openpose-draw.js';
import { faceBox, faceInput, facePeaks, FACE_INPUT } from './openpose-face.js';
import { handBoxes, handInputs, handPeaks, HAND_SIDES } from './openpose-hand.js';
import { drawFacePose, drawHandPose, type PoseKeypoint } from './openpose-hand-face-draw.js';

/** More hands and faces than this in one picture is refused: each hand is four network runs of up to 736x736. */
export const MAX_POSE_BOXES = 32;

/** What the map shows (openpose_hand: body and hands; openpose_face: body and face; _faceonly: face; _full: all). */
export interface PoseParts {
  body: boolean;
  hands: boolean;
  face: boolean;
}

/** The hand and face networks: BGR / 256 - 0.5 planes in, maps out. */
export interface PoseNetworks {
  /** [3, side, side] -> [22, side / 8, side / 8]. */
  hand: (input: Float32Array, side: number) => Promise<Float32Array>;
  /** [3, 384, 384] -> the last stage's [71, 48, 48]. */
  face: (input: Float32Array) => Promise<Float32Array>;
}

/** detect_hands / detect_face: a peak in the box's pixels as a float32 fraction of the picture. */
function fractions(peaks: ReadonlyArray<[number, number]>, corner: { x: number; y: number }, width: number, height: number): PoseKeypoint[] {
  const place = (v: number, at: number, side: number) => Math.fround((v < 1e-6 ? -1 : v + at) / side);
  return peaks.map(([x, y]) => ({ x: place(x, corner.x, width), y: place(y, corner.y, height) }));
}

function bgrOf(picture: Raster): Raster {
  const data = new Uint8Array(picture.width * picture.height * 3);
  for (let i = 0; i < picture.width * picture.height; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = picture.data[i * picture.channels + 2 - c]!;
  return { width: picture.width, height: picture.height, channels: 3, data };
}

/** The pose map of `picture` (RGB) from the body's estimate, running the hand and face networks the parts ask for. */
export async function poseMap(estimate: BodyEstimate, picture: Raster, parts: PoseParts, networks: PoseNetworks): Promise<Raster> {
  const { width, height } = picture;
  const people = peopleJoints(estimate).map((joints) => ({
    joints,
    hands: parts.hands ? handBoxes(joints, width, height) : [],
    face: parts.face ? faceBox(joints, width, height) : undefined,
  }));
  const boxes = people.reduce((n, p) => n + p.hands.length + (p.face ? 1 : 0), 0);
  if (boxes > MAX_POSE_BOXES) throw new PoseBoxesError(boxes, MAX_POSE_BOXES);
  const bgr = bgrOf(picture);
  const canvas = createRaster(width, height, 3);
  for (const person of people) {
    const hands: Record<'left' | 'right', PoseKeypoint[] | undefined> = { left: undefined, right: undefined };
    for (const box of person.hands) {
      const inputs = handInputs(bgr, box);
      const outputs: Float32Array[] = [];
      for (const [s, input] of inputs.entries()) outputs.push(await networks.hand(input, HAND_SIDES[s]!));
      hands[box.isLeft ? 'left' : 'right'] = fractions(handPeaks(outputs, box.side), box, width, height);
    }
    let face: PoseKeypoint[] | undefined;
    if (person.face) {
      const { input, width: w, height: h } = faceInput(bgr, person.face);
      face = fractions(facePeaks(await networks.face(input), FACE_INPUT / 8, w, h), person.face, width, height);
    }
    if (parts.body) drawBodyPose(canvas, person.joints);
    if (parts.hands) {
      drawHandPose(canvas, hands.left);
      drawHandPose(canvas, hands.right);
    }
    if (parts.face) drawFacePose(canvas, face);
  }
  return canvas;
}
