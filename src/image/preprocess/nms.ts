// sd-webui-controlnet's annotator/util.py nms(x, t, s), which scribble_hed and scribble_pidinet run at t=127, s=3.0: the
// uint8 map blurred as float32 (cv2.GaussianBlur((0, 0), s), ./cv-gaussian.ts), each blurred sample kept where it equals
// cv2.dilate of the blur by one of four 3x3 line kernels through it (horizontal, vertical, the two diagonals), i.e. it
// is a maximum along that line (dilate's default border adds nothing past the picture's edge); 255 where a kept
// sample is above t, 0 elsewhere.

import { createRaster, type Raster } from '../raster.js';
import { gaussianBlurFloat } from './cv-gaussian.js';

/** Each line's step to one neighbour (the other is the opposite step): f1 horizontal, f2 vertical, f3 "\", f4 "/". */
const LINES = [
  [1, 0],
  [0, 1],
  [1, 1],
  [1, -1],
] as const;

export function nms(map: Raster, threshold: number, sigma: number): Raster {
  if (map.channels !== 1) throw new RangeError(`nms: a grey map, not ${map.channels} channels`);
  const { width, height } = map;
  const blurred = gaussianBlurFloat(Float32Array.from(map.data), width, height, 1, sigma);
  const at = (x: number, y: number) => (x < 0 || y < 0 || x >= width || y >= height ? -Infinity : blurred[y * width + x]!);
  const out = createRaster(width, height, 1);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = blurred[y * width + x]!;
      if (!(v > threshold)) continue;
      if (LINES.some(([dx, dy]) => v >= at(x + dx, y + dy) && v >= at(x - dx, y - dy))) out.data[y * width + x] = 255;
    }
  }
  return out;
}
