// controlnet_aux 0.0.10's face around the network (open_pose/util.faceDetect, open_pose/face.Face):
//   box: when the nose and an eye or ear were found: half-side the largest of 3 x each eye's and 1.5 x each ear's
//     Chebyshev distance to the nose, the square's corner that far up and left of the nose moved inside the picture,
//     its side 2 x that, shortened to what is left of the picture when the corner plus the half-side (not the side:
//     faceDetect's test) passes an edge; kept when 20 pixels or more, corner and side truncated. The crop is the numpy
//     slice, so a square passing the right or bottom edge comes out narrower or shorter;
//   input: the BGR crop resized to 384x384 as util.smart_resize does, as float32 / 256 - 0.5;
//   maps: the last stage's 71 maps [71, 48, 48] brought to the crop's size by F.interpolate(bilinear,
//     align_corners=True) in float32 as torch's CPU kernel computes it (source index = float32 scale x index; each
//     pair of products one fused multiply-add), equal to torch's where the scale is exact and within 2 ulps of it
//     otherwise (measured on 48 -> 54 and 61), which moves a peak only on a near-tie;
//   peaks: per map (all 71, the background's too), the first sample in raster order holding the largest value among
//     those above 0.05 (float32); a map with none gives no peak at all.

import type { BodyPoint } from './openpose-body.js';
import { crop, networkPlanes, smartResizeU8 } from './openpose-hand.js';
import type { Raster } from '../raster.js';

/** The face's square in the picture, and the crop's own size (the slice may be cut by the picture's edge). */
export interface FaceBox {
  x: number;
  y: number;
  side: number;
}

const MIN_BOX = 20;
export const FACE_INPUT = 384;
export const FACE_MAPS = 71;
const THRESHOLD = Math.fround(0.05);

/** util.faceDetect on one person's 18 body joints in a `width` x `height` picture. */
export function faceBox(joints: readonly BodyPoint[], width: number, height: number): FaceBox | undefined {
  const nose = joints[0];
  const [leftEye, rightEye, leftEar, rightEar] = [joints[14], joints[15], joints[16], joints[17]];
  if (!nose || (!leftEye && !rightEye && !leftEar && !rightEar)) return undefined;
  let half = 0;
  for (const [point, times] of [[leftEye, 3], [rightEye, 3], [leftEar, 1.5], [rightEar, 1.5]] as const) {
    if (point) half = Math.max(half, Math.max(Math.abs(nose.x - point.x), Math.abs(nose.y - point.y)) * times);
  }
  const x = Math.max(nose.x - half, 0);
  const y = Math.max(nose.y - half, 0);
  const across = x + half > width ? width - x : half * 2;
  const down = y + half > height ? height - y : half * 2;
  const side = Math.min(across, down);
  return side >= MIN_BOX ? { x: Math.trunc(x), y: Math.trunc(y), side: Math.trunc(side) } : undefined;
}

/** The face's crop of the BGR picture (numpy's slice) and the network's input [3, 384, 384]. */
export function faceInput(bgr: Raster, box: FaceBox): { input: Float32Array; width: number; height: number } {
  const face = crop(bgr, box.x, box.y, box.side, box.side);
  return { input: networkPlanes(smartResizeU8(face, FACE_INPUT, FACE_INPUT)), width: face.width, height: face.height };
}

/** torch's align_corners source indices and float32 weights along one side. */
function linearTaps(inSize: number, outSize: number): Array<[number, number, number, number]> {
  const scale = outSize > 1 ? Math.fround(Math.fround(inSize - 1) / Math.fround(outSize - 1)) : 0;
  return Array.from({ length: outSize }, (_, i) => {
    if (inSize === outSize) return [i, i, 1, 0];
    const real = Math.fround(scale * i);
    const i0 = Math.min(Math.floor(real), inSize - 1);
    const w1 = Math.min(Math.max(Math.fround(real - i0), 0), 1);
    return [i0, i0 < inSize - 1 ? i0 + 1 : i0, Math.fround(1 - w1), w1];
  });
}

/** float32 a * wa + b * wb with the first product fused (the order torch's kernel was measured to round in). */
const mix = (a: number, wa: number, b: number, wb: number): number => Math.fround(a * wa + Math.fround(b * wb));

/** Face.__call__'s maps and compute_peaks_from_heatmaps: peaks (x, y in the crop) of the last stage's maps [71, side, side]. */
export function facePeaks(maps: Float32Array, mapSide: number, width: number, height: number): Array<[number, number]> {
  const rows = linearTaps(mapSide, height);
  const columns = linearTaps(mapSide, width);
  const plane = mapSide * mapSide;
  const peaks: Array<[number, number]> = [];
  for (let k = 0; k < FACE_MAPS; k++) {
    const at = (y: number, x: number) => maps[k * plane + y * mapSide + x]!;
    let best = -Infinity;
    let found: [number, number] | undefined;
    for (let y = 0; y < height; y++) {
      const [y0, y1, wy0, wy1] = rows[y]!;
      for (let x = 0; x < width; x++) {
        const [x0, x1, wx0, wx1] = columns[x]!;
        const v = mix(mix(at(y0, x0), wx0, at(y0, x1), wx1), wy0, mix(at(y1, x0), wx0, at(y1, x1), wx1), wy1);
        if (v > THRESHOLD && v > best) [best, found] = [v, [x, y]];
      }
    }
    if (found) peaks.push(found);
  }
  return peaks;
}
