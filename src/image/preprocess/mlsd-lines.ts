// M-LSD's pred_lines and the drawing after it (sd-webui-controlnet's annotator/mlsd apply_mlsd, controlnet_aux 0.0.10's
// MLSDdetector: the same code), given the network's maps at half the picture's size. The extension calls pred_lines
// with input_shape = the picture's own size, so its cv2.resize INTER_AREA is a copy and its ratios are 1; the network
// input is made by the caller. Then, as deccode_output_score_and_ptss(outputs, 200, 3) does: the centre logits through
// torch's float32 sigmoid (./torch-sigmoid.ts), kept where they equal their 3x3 max_pool (padding -inf), the 200 largest in torch.topk's
// order; each whose score > thr_v and whose float32 length sqrt((x_s - x_e)^2 + (y_s - y_e)^2) > thr_d gives
// the segment (x + displacement) * 2 in float64, drawn white by cv2.line (thickness 1, LINE_8) at int() of its ends on
// black. The drawing loop sits in a try whose except passes: a NaN or infinite end (int() raises) or one outside
// OpenCV's int (cv2.line refuses it) ends the drawing there, the segments drawn so far kept.

import { line } from '../cv-draw.js';
import { createRaster, type Raster } from '../raster.js';
import { torchSigmoid } from './torch-sigmoid.js';

/** pred_lines' topk_n: at most this many centres are looked at, whatever the picture's size. */
export const MLSD_TOP_K = 200;
const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;

/** The network's outputs: `maps` [5, height, width] (centre logit, x/y start, x/y end displacements), half-size. */
export interface MlsdMaps {
  maps: Float32Array;
  width: number;
  height: number;
}

export interface MlsdThresholds {
  /** "MLSD Value Threshold" (thr_v, score_thr). */
  value: number;
  /** "MLSD Distance Threshold" (thr_d, dist_thr), in half-size pixels. */
  distance: number;
}

const f = Math.fround;

/**
 * heat * (max_pool2d(heat, 3, 1, 1) == heat), flattened: a centre's score where no neighbour is larger, else 0. A NaN
 * stays NaN (NaN * 0) and makes its neighbours' max NaN, which equals nothing: they drop to 0, as in torch.
 */
function peaks(heat: Float32Array, width: number, height: number): Float32Array {
  const out = new Float32Array(heat.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = heat[y * width + x]!;
      let max = v;
      for (let dy = Math.max(0, y - 1); dy <= Math.min(height - 1, y + 1); dy++) {
        for (let dx = Math.max(0, x - 1); dx <= Math.min(width - 1, x + 1); dx++) {
          const n = heat[dy * width + dx]!;
          if (Number.isNaN(n) || n > max) max = Number.isNaN(n) ? Number.NaN : n;
          if (Number.isNaN(max)) break;
        }
        if (Number.isNaN(max)) break;
      }
      out[y * width + x] = Number.isNaN(v) ? v : max === v ? v : 0;
    }
  }
  return out;
}

/** a before b in torch.topk(largest=True)'s order: NaN first, then larger values; equal values by index (see README). */
function before(values: Float32Array, a: number, b: number): boolean {
  const [va, vb] = [values[a]!, values[b]!];
  if (Number.isNaN(va) !== Number.isNaN(vb)) return Number.isNaN(va);
  return va > vb || (!(va < vb) && a < b);
}

/** The indices of the `k` first values in topk's order, in that order: a bounded heap, O(n log k). */
function topK(values: Float32Array, k: number): number[] {
  // A heap whose root is the last of the kept ones (the first to be pushed out).
  const heap: number[] = [];
  const sift = (i: number): void => {
    for (;;) {
      const [l, r] = [2 * i + 1, 2 * i + 2];
      let last = i;
      if (l < heap.length && before(values, heap[last]!, heap[l]!)) last = l;
      if (r < heap.length && before(values, heap[last]!, heap[r]!)) last = r;
      if (last === i) return;
      [heap[i], heap[last]] = [heap[last]!, heap[i]!];
      i = last;
    }
  };
  for (let i = 0; i < values.length; i++) {
    if (heap.length < k) {
      heap.push(i);
      for (let c = heap.length - 1; c > 0; ) {
        const p = (c - 1) >> 1;
        if (!before(values, heap[p]!, heap[c]!)) break;
        [heap[p], heap[c]] = [heap[c]!, heap[p]!];
        c = p;
      }
    } else if (before(values, i, heap[0]!)) {
      heap[0] = i;
      sift(0);
    }
  }
  return heap.sort((a, b) => (before(values, a, b) ? -1 : 1));
}

/** pred_lines' segments (x_start, y_start, x_end, y_end) in the picture's pixels, in the order they are drawn. */
export function mlsdSegments({ maps, width, height }: MlsdMaps, thresholds: MlsdThresholds): Array<[number, number, number, number]> {
  const plane = width * height;
  if (maps.length !== 5 * plane) throw new RangeError(`mlsdSegments: ${maps.length} values for 5 maps of ${width}x${height}`);
  const heat = new Float32Array(plane);
  for (let i = 0; i < plane; i++) heat[i] = torchSigmoid(maps[i]!);
  const scores = peaks(heat, width, height);
  const segments: Array<[number, number, number, number]> = [];
  for (const i of topK(scores, Math.min(MLSD_TOP_K, plane))) {
    const [xs, ys, xe, ye] = [1, 2, 3, 4].map((c) => maps[c * plane + i]!);
    const distance = f(Math.sqrt(f(f(f(xs! - xe!) ** 2) + f(f(ys! - ye!) ** 2))));
    if (!(scores[i]! > thresholds.value && distance > thresholds.distance)) continue;
    const [x, y] = [i % width, Math.floor(i / width)];
    segments.push([2 * (x + xs!), 2 * (y + ys!), 2 * (x + xe!), 2 * (y + ye!)]);
  }
  return segments;
}

/** The segments drawn white on a black `width` x `height` map, as apply_mlsd's loop does (see the top). */
export function drawMlsdLines(segments: ReadonlyArray<readonly [number, number, number, number]>, width: number, height: number): Raster {
  const out = createRaster(width, height, 1);
  for (const segment of segments) {
    const ends = segment.map(Math.trunc);
    if (!ends.every((v) => v >= INT_MIN && v <= INT_MAX)) break;
    line(out, { x: ends[0]!, y: ends[1]! }, { x: ends[2]!, y: ends[3]! }, [255]);
  }
  return out;
}

/** apply_mlsd's map of the picture the half-size `maps` were computed from (`width` x `height`). */
export function mlsdLines(maps: MlsdMaps, width: number, height: number, thresholds: MlsdThresholds): Raster {
  return drawMlsdLines(mlsdSegments(maps, thresholds), width, height);
}
