// cv2.Canny(image, low, high, apertureSize=3, L2gradient) for 8-bit images, bit for bit (OpenCV 4.x
// imgproc/canny.cpp): the ControlNet canny preprocessor of sd-webui-controlnet, controlnet_aux (ComfyUI's
// controlnet_aux nodes) and the original ControlNet scripts, which all pass the RGB picture itself.
//
// OpenCV's rules, each of which changes some pixels if done otherwise:
//   * several channels: per pixel the channel with the largest gradient magnitude (the first, on ties) gives
//     the magnitude and the dx, dy that choose the direction;
//   * magnitude |dx| + |dy|, or dx² + dy² compared against squared thresholds (each clamped to 32767 first,
//     squared only when positive); thresholds are floored to integers and swapped when low > high;
//   * direction by integer tangents: tan 22.5° as 13573 / 2^15; horizontal and vertical neighbours must be
//     exceeded on one side (> before, ≥ after in scan order), diagonal ones strictly on both;
//   * magnitudes outside the image are 0; a local maximum above `high` seeds an edge, one above `low` joins
//     an edge it touches (8-connected), recursively.
// Only aperture 3 is reproduced (OpenCV's 5 and 7 use other Sobel kernels, and 7 rescales).

import { cropTopLeft, padEdgeTo64 } from '../pad-edge.js';
import type { Raster } from '../raster.js';
import { sobel3 } from './sobel.js';

export interface CannyOptions {
  /** OpenCV's L2gradient. Default false (|dx| + |dy|), as the ControlNet preprocessors call it. */
  l2Gradient?: boolean;
}

const TG22 = 13573;
const SHIFT = 15;
const CANDIDATE = 0;
const NOT_EDGE = 1;
const EDGE = 2;

function integerThresholds(low: number, high: number, l2: boolean): [number, number] {
  for (const t of [low, high]) {
    if (!Number.isFinite(t) || Math.abs(t) >= 2 ** 31) throw new RangeError(`Canny threshold ${t} is outside OpenCV's int range`);
  }
  let [lo, hi] = low > high ? [high, low] : [low, high];
  if (l2) {
    lo = Math.min(32767, lo);
    hi = Math.min(32767, hi);
    if (lo > 0) lo *= lo;
    if (hi > 0) hi *= hi;
  }
  return [Math.floor(lo), Math.floor(hi)];
}

/** The gradient magnitude per pixel (0 outside the image) and the dx, dy of the channel that gave it. */
function magnitudes(image: Raster, l2: boolean): { magnitude: Int32Array; dx: Int16Array; dy: Int16Array } {
  const { width, height, channels } = image;
  const gradients = sobel3(image);
  const padded = width + 2;
  const magnitude = new Int32Array(padded * (height + 2));
  const dx = new Int16Array(width * height);
  const dy = new Int16Array(width * height);
  for (let p = 0; p < width * height; p++) {
    let best = -1;
    for (let c = 0; c < channels; c++) {
      const gx = gradients.dx[p * channels + c]!;
      const gy = gradients.dy[p * channels + c]!;
      const m = l2 ? gx * gx + gy * gy : Math.abs(gx) + Math.abs(gy);
      if (m > best) {
        best = m;
        dx[p] = gx;
        dy[p] = gy;
      }
    }
    magnitude[(Math.floor(p / width) + 1) * padded + (p % width) + 1] = best;
  }
  return { magnitude, dx, dy };
}

/** cv2.Canny: a single-channel raster, 255 on edges and 0 elsewhere. `image` has 1 or 3 channels. */
export function canny(image: Raster, low: number, high: number, options: CannyOptions = {}): Raster {
  if (image.channels !== 1 && image.channels !== 3) throw new RangeError(`Canny takes a grey or RGB raster (got ${image.channels} channels)`);
  const l2 = options.l2Gradient ?? false;
  const [lo, hi] = integerThresholds(low, high, l2);
  const { width, height } = image;
  const { magnitude, dx, dy } = magnitudes(image, l2);
  const padded = width + 2;
  // the map shares the magnitudes' padding; its border is never an edge
  const map = new Uint8Array(padded * (height + 2)).fill(NOT_EDGE);
  const stack: number[] = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const k = (y + 1) * padded + x + 1;
      const m = magnitude[k]!;
      if (m <= lo) continue;
      const xs = dx[y * width + x]!;
      const ys = dy[y * width + x]!;
      const ax = Math.abs(xs);
      const ay = Math.abs(ys) * 2 ** SHIFT;
      const tg22x = ax * TG22;
      let isMaximum: boolean;
      if (ay < tg22x) {
        isMaximum = m > magnitude[k - 1]! && m >= magnitude[k + 1]!;
      } else if (ay > tg22x + ax * 2 ** (SHIFT + 1)) {
        isMaximum = m > magnitude[k - padded]! && m >= magnitude[k + padded]!;
      } else {
        const s = (xs < 0) !== (ys < 0) ? -1 : 1;
        isMaximum = m > magnitude[k - padded - s]! && m > magnitude[k + padded + s]!;
      }
      if (!isMaximum) continue;
      if (m > hi) {
        map[k] = EDGE;
        stack.push(k);
      } else {
        map[k] = CANDIDATE;
      }
    }
  }
  const neighbours = [-padded - 1, -padded, -padded + 1, -1, 1, padded - 1, padded, padded + 1];
  while (stack.length > 0) {
    const k = stack.pop()!;
    for (const d of neighbours) {
      if (map[k + d] === CANDIDATE) {
        map[k + d] = EDGE;
        stack.push(k + d);
      }
    }
  }
  const out: Raster = { width, height, channels: 1, data: new Uint8Array(width * height) };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) if (map[(y + 1) * padded + x + 1] === EDGE) out.data[y * width + x] = 255;
  }
  return out;
}

/**
 * sd-webui-controlnet's canny(): cv2.Canny on the picture as resize_image_with_pad leaves it (edge-padded to
 * multiples of 64), the padding cropped off, so the right and bottom borders see copies of their pixels rather
 * than Canny's own border.
 */
export function cannyControlMap(picture: Raster, low: number, high: number): Raster {
  return cropTopLeft(canny(padEdgeTo64(picture), low, high), picture.width, picture.height);
}
