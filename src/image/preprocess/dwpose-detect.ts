// DWPose's person detector around its network (YOLOX-L, yzd-v/DWPose's yolox_l.onnx), as sd-webui-controlnet's
// annotator/openpose/cv_ox_det.py runs it, in float32 where numpy computes in it:
//   input: the picture as given (RGB: the extension does not swap it) scaled by r = min(640 / height, 640 / width)
//     to int(width r) x int(height r) with cv2.INTER_LINEAR, top-left on a 640x640 canvas of 114, as float32 planes;
//   decoding: the 8400 rows are the cells of the 80x80, 40x40 and 20x20 grids (strides 8, 16, 32) in raster order:
//     centre (cell + output) x stride, size exp(output) x stride (numpy's float32 exp: numpy-exp-f32.ts), corners centre -/+ size / 2, all divided by r
//     (as float32); each class's score objectness x class probability;
//   NMS (multiclass_nms, class-aware, over the scores > 0.1): best first, a box dropped when its overlap with a kept
//     one ((w + 1)(h + 1) areas, as the numpy code counts pixels) is above 0.45; only the person class is kept, and
//     of it the boxes whose score is above 0.3.
// The extension's three outcomes are kept apart: no score of any class above 0.1 (no person: an empty map), person
// boxes, or scores above 0.1 none of which is a person above 0.3 (the pose model then runs on the whole picture).

import { cvResizeLinearU8 } from '../cv-resize-linear-u8.js';
import { DwposeOutputError } from '../errors.js';
import { numpyExpF32 } from '../numpy-exp-f32.js';
import type { Raster } from '../raster.js';

const f = Math.fround;
export const DETECTOR_SIDE = 640;
const STRIDES = [8, 16, 32] as const;
export const DETECTOR_ROWS = STRIDES.reduce((n, s) => n + (DETECTOR_SIDE / s) ** 2, 0);
export const DETECTOR_COLUMNS = 85;
const CLASSES = DETECTOR_COLUMNS - 5;
const PAD_VALUE = 114;
const SCORE_THRESHOLD = f(0.1);
const NMS_THRESHOLD = f(0.45);
const PERSON_THRESHOLD = 0.3;
/** More people than this is not a picture DWPose is run on: each costs a 384x288 crop through the pose network. */
export const MAX_PEOPLE = 100;
/** Box corners beyond this many pixels are no detector's output on a picture of at most 2048x2048. */
const MAX_COORDINATE = 2 ** 20;

export interface DetectorInput {
  /** [3, 640, 640] float32 planes in the picture's channel order. */
  image: Float32Array;
  /** r: the picture's scale into the 640x640 canvas. */
  ratio: number;
}

export function detectorInput(picture: Raster): DetectorInput {
  const { width, height } = picture;
  const ratio = Math.min(DETECTOR_SIDE / height, DETECTOR_SIDE / width);
  const resized = cvResizeLinearU8(picture, Math.trunc(width * ratio), Math.trunc(height * ratio));
  const plane = DETECTOR_SIDE * DETECTOR_SIDE;
  const image = new Float32Array(3 * plane).fill(PAD_VALUE);
  for (let y = 0; y < resized.height; y++) {
    for (let x = 0; x < resized.width; x++) {
      for (let c = 0; c < 3; c++) image[c * plane + y * DETECTOR_SIDE + x] = resized.data[(y * resized.width + x) * resized.channels + c]!;
    }
  }
  return { image, ratio };
}

/** A box's corners (float32 values) in the picture's pixels. */
export type Box = [x0: number, y0: number, x1: number, y1: number];

/** What the detector found: undefined when no class scored above 0.1, else the person boxes (maybe none), best first. */
export type Detection = Box[] | undefined;

/** cv_ox_det.nms over one class's candidates: the kept indices, best first. */
function nms(boxes: Box[], scores: number[]): number[] {
  const areas = boxes.map(([x0, y0, x1, y1]) => f(f(f(x1 - x0) + 1) * f(f(y1 - y0) + 1)));
  // argsort()[::-1]: best first; equal scores later index first, as a stable sort reversed gives them.
  let order = scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || b - a);
  const keep: number[] = [];
  while (order.length > 0) {
    const i = order[0]!;
    keep.push(i);
    const [ax0, ay0, ax1, ay1] = boxes[i]!;
    order = order.slice(1).filter((j) => {
      const [bx0, by0, bx1, by1] = boxes[j]!;
      const w = Math.max(0, f(f(Math.min(ax1, bx1) - Math.max(ax0, bx0)) + 1));
      const h = Math.max(0, f(f(Math.min(ay1, by1) - Math.max(ay0, by0)) + 1));
      const inter = f(w * h);
      return f(inter / f(f(areas[i]! + areas[j]!) - inter)) <= NMS_THRESHOLD;
    });
  }
  return keep;
}

/** The network's [8400, 85] rows decoded into person boxes (demo_postprocess, multiclass_nms and the last filter). */
export function detectPeople(rows: Float32Array, ratio: number): Detection {
  if (rows.length !== DETECTOR_ROWS * DETECTOR_COLUMNS) throw new RangeError(`detectPeople: ${rows.length} values, not ${DETECTOR_ROWS} x ${DETECTOR_COLUMNS}`);
  const r = f(ratio);
  const boxes: Box[] = [];
  const personScores: number[] = [];
  let anyClass = false;
  let row = 0;
  for (const stride of STRIDES) {
    const side = DETECTOR_SIDE / stride;
    for (let gy = 0; gy < side; gy++) {
      for (let gx = 0; gx < side; gx++, row++) {
        const o = row * DETECTOR_COLUMNS;
        const objectness = rows[o + 4]!;
        for (let k = 1; k < CLASSES && !anyClass; k++) anyClass = f(objectness * rows[o + 5 + k]!) > SCORE_THRESHOLD;
        const person = f(objectness * rows[o + 5]!);
        if (!(person > SCORE_THRESHOLD)) continue;
        anyClass = true;
        const cx = f((rows[o]! + gx) * stride);
        const cy = f((rows[o + 1]! + gy) * stride);
        const w = f(numpyExpF32(rows[o + 2]!) * stride);
        const h = f(numpyExpF32(rows[o + 3]!) * stride);
        boxes.push([f(f(cx - w / 2) / r), f(f(cy - h / 2) / r), f(f(cx + w / 2) / r), f(f(cy + h / 2) / r)]);
        personScores.push(person);
      }
    }
  }
  if (!anyClass) return undefined;
  const people = nms(boxes, personScores).filter((i) => personScores[i]! > PERSON_THRESHOLD).map((i) => boxes[i]!);
  if (people.length > MAX_PEOPLE) throw new DwposeOutputError(`the person detector found ${people.length} people, more than ${MAX_PEOPLE}; the detector is not DWPose's YOLOX, or the picture holds more people than it handles`);
  for (const box of people) {
    if (!box.every((v) => Math.abs(v) <= MAX_COORDINATE)) throw new DwposeOutputError(`the person detector gave a box (${box.join(', ')}) far outside the picture; the detector is not DWPose's YOLOX`);
  }
  return people;
}
