// controlnet_aux 0.0.10's Body.__call__ around the network (open_pose/body.py, one scale, 0.5 x 368 / height), in
// float64 where numpy computes in it:
//   input: the BGR picture through util.smart_resize_k (INTER_AREA when shrinking, INTER_LANCZOS4 otherwise), padded
//     with 128 below and right to multiples of 8 (padRightDownCorner), as float32 / 256 - 0.5;
//   maps: each of the 19 heatmap and 38 part-affinity channels enlarged 8x (smart_resize_k, Lanczos), cropped by the
//     padding (counted in the small picture's pixels, as body.py does) and brought to the picture's size
//     (smart_resize: area or Lanczos);
//   peaks: each of the 18 parts' heatmap smoothed (scipy gaussian_filter, sigma 3), a sample that is >= its four
//     neighbours (0 past the edges) and > 0.1 is a peak, scored by the unsmoothed heatmap, numbered in raster order;
//   limbs: for each of 19 limbs every pair of its two parts' peaks scored by ten samples of the limb's two PAF
//     channels along the segment (np.linspace, rounded half to even) dotted with its direction, plus
//     min(0.5 height / length - 1, 0); kept when more than 8 samples exceed 0.05 and the score is positive, then
//     taken best first, each peak once, up to the smaller count;
//   people: the limbs merged into rows of 18 peak ids + total score + part count, rows with fewer than 4 parts or a
//     mean score below 0.4 dropped.
// The limb scoring compares every pair of two parts' peaks: MAX_PEAKS_PER_PART bounds it.

import { cvResizeAreaFloat } from '../cv-resize-area.js';
import { cvResizeLanczos4 } from '../cv-resize-lanczos.js';
import { roundHalfEven } from '../../round-half-even.js';
import { cvResizeU8 } from '../cv-resize-u8.js';
import { PoseInputError, TooManyPeaksError } from '../errors.js';
import type { Raster } from '../raster.js';
import { gaussianFilter } from '../scipy-gaussian.js';

const BOX_SIZE = 368;
const SCALE_SEARCH = 0.5;
const STRIDE = 8;
const PAD_VALUE = 128;
const PEAK_THRESHOLD = 0.1;
const PAF_THRESHOLD = 0.05;
const MID_POINTS = 10;
const PARTS = 18;
/** More peaks than this for one part is no picture of people OpenPose handles: 100 x 100 pairs x 10 samples per limb at most. */
export const MAX_PEAKS_PER_PART = 100;

/** Limbs as pairs of 1-based parts, and the PAF channel pair (x, y) of each, as body.py lists them. */
export const LIMBS: ReadonlyArray<readonly [number, number]> = [
  [2, 3], [2, 6], [3, 4], [4, 5], [6, 7], [7, 8], [2, 9], [9, 10], [10, 11], [2, 12], [12, 13], [13, 14], [2, 1], [1, 15], [15, 17], [1, 16], [16, 18], [3, 17], [6, 18],
];
const PAF_CHANNELS: ReadonlyArray<readonly [number, number]> = [
  [12, 13], [20, 21], [14, 15], [16, 17], [22, 23], [24, 25], [0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11], [28, 29], [30, 31], [34, 35], [32, 33], [36, 37], [18, 19], [26, 27],
];

/** The network's input and what the maps need to go back to the picture's size. */
export interface BodyInput {
  /** [3, paddedHeight, paddedWidth], BGR / 256 - 0.5. */
  image: Float32Array;
  paddedWidth: number;
  paddedHeight: number;
  padRight: number;
  padDown: number;
  width: number;
  height: number;
}

/** util.smart_resize_k / smart_resize: INTER_AREA when the target's height + width is smaller, INTER_LANCZOS4 otherwise. */
const shrinks = (from: { width: number; height: number }, width: number, height: number): boolean => (height + width) / (from.height + from.width) < 1;

export function bodyInput(picture: Raster): BodyInput {
  const { width, height } = picture;
  const bgr = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) for (let c = 0; c < 3; c++) bgr[i * 3 + c] = picture.data[i * picture.channels + 2 - c]!;
  const scale = (SCALE_SEARCH * BOX_SIZE) / height;
  const [toWidth, toHeight] = [Math.trunc(width * scale), Math.trunc(height * scale)];
  if (toWidth < 1) throw new PoseInputError(width, height);
  const source = { data: bgr, width, height, channels: 3 as const };
  const resized = shrinks(source, toWidth, toHeight) ? cvResizeU8(source, toWidth, toHeight, 'area') : cvResizeLanczos4(source, toWidth, toHeight);
  const padDown = resized.height % STRIDE === 0 ? 0 : STRIDE - (resized.height % STRIDE);
  const padRight = resized.width % STRIDE === 0 ? 0 : STRIDE - (resized.width % STRIDE);
  const paddedWidth = resized.width + padRight;
  const paddedHeight = resized.height + padDown;
  const plane = paddedWidth * paddedHeight;
  const image = new Float32Array(3 * plane);
  for (let y = 0; y < paddedHeight; y++) {
    for (let x = 0; x < paddedWidth; x++) {
      const inside = y < resized.height && x < resized.width;
      for (let c = 0; c < 3; c++) {
        const v = inside ? resized.data[(y * resized.width + x) * 3 + c]! : PAD_VALUE;
        image[c * plane + y * paddedWidth + x] = v / 256 - 0.5;
      }
    }
  }
  return { image, paddedWidth, paddedHeight, padRight, padDown, width, height };
}

/** The network's outputs at 1/8 of the padded picture: pafs [38, h, w], heatmaps [19, h, w]. */
export interface BodyMaps {
  pafs: Float32Array;
  heatmaps: Float32Array;
  width: number;
  height: number;
}

/** One output channel at the picture's size, as body.py resizes it. */
function channelAtPictureSize(maps: Float32Array, channel: number, small: { width: number; height: number }, input: BodyInput): Float32Array {
  const plane = small.width * small.height;
  const data = maps.slice(channel * plane, (channel + 1) * plane);
  const big = cvResizeLanczos4({ data, width: small.width, height: small.height, channels: 1 }, small.width * STRIDE, small.height * STRIDE);
  const cropWidth = input.paddedWidth - input.padRight;
  const cropHeight = input.paddedHeight - input.padDown;
  const cropped = new Float32Array(cropWidth * cropHeight);
  for (let y = 0; y < cropHeight; y++) cropped.set(big.data.subarray(y * big.width, y * big.width + cropWidth), y * cropWidth);
  const crop = { width: cropWidth, height: cropHeight };
  if (shrinks(crop, input.width, input.height)) return cvResizeAreaFloat(cropped, cropWidth, cropHeight, input.width, input.height);
  return cvResizeLanczos4({ data: cropped, ...crop, channels: 1 }, input.width, input.height).data;
}

/** A peak: position, unsmoothed heatmap value, running id. */
export type Peak = [x: number, y: number, score: number, id: number];

function findPeaks(heatmap: Float32Array, width: number, height: number, part: number, firstId: number): Peak[] {
  const smooth = gaussianFilter(Float64Array.from(heatmap), width, height, 3);
  const at = (x: number, y: number) => (x < 0 || y < 0 || x >= width || y >= height ? 0 : smooth[y * width + x]!);
  const peaks: Peak[] = [];
  let count = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = at(x, y);
      if (v >= at(x, y - 1) && v >= at(x, y + 1) && v >= at(x - 1, y) && v >= at(x + 1, y) && v > PEAK_THRESHOLD) {
        // Past the bound only counted, for the message.
        if (++count <= MAX_PEAKS_PER_PART) peaks.push([x, y, heatmap[y * width + x]!, firstId + peaks.length]);
      }
    }
  }
  if (count > MAX_PEAKS_PER_PART) throw new TooManyPeaksError(part, count, MAX_PEAKS_PER_PART);
  return peaks;
}

/** np.linspace(start, stop, 10). */
function linspace(start: number, stop: number): number[] {
  const step = (stop - start) / (MID_POINTS - 1);
  return Array.from({ length: MID_POINTS }, (_, i) => (i === MID_POINTS - 1 ? stop : step === 0 ? (i / (MID_POINTS - 1)) * 0 + start : i * step + start));
}

/** A chosen limb: peak ids of its two ends, its score, their indices among the parts' peaks. */
type Connection = [idA: number, idB: number, score: number, i: number, j: number];

function connect(candA: Peak[], candB: Peak[], pafX: Float32Array, pafY: Float32Array, width: number, pictureHeight: number): Connection[] {
  const candidates: Array<{ i: number; j: number; score: number }> = [];
  candA.forEach((a, i) => {
    candB.forEach((b, j) => {
      const vx = b[0] - a[0];
      const vy = b[1] - a[1];
      const norm = Math.max(0.001, Math.sqrt(vx * vx + vy * vy));
      const [ux, uy] = [vx / norm, vy / norm];
      const xs = linspace(a[0], b[0]);
      const ys = linspace(a[1], b[1]);
      let sum = 0;
      let above = 0;
      for (let k = 0; k < MID_POINTS; k++) {
        const at = roundHalfEven(ys[k]!) * width + roundHalfEven(xs[k]!);
        const s = pafX[at]! * ux + pafY[at]! * uy;
        sum += s;
        if (s > PAF_THRESHOLD) above++;
      }
      const score = sum / MID_POINTS + Math.min((0.5 * pictureHeight) / norm - 1, 0);
      if (above > 0.8 * MID_POINTS && score > 0) candidates.push({ i, j, score });
    });
  });
  candidates.sort((p, q) => q.score - p.score);
  const chosen: Connection[] = [];
  for (const { i, j, score } of candidates) {
    if (chosen.some((c) => c[3] === i) || chosen.some((c) => c[4] === j)) continue;
    chosen.push([candA[i]![3], candB[j]![3], score, i, j]);
    if (chosen.length >= Math.min(candA.length, candB.length)) break;
  }
  return chosen;
}

/** body.py's candidate (x, y, score, id per peak) and subset (18 peak ids or -1, total score, part count per person). */
export interface BodyEstimate {
  candidate: Peak[];
  subset: number[][];
}

/** A body joint in the picture's pixels, as format_body_result gives it; undefined: not found. */
export type BodyPoint = { x: number; y: number } | undefined;

/** format_body_result: each person's 18 joints in pixels. */
export function peopleJoints(estimate: BodyEstimate): BodyPoint[][] {
  return estimate.subset.map((person) =>
    person.slice(0, 18).map((index) => {
      const peak = index === -1 ? undefined : estimate.candidate[Math.trunc(index)];
      return peak ? { x: peak[0], y: peak[1] } : undefined;
    }),
  );
}

function assemble(peaks: Peak[][], connections: Array<Connection[] | undefined>): number[][] {
  const candidate = peaks.flat();
  let subset: number[][] = [];
  connections.forEach((limb, k) => {
    if (!limb) return;
    const [indexA, indexB] = [LIMBS[k]![0] - 1, LIMBS[k]![1] - 1];
    for (const [partA, partB, score] of limb) {
      // controlnet_aux raises IndexError on a third matching row; the first two are kept here.
      const found = subset.map((row, j) => (row[indexA] === partA || row[indexB] === partB ? j : -1)).filter((j) => j >= 0).slice(0, 2);
      if (found.length === 1) {
        const row = subset[found[0]!]!;
        if (row[indexB] !== partB) {
          row[indexB] = partB;
          row[19]! += 1;
          row[18]! += candidate[partB]![2] + score;
        }
      } else if (found.length === 2) {
        const [r1, r2] = [subset[found[0]!]!, subset[found[1]!]!];
        const overlap = r1.slice(0, 18).some((v, c) => v >= 0 && r2[c]! >= 0);
        if (!overlap) {
          for (let c = 0; c < 18; c++) r1[c]! += r2[c]! + 1;
          r1[18]! += r2[18]!;
          r1[19]! += r2[19]!;
          r1[18]! += score;
          subset = subset.filter((_, j) => j !== found[1]);
        } else {
          r1[indexB] = partB;
          r1[19]! += 1;
          r1[18]! += candidate[partB]![2] + score;
        }
      } else if (found.length === 0 && k < 17) {
        const row = new Array<number>(20).fill(-1);
        row[indexA] = partA;
        row[indexB] = partB;
        row[19] = 2;
        row[18] = 0 + candidate[partA]![2] + candidate[partB]![2] + score;
        subset.push(row);
      }
    }
  });
  return subset.filter((row) => !(row[19]! < 4 || row[18]! / row[19]! < 0.4));
}

export function bodyEstimate(maps: BodyMaps, input: BodyInput): BodyEstimate {
  const { width, height } = input;
  const small = { width: maps.width, height: maps.height };
  const peaks: Peak[][] = [];
  let count = 0;
  for (let part = 0; part < PARTS; part++) {
    const found = findPeaks(channelAtPictureSize(maps.heatmaps, part, small, input), width, height, part, count);
    peaks.push(found);
    count += found.length;
  }
  const connections = LIMBS.map(([a, b], k) => {
    const [candA, candB] = [peaks[a - 1]!, peaks[b - 1]!];
    if (candA.length === 0 || candB.length === 0) return undefined;
    const [cx, cy] = PAF_CHANNELS[k]!;
    return connect(candA, candB, channelAtPictureSize(maps.pafs, cx, small, input), channelAtPictureSize(maps.pafs, cy, small, input), width, height);
  });
  return { candidate: peaks.flat(), subset: assemble(peaks, connections) };
}
