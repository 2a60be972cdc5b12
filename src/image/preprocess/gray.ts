// OpenCV's 8-bit cv2.cvtColor(rgb, COLOR_RGB2GRAY): BT.601 weights in 15-bit fixed point
// (9798 R + 19235 G + 3735 B, rounded). Checked against cv2 4.11 on all 2^24 colours.

import { type Raster, createRaster } from '../raster.js';

export function rgbToGray(image: Raster): Raster {
  if (image.channels !== 3) throw new RangeError(`RGB2GRAY takes an RGB raster (got ${image.channels} channels)`);
  const out = createRaster(image.width, image.height, 1);
  const { data } = image;
  for (let i = 0, p = 0; i < out.data.length; i++, p += 3) {
    out.data[i] = (data[p]! * 9798 + data[p + 1]! * 19235 + data[p + 2]! * 3735 + (1 << 14)) >> 15;
  }
  return out;
}
