// controlnet_aux 0.0.10's hands around the network (open_pose/util.handDetect, open_pose/hand.Hand.__call__):
//   boxes: per person, the left then the right hand whose shoulder, elbow and wrist were all found: centred 0.33 of the
//     forearm past the wrist, a square of 1.5 x max(forearm, 0.9 x upper arm) clipped to the picture (its corner first
//     moved inside, then its side shortened to fit both ways), kept when 20 pixels or more, corner and side truncated;
//   inputs: the box's BGR crop blurred (cv2.GaussianBlur, sigma 0.8), then at each of four sides, 184, 368, 552 and 736
//     (0.5 to 2 x 368), resized as util.smart_resize does (INTER_AREA shrinking, INTER_LANCZOS4 otherwise), as
//     float32 / 256 - 0.5 (the sides are multiples of 8: padRightDownCorner adds nothing);
//   maps: the network's 22 maps at each side enlarged 8x (Lanczos), brought to 128x128 (area), and averaged as numpy
//     does (float32 / 4 added into float64, scale by scale);
//   peaks: per joint (the first 21 maps) the map smoothed (scipy gaussian_filter, sigma 3); none above 0.05: (0, 0);
//     else, of the 8-connected regions above 0.05 (skimage's label, numbered in raster order), the one whose unsmoothed
//     values sum highest (numpy's pairwise sum), its unsmoothed maximum (the first of the first row holding it, as
//     util.npmax finds it), scaled to the box's side: int(row * side / 128), int(column * side / 128).

import { gaussianBlurU8 } from '../cv-gaussian-u8.js';
import { cvResizeAreaFloat } from '../cv-resize-area.js';
import { cvResizeLanczos4 } from '../cv-resize-lanczos.js';
import { cvResizeU8 } from '../cv-resize-u8.js';
import type { Raster } from '../raster.js';
import { gaussianFilter } from '../scipy-gaussian.js';
import { numpySum } from '../../numpy-sum.js';
import type { BodyPoint } from './openpose-body.js';

/** A hand's square in the picture: corner, side, which hand. */
export interface HandBox {
  x: number;
  y: number;
  side: number;
  isLeft: boolean;
}

const RATIO_WRIST_ELBOW = 0.33;
const MIN_BOX = 20;
export const HAND_SIDES = [184, 368, 552, 736] as const;
const STRIDE = 8;
const MAP_SIDE = 128;
const JOINTS = 21;
export const HAND_MAPS = 22;
const THRESHOLD = 0.05;

/** util.handDetect on one person's 18 body joints (OpenPose order) in a `width` x `height` picture. */
export function handBoxes(joints: readonly BodyPoint[], width: number, height: number): HandBox[] {
  const arms: Array<[BodyPoint, BodyPoint, BodyPoint, boolean]> = [
    [joints[5], joints[6], joints[7], true],
    [joints[2], joints[3], joints[4], false],
  ];
  const boxes: HandBox[] = [];
  for (const [shoulder, elbow, wrist, isLeft] of arms) {
    if (!shoulder || !elbow || !wrist) continue;
    let x = wrist.x + RATIO_WRIST_ELBOW * (wrist.x - elbow.x);
    let y = wrist.y + RATIO_WRIST_ELBOW * (wrist.y - elbow.y);
    const forearm = Math.sqrt((wrist.x - elbow.x) * (wrist.x - elbow.x) + (wrist.y - elbow.y) * (wrist.y - elbow.y));
    const upperArm = Math.sqrt((elbow.x - shoulder.x) * (elbow.x - shoulder.x) + (elbow.y - shoulder.y) * (elbow.y - shoulder.y));
    let side = 1.5 * Math.max(forearm, 0.9 * upperArm);
    x -= side / 2;
    y -= side / 2;
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    const across = x + side > width ? width - x : side;
    const down = y + side > height ? height - y : side;
    side = Math.min(across, down);
    if (side >= MIN_BOX) boxes.push({ x: Math.trunc(x), y: Math.trunc(y), side: Math.trunc(side), isLeft });
  }
  return boxes;
}

/** The numpy slice picture[y:y+h, x:x+w] (clipped to the picture, as numpy clips). */
export function crop(picture: Raster, x: number, y: number, w: number, h: number): Raster {
  const width = Math.max(0, Math.min(picture.width, x + w) - x);
  const height = Math.max(0, Math.min(picture.height, y + h) - y);
  const cn = picture.channels;
  const data = new Uint8Array(width * height * cn);
  for (let r = 0; r < height; r++) data.set(picture.data.subarray(((y + r) * picture.width + x) * cn, ((y + r) * picture.width + x + width) * cn), r * width * cn);
  return { width, height, channels: cn, data };
}

/** util.smart_resize of an 8-bit picture: INTER_AREA when the sides' sum shrinks, INTER_LANCZOS4 otherwise. */
export function smartResizeU8(picture: Raster, width: number, height: number): Raster {
  return (width + height) / (picture.width + picture.height) < 1 ? cvResizeU8(picture, width, height, 'area') : (cvResizeLanczos4(picture, width, height) as Raster);
}

/** Planes [3, h, w] of a BGR picture as float32 / 256 - 0.5. */
export function networkPlanes(bgr: Raster): Float32Array {
  const plane = bgr.width * bgr.height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) out[c * plane + i] = bgr.data[i * bgr.channels + c]! / 256 - 0.5;
  return out;
}

/** The network's four inputs for the hand in `box` of the BGR picture: [3, side, side] each, HAND_SIDES' order. */
export function handInputs(bgr: Raster, box: HandBox): Float32Array[] {
  const blurred = gaussianBlurU8(crop(bgr, box.x, box.y, box.side, box.side), 0.8);
  return HAND_SIDES.map((side) => networkPlanes(smartResizeU8(blurred, side, side)));
}

/** One output's 22 maps [22, side/8, side/8] at 128x128, added / 4 into `sum` (float64, [22, 128, 128]). */
function addScale(sum: Float64Array, maps: Float32Array, side: number, scales: number): void {
  const small = side / STRIDE;
  const plane = small * small;
  for (let k = 0; k < HAND_MAPS; k++) {
    const big = cvResizeLanczos4({ data: maps.subarray(k * plane, (k + 1) * plane), width: small, height: small, channels: 1 }, side, side);
    const at128 = cvResizeAreaFloat(big.data as Float32Array, side, side, MAP_SIDE, MAP_SIDE);
    const offset = k * MAP_SIDE * MAP_SIDE;
    for (let i = 0; i < at128.length; i++) sum[offset + i]! += Math.fround(at128[i]! / scales);
  }
}

/** skimage.measure.label(binary, connectivity=2): 8-connected regions numbered 1.. in raster order of their first sample. */
function label8(binary: Uint8Array, side: number): { labels: Int32Array; count: number } {
  const labels = new Int32Array(binary.length);
  let count = 0;
  const stack: number[] = [];
  for (let start = 0; start < binary.length; start++) {
    if (!binary[start] || labels[start]) continue;
    labels[start] = ++count;
    stack.push(start);
    while (stack.length > 0) {
      const i = stack.pop()!;
      const [y, x] = [Math.trunc(i / side), i % side];
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const [ny, nx] = [y + dy, x + dx];
          if (ny < 0 || nx < 0 || ny >= side || nx >= side) continue;
          const j = ny * side + nx;
          if (binary[j] && !labels[j]) {
            labels[j] = count;
            stack.push(j);
          }
        }
      }
    }
  }
  return { labels, count };
}

/** One joint's peak in the box's pixels, [0, 0] when none. */
function jointPeak(map: Float64Array, boxSide: number): [number, number] {
  const smooth = gaussianFilter(map, MAP_SIDE, MAP_SIDE, 3);
  const binary = Uint8Array.from(smooth, (v) => (v > THRESHOLD ? 1 : 0));
  if (!binary.includes(1)) return [0, 0];
  const { labels, count } = label8(binary, MAP_SIDE);
  const members: number[][] = Array.from({ length: count }, () => []);
  labels.forEach((l, i) => {
    if (l > 0) members[l - 1]!.push(map[i]!);
  });
  let best = 0;
  members.forEach((values, l) => {
    if (numpySum(values) > numpySum(members[best]!)) best = l;
  });
  const kept = map.map((v, i) => (labels[i] === best + 1 ? v : 0));
  // util.npmax: each row's first maximum, then the first row whose maximum is largest.
  let row = 0;
  let column = 0;
  let top = -Infinity;
  for (let r = 0; r < MAP_SIDE; r++) {
    let c0 = 0;
    for (let c = 1; c < MAP_SIDE; c++) if (kept[r * MAP_SIDE + c]! > kept[r * MAP_SIDE + c0]!) c0 = c;
    if (kept[r * MAP_SIDE + c0]! > top) [top, row, column] = [kept[r * MAP_SIDE + c0]!, r, c0];
  }
  return [Math.trunc((column * boxSide) / MAP_SIDE), Math.trunc((row * boxSide) / MAP_SIDE)];
}

/** Hand.__call__'s peaks (x, y in the box) from the network's outputs at HAND_SIDES, each [22, side/8, side/8]. */
export function handPeaks(outputs: readonly Float32Array[], boxSide: number): Array<[number, number]> {
  const sum = new Float64Array(HAND_MAPS * MAP_SIDE * MAP_SIDE);
  outputs.forEach((maps, s) => addScale(sum, maps, HAND_SIDES[s]!, outputs.length));
  const plane = MAP_SIDE * MAP_SIDE;
  return Array.from({ length: JOINTS }, (_, k) => jointPeak(sum.slice(k * plane, (k + 1) * plane), boxSide));
}
